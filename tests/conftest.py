"""Shared fixtures: the anyio backend and a fresh secret per test."""

from __future__ import annotations

import secrets

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio only (session-scoped, for hypothesis)."""
    return "asyncio"


@pytest.fixture
def secret() -> str:
    """A random secret_key_base, new for every test."""
    return secrets.token_hex(32)


@pytest.fixture
def other_secret() -> str:
    """A second random secret, for rotation and foreign-key tests."""
    return secrets.token_hex(32)
