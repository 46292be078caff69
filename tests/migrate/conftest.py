"""The store each migration test runs on: the cookie store, and SQLite (asyncio only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asgisession.stores import SQLiteStore
from asgisession.stores.base import Store


@pytest.fixture(params=["cookie", "sqlite"])
async def store(
    request: pytest.FixtureRequest, anyio_backend: str, tmp_path: Path
) -> AsyncIterator[Store | None]:
    """``None`` (the cookie store) or a real SQLite store; SQLite is skipped under Trio."""
    if request.param == "cookie":
        yield None
        return
    if anyio_backend != "asyncio":
        pytest.skip("SQLiteStore runs on asyncio only")
    sqlite = SQLiteStore(tmp_path / "sessions.db")
    try:
        yield sqlite
    finally:
        await sqlite.aclose()
