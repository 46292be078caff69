"""A request that writes its session is bounded by the SQLite store's timeout, not SQLite's.

Another connection holds ``BEGIN EXCLUSIVE`` on the real database file; the request must
answer 503 after about the store's ``timeout=`` (2 s by default), not after the busy
timeout (5 s by default), whatever the store's sqlite3 thread is doing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asgisession import Session, SessionMiddleware
from asgisession._types import Receive, Scope, Send
from asgisession.stores import SQLiteStore

from .asgi import call, status

pytestmark = pytest.mark.anyio


async def write(scope: Scope, receive: Receive, send: Send) -> None:
    session: Session = scope["session"]
    await session.load()
    session["n"] = session.get("n", 0) + 1
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """The database path and a connection of our own that will hold its lock."""
    path = tmp_path / "sessions.db"
    other = sqlite3.connect(path, isolation_level=None)
    try:
        yield path, other
    finally:
        other.close()


@pytest.mark.parametrize("timeout", [None, 0.5])
async def test_a_held_lock_answers_503_within_the_store_timeout(
    locked: tuple[Path, sqlite3.Connection], secret: str, timeout: float | None
) -> None:
    """With the defaults (2 s; busy_timeout 5 s) and with a shorter timeout: 503 in time."""
    path, other = locked
    store = SQLiteStore(path) if timeout is None else SQLiteStore(path, timeout=timeout)
    bound = store.timeout
    assert bound is not None
    assert bound < store.busy_timeout
    async with store:
        app = SessionMiddleware(write, secret_key_base=secret, store=store)
        assert 200 == status(await call(app, "/"))  # the schema exists: only the lock waits
        other.execute("BEGIN EXCLUSIVE")
        try:
            started = time.monotonic()
            answer = await call(app, "/")
            took = time.monotonic() - started
        finally:
            other.execute("ROLLBACK")
        assert 503 == status(answer)
        assert bound * 0.9 <= took < bound * 1.5, f"answered after {took:.2f} s"
        assert 200 == status(await call(app, "/"))  # and serves again once the lock is gone
