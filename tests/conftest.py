"""Shared fixtures: the anyio backend, a fresh secret per test, and real store servers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from .servers import ServerProcess, memcached_server, redis_server


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


@pytest.fixture(scope="module")
def redis_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real redis-server on a free loopback port, one per test module that asks for it."""
    server = redis_server(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def memcached_proc() -> Iterator[ServerProcess]:
    """A real memcached on a free loopback port, one per test module that asks for it."""
    server = memcached_server()
    try:
        yield server
    finally:
        server.stop()
