"""A session served read-only (``on_store_error="anonymous"`` while a store is down) is never
committed, whichever backend: nothing overwrites the cookie the user really has.

Each case makes a real store unavailable: Redis and memcached on a loopback port where
nothing listens, SQLite on a path whose directory does not exist, and, for the cookie store,
a revocation store on such a Redis port. MemoryStore cannot fail by itself, so its case is a
MemoryStore that reports an outage on every call. The request carries a valid session cookie
(so the session must be fetched, or checked for revocation) and the app writes to the
session, a flash and a CSRF token.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asgisession import (
    Keyring,
    MessageEncryptor,
    SessionMiddleware,
    StoreUnavailable,
    csrf_token,
    flash,
)
from asgisession._types import Receive, Scope, Send
from asgisession.stores import MemcachedStore, MemoryStore, RedisStore, SQLiteStore, Store

from .asgi_helpers import client
from .servers import LOOPBACK, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: most outages here are Redis, memcached and SQLite stores, asyncio-only."""
    return "asyncio"


CASES = ["cookie", "memory", "sqlite", "redis", "memcached"]


class DownMemoryStore(MemoryStore):
    """A MemoryStore whose every call reports the store unavailable."""

    async def load(self, key: str) -> bytes | None:
        raise StoreUnavailable("the memory store is down (test)")

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        raise StoreUnavailable("the memory store is down (test)")

    async def delete(self, key: str) -> bool:
        raise StoreUnavailable("the memory store is down (test)")

    async def load_versioned(self, key: str) -> tuple[bytes, bytes] | None:
        raise StoreUnavailable("the memory store is down (test)")

    async def save_if(self, key: str, data: bytes, *, ttl: int, version: bytes | int) -> bool:
        raise StoreUnavailable("the memory store is down (test)")


def down_store(case: str, tmp_path: Path) -> Store:
    """A real store that cannot reach what backs it."""
    if case == "memory":
        return DownMemoryStore()
    if case == "sqlite":
        return SQLiteStore(tmp_path / "no-such-directory" / "sessions.db")
    if case == "memcached":
        return MemcachedStore(host=LOOPBACK, port=free_port(), timeout=1.0)
    assert case in ("redis", "cookie")
    return RedisStore.from_url(f"redis://{LOOPBACK}:{free_port()}/0", timeout=1.0)


async def writing_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the session, then writes to it three ways; the body says what it saw."""
    session = scope["session"]
    seen = dict(session)
    session["visits"] = 1
    flash(scope)["notice"] = "saved"
    csrf_token(scope)
    body = repr(seen).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(params=CASES)
async def outage(
    request: pytest.FixtureRequest, tmp_path: Path, secret: str
) -> AsyncIterator[tuple[SessionMiddleware, str]]:
    """The middleware over a store that is down, and a valid session cookie for it."""
    case: str = request.param
    store = down_store(case, tmp_path)
    now = int(time.time())
    codec = MessageEncryptor(Keyring(secret))
    options: dict[str, Any] = {"on_store_error": "anonymous"}
    if case == "cookie":  # the cookie names a user, whose revocation cannot be checked
        options.update(user_key="user_id", revocation_store=store)
        payload = b'{"user_id":"alice"}'
    else:  # the cookie holds a session id, whose record cannot be fetched
        options["store"] = store
        payload = secrets.token_bytes(32)
    value = codec.seal(payload, purpose="session", issued_at=now, expires_at=now + 3600)
    try:
        yield SessionMiddleware(writing_app, secret_key_base=secret, **options), value
    finally:
        await store.aclose()


async def test_read_only_session_is_never_committed(
    outage: tuple[SessionMiddleware, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The app gets an empty session; what it writes sends no Set-Cookie, and is logged."""
    mw, value = outage
    with caplog.at_level(logging.DEBUG, logger="asgisession"):
        async with client(mw) as c:
            response = await c.get("/", headers={"cookie": f"session={value}"})
    assert 200 == response.status_code
    assert b"{}" == response.content
    assert [] == response.headers.get_list("set-cookie")
    assert any("not saved" in record.getMessage() for record in caplog.records)
