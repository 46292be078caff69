"""Log out everywhere: per-user indexes for server stores, not-before times for cookies."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
import pytest

from asgisession import (
    ConfigurationError,
    RejectReason,
    Session,
    SessionMiddleware,
    UserSession,
    revoke_session,
    revoke_user,
    user_sessions,
)
from asgisession._types import Receive, Scope, Send
from asgisession.stores.base import hash_key
from asgisession.stores.memory import MemoryStore
from asgisession.stores.null import NullStore

from .asgi_helpers import Clock

NOW = 1_750_000_000
pytestmark = pytest.mark.anyio


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """/login?user=X regenerates and stores user_id; /read returns the session."""
    session: Session = scope["session"]
    path = scope["path"]
    query = scope.get("query_string", b"").decode()
    if path == "/login":
        session.regenerate()
        session["user_id"] = query.split("=", 1)[1]
    elif path == "/switch":
        session["user_id"] = query.split("=", 1)[1]
    elif path == "/logout":
        session.reset()
    result = {"data": dict(session), "rejection": session.rejection}
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(result).encode()})


def client(mw: SessionMiddleware) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://testserver")


async def read(c: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await c.get("/read")).json()
    return body


def server_middleware(secret: str, store: MemoryStore, clock: Clock) -> SessionMiddleware:
    return SessionMiddleware(
        app, secret_key_base=secret, store=store, user_key="user_id", clock=clock
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(clock=clock)


async def test_server_sessions_are_listed_and_revoked_per_user(
    secret: str, store: MemoryStore, clock: Clock
) -> None:
    """revoke_user deletes every session of one user, on every device, and no other's."""
    mw = SessionMiddleware(
        app, secret_key_base=secret, store=store, user_key="user_id", clock=clock
    )
    async with client(mw) as laptop, client(mw) as phone, client(mw) as other:
        await laptop.get("/login?user=alice")
        await phone.get("/login?user=alice")
        await other.get("/login?user=bob")
        devices = await user_sessions(store, "alice", now=NOW)
        assert 2 == len(devices)
        assert all(isinstance(d, UserSession) and d.key.startswith("s:") for d in devices)
        assert {NOW + mw.backend.lifetime} == {d.expires_at for d in devices}  # type: ignore[attr-defined]

        assert 2 == await revoke_user(store, "alice", now=NOW)
        assert {"data": {}, "rejection": "not_found"} == await read(laptop)
        assert {"data": {}, "rejection": "not_found"} == await read(phone)
        assert {"user_id": "bob"} == (await read(other))["data"]
        assert [] == await user_sessions(store, "alice", now=NOW)


async def test_one_device_can_be_logged_out(secret: str, store: MemoryStore, clock: Clock) -> None:
    """revoke_session ends one listed session, and refuses a key of another user."""
    mw = SessionMiddleware(
        app, secret_key_base=secret, store=store, user_key="user_id", clock=clock
    )
    async with client(mw) as laptop, client(mw) as phone, client(mw) as other:
        await laptop.get("/login?user=alice")
        await phone.get("/login?user=alice")
        await other.get("/login?user=bob")
        (bobs,) = await user_sessions(store, "bob", now=NOW)
        assert not await revoke_session(store, "alice", bobs.key, now=NOW)
        first, _ = await user_sessions(store, "alice", now=NOW)
        assert await revoke_session(store, "alice", first.key, now=NOW)
        remaining = [await read(laptop), await read(phone)]
        assert 1 == sum(r["data"] == {"user_id": "alice"} for r in remaining)
        assert {"user_id": "bob"} == (await read(other))["data"]


async def test_index_follows_regenerate_reset_and_user_changes(
    secret: str, store: MemoryStore, clock: Clock
) -> None:
    """The index tracks the current id: regenerate moves it, reset drops it, a new user moves."""
    mw = SessionMiddleware(
        app, secret_key_base=secret, store=store, user_key="user_id", clock=clock
    )
    async with client(mw) as c:
        await c.get("/login?user=alice")
        (first,) = await user_sessions(store, "alice", now=NOW)
        await c.get("/login?user=alice")
        (second,) = await user_sessions(store, "alice", now=NOW)
        assert first.key != second.key
        await c.get("/switch?user=bob")
        assert [] == await user_sessions(store, "alice", now=NOW)
        assert [second.key] == [s.key for s in await user_sessions(store, "bob", now=NOW)]
        await c.get("/logout")
        assert [] == await user_sessions(store, "bob", now=NOW)


