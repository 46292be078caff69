"""The store each migration test runs on: the cookie store, and SQLite (asyncio only).

SQLiteStore runs on asyncio only, so the SQLite cases under Trio are not collected at all
(deselected, rather than reported as skips that say nothing about the machine).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asgisession.stores import SQLiteStore
from asgisession.stores.base import Store

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out this directory's SQLite cases on Trio."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        params = getattr(item, "callspec", None)
        params = params.params if params is not None else {}
        trio_sqlite = params.get("anyio_backend") == "trio" and params.get("store") == "sqlite"
        (dropped if trio_sqlite and HERE in item.path.parents else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=["cookie", "sqlite"])
async def store(
    request: pytest.FixtureRequest, anyio_backend: str, tmp_path: Path
) -> AsyncIterator[Store | None]:
    """``None`` (the cookie store) or a real SQLite store (never on Trio: see above)."""
    if request.param == "cookie":
        yield None
        return
    assert anyio_backend == "asyncio", "SQLite cases on Trio are deselected"
    sqlite = SQLiteStore(tmp_path / "sessions.db")
    try:
        yield sqlite
    finally:
        await sqlite.aclose()