async def test_index_prunes_expired_sessions(secret: str, store: MemoryStore, clock: Clock) -> None:
    """Sessions past their lifetime drop out of the listing without any revocation."""
    mw = SessionMiddleware(
        app, secret_key_base=secret, store=store, user_key="user_id", clock=clock, lifetime=60
    )
    async with client(mw) as c:
        await c.get("/login?user=alice")
    assert 1 == len(await user_sessions(store, "alice", now=NOW + 59))
    assert [] == await user_sessions(store, "alice", now=NOW + 60)


async def test_cookie_sessions_are_refused_after_revocation(secret: str, clock: Clock) -> None:
    """With the cookie store, a not-before time refuses the user's older cookies."""
    revocations = MemoryStore(clock=clock)
    mw = SessionMiddleware(
        app, secret_key_base=secret, user_key="user_id", revocation_store=revocations, clock=clock
    )
    async with client(mw) as laptop, client(mw) as other:
        await laptop.get("/login?user=alice")
        await other.get("/login?user=bob")
        clock.now += 5
        assert 0 == await revoke_user(revocations, "alice", now=int(clock.now))
        assert {"data": {}, "rejection": "revoked"} == await read(laptop)
        assert {"user_id": "bob"} == (await read(other))["data"]
        assert Counter({RejectReason.REVOKED: 1}) == mw.rejections

        await laptop.get("/login?user=alice")  # logging in again works
        assert {"user_id": "alice"} == (await read(laptop))["data"]


async def test_revoking_keeps_a_session_regenerated_in_the_same_second(
    secret: str, clock: Clock
) -> None:
    """The device that revokes can stay logged in by regenerating right after."""
    revocations = MemoryStore(clock=clock)
    mw = SessionMiddleware(
        app, secret_key_base=secret, user_key="user_id", revocation_store=revocations, clock=clock
    )
    async with client(mw) as laptop, client(mw) as phone:
        await phone.get("/login?user=alice")
        clock.now += 5
        await revoke_user(revocations, "alice", now=int(clock.now))
        await laptop.get("/login?user=alice")
        assert {"user_id": "alice"} == (await read(laptop))["data"]
        assert "revoked" == (await read(phone))["rejection"]


async def test_cookie_sessions_without_user_need_no_lookup(secret: str, clock: Clock) -> None:
    """Anonymous cookie sessions are never looked up in the revocation store."""

    class CountingStore(MemoryStore):
        loads = 0

        async def load(self, key: str) -> bytes | None:
            CountingStore.loads += 1
            return await super().load(key)

    mw = SessionMiddleware(
        app,
        secret_key_base=secret,
        user_key="user_id",
        revocation_store=CountingStore(clock=clock),
        clock=clock,
    )
    async with client(mw) as c:
        await c.get("/switch?user=")
        await c.get("/logout")
        await read(c)
    assert 0 == CountingStore.loads


def test_user_key_configuration_errors(secret: str) -> None:
    """user_key needs somewhere to keep revocations, and an index for server stores."""
    with pytest.raises(ConfigurationError, match="revocation_store"):
        SessionMiddleware(app, secret_key_base=secret, user_key="user_id")
    with pytest.raises(ConfigurationError, match="per-user index"):
        SessionMiddleware(app, secret_key_base=secret, store=NullStore(), user_key="user_id")
    with pytest.raises(ConfigurationError, match="cookie store"):
        SessionMiddleware(
            app, secret_key_base=secret, store=MemoryStore(), revocation_store=MemoryStore()
        )


async def test_store_keys_never_hold_user_ids(
    secret: str, store: MemoryStore, clock: Clock
) -> None:
    """The index and not-before keys are hashes: no user id appears in the store's keys."""
    mw = SessionMiddleware(
        app, secret_key_base=secret, store=store, user_key="user_id", clock=clock
    )
    async with client(mw) as c:
        await c.get("/login?user=alice@example.com")
    await revoke_user(store, "alice@example.com", now=NOW)
    keys = list(store._items) + list(store._indexes)
    assert hash_key("nb:", "alice@example.com") in keys
    assert not any("alice" in key for key in keys)
