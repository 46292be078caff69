# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""asgisession.Sessions: a session opened and committed outside ASGI, on every store.

Each test runs on the cookie store and on real server stores (a SQLite file, a real
redis-server, a real memcached). The server stores are wrapped in a counter, so "nothing
written" is counted, not assumed. The middleware side is the real SessionMiddleware.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from asgisession import (
    ExpiryTooLong,
    RejectReason,
    Session,
    SessionMiddleware,
    Sessions,
    revoke_user,
)
from asgisession._types import Receive, Scope, Send
from asgisession.sessions import Opened
from asgisession.stores import MemcachedStore, RedisStore, SQLiteStore, Store

from .integration.contract import tampered
from .servers import LOOPBACK, ServerProcess

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: the SQLite, Redis and memcached stores answer through asyncio."""
    return "asyncio"


DAY = 24 * 3600
STORES = ["cookie", "sqlite", "redis", "memcached"]


class Counting:
    """A store that counts the writes it passes on (save, add, delete, touch, index)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes: list[str] = []
        self.namespace = getattr(inner, "namespace", "")

    async def load(self, key: str) -> bytes | None:
        value: bytes | None = await self.inner.load(key)
        return value

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        self.writes.append("save")
        return bool(await self.inner.save(key, data, ttl=ttl, replace=replace))

    async def load_versioned(self, key: str) -> tuple[bytes, bytes | int] | None:
        found: tuple[bytes, bytes | int] | None = await self.inner.load_versioned(key)
        return found

    async def save_if(self, key: str, data: bytes, *, ttl: int, version: bytes | int) -> bool:
        self.writes.append("save")
        return bool(await self.inner.save_if(key, data, ttl=ttl, version=version))

    async def add(self, key: str, data: bytes, *, ttl: int) -> bool:
        self.writes.append("add")
        return bool(await self.inner.add(key, data, ttl=ttl))

    async def delete(self, key: str) -> bool | None:
        self.writes.append("delete")
        found: bool | None = await self.inner.delete(key)
        return found

    async def touch(self, key: str, *, ttl: int) -> bool:
        self.writes.append("touch")
        return bool(await self.inner.touch(key, ttl=ttl))

    async def index_add(self, index: str, member: str, *, expires_at: int) -> None:
        self.writes.append("index_add")
        await self.inner.index_add(index, member, expires_at=expires_at)

    async def index_remove(self, index: str, member: str) -> None:
        self.writes.append("index_remove")
        await self.inner.index_remove(index, member)

    async def index_members(self, index: str, *, now: int) -> dict[str, int]:
        members: dict[str, int] = await self.inner.index_members(index, now=now)
        return members

    async def aclose(self) -> None:
        await self.inner.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Counting | None]:
    """None for the cookie store; else a real store, fresh namespace or file, counted."""
    name: str = request.param
    namespace = f"t{uuid.uuid4().hex}:"
    async with AsyncExitStack() as stack:
        inner: Store
        if name == "cookie":
            yield None
            return
        if name == "sqlite":
            inner = SQLiteStore(tmp_path / "sessions.db")
        elif name == "redis":
            server: ServerProcess = request.getfixturevalue("redis_proc")
            inner = RedisStore.from_url(f"redis://{LOOPBACK}:{server.port}/0", namespace=namespace)
        else:
            memcached: ServerProcess = request.getfixturevalue("memcached_proc")
            inner = MemcachedStore(port=memcached.port, namespace=namespace)
        stack.push_async_callback(inner.aclose)
        yield Counting(inner)


def make(secret: str | list[str], store: Counting | None, **options: Any) -> Sessions:
    return Sessions(secret_key_base=secret, store=store, **options)


def value_of(set_cookie: str | None, name: str = "session") -> str:
    assert set_cookie is not None
    assert set_cookie.startswith(f"{name}=")
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


def writes(store: Counting | None) -> list[str]:
    return [] if store is None else store.writes


async def logged_in(sessions: Sessions, store: Counting | None, **data: Any) -> str:
    session = await sessions.load()
    session.regenerate()
    session.update(data or {"user_id": "42"})
    cookie = value_of(await sessions.commit(session), sessions.cookie.name)
    if store is not None:
        store.writes.clear()
    return cookie


async def test_a_new_session_round_trips(secret: str, store: Counting | None) -> None:
    sessions = make(secret, store)
    session = await sessions.load()
    assert session.is_new
    assert session.rejection is None
    session["cart"] = [1, 2]
    set_cookie = await sessions.commit(session)
    assert set_cookie is not None
    assert {"Path=/", "HttpOnly", "SameSite=Lax", "Secure"} <= {
        part.strip() for part in set_cookie.split(";")
    }
    assert (["add"] if store is not None else []) == writes(store)

    header = f"theme=dark; session={value_of(set_cookie)}; other=1"
    again = await sessions.load(cookie_header=header)
    assert not again.is_new
    assert {"cart": [1, 2]} == dict(again)
    info = sessions.info(again)
    assert info.rejection is None
    if store is None:
        assert info.store_key is None
    else:
        assert info.store_key is not None
        assert info.store_key.startswith("s:")
        assert store.namespace + info.store_key == info.stored_as
        assert await store.inner.load(info.store_key) is not None


async def test_unchanged_sessions_write_nothing(secret: str, store: Counting | None) -> None:
    sessions = make(secret, store)
    fresh = await sessions.load()
    assert dict(fresh) == {}
    assert await sessions.commit(fresh) is None

    cookie = await logged_in(sessions, store)
    session = await sessions.load(cookie=cookie)
    assert "42" == session["user_id"]
    session.get("missing")
    assert await sessions.commit(session) is None
    assert [] == writes(store)

    cart = await logged_in(sessions, store, cart=[1, 2])
    handed_out = await sessions.load(cookie=cart)
    assert [1, 2] == handed_out["cart"]  # a list handed out, left as it was
    assert await sessions.commit(handed_out) is None
    assert [] == writes(store)

    changed = await sessions.load(cookie=cart)
    changed["cart"].append(3)  # changed in place: found by the commit
    set_cookie = await sessions.commit(changed)
    assert (set_cookie is None) == (store is not None)  # a server-side id stays the same
    assert (["save"] if store is not None else []) == writes(store)


@pytest.mark.parametrize("how", ["tampered", "foreign", "expired", "other_name", "junk"])
async def test_refused_cookies_give_an_empty_session(
    secret: str, other_secret: str, store: Counting | None, how: str
) -> None:
    clock = Clock()
    sessions = make(secret, store, clock=clock, lifetime=DAY)
    cookie = await logged_in(sessions, store)
    expected = {
        "tampered": RejectReason.BAD_TAG,
        "foreign": RejectReason.UNKNOWN_KEY,
        "expired": RejectReason.EXPIRED,
        "other_name": RejectReason.WRONG_PURPOSE,
        "junk": RejectReason.MALFORMED,
    }[how]
    if how == "tampered":
        cookie = tampered(cookie)
    elif how == "foreign":
        cookie = await logged_in(make(other_secret, store), store)
    elif how == "expired":
        clock.now += DAY
    elif how == "other_name":
        cookie = await logged_in(make(secret, store, cookie_name="other"), store)
    else:
        cookie = "not a cookie"
    session = await sessions.load(cookie_header=f"session={cookie}")
    assert {} == dict(session)
    assert session.is_new
    assert expected == session.rejection
    assert expected == sessions.info(session).rejection
    assert await sessions.commit(session) is None  # untouched: nothing to send, or to write
    assert [] == writes(store)


async def test_regenerate_moves_the_session(secret: str, store: Counting | None) -> None:
    sessions = make(secret, store)
    old = await logged_in(sessions, store)
    session = await sessions.load(cookie=old)
    session.regenerate()
    new = value_of(await sessions.commit(session))
    assert new != old
    assert {"user_id": "42"} == dict(await sessions.load(cookie=new))
    stale = await sessions.load(cookie=old)
    if store is not None:  # the old id is gone; a cookie-store cookie stays sealed
        assert ["delete", "add"] == store.writes
        assert RejectReason.NOT_FOUND == stale.rejection
        assert {} == dict(stale)


async def test_reset_deletes_the_cookie_and_the_record(secret: str, store: Counting | None) -> None:
    sessions = make(secret, store)
    cookie = await logged_in(sessions, store)
    async with sessions.open(cookie_header=f"session={cookie}") as opened:
        info = sessions.info(opened.session)
        opened.session.reset()
    assert opened.set_cookie is not None
    assert opened.set_cookie.startswith("session=; ")
    assert "Max-Age=0" in opened.set_cookie
    if store is not None:
        assert info.store_key is not None
        assert ["delete"] == store.writes
        assert await store.inner.load(info.store_key) is None


async def test_an_ended_session_is_not_brought_back(secret: str, store: Counting | None) -> None:
    """Two holders of one session: one ends it, the other's change does not resurrect it."""
    if store is None:
        pytest.skip("a cookie-store session has no server-side record to resurrect")
    sessions = make(secret, store)
    cookie = await logged_in(sessions, store)
    first = await sessions.load(cookie=cookie)
    second = await sessions.load(cookie=cookie)
    first.reset()
    await sessions.commit(first)
    second["late"] = True
    set_cookie = await sessions.commit(second)
    assert set_cookie is not None
    assert "Max-Age=0" in set_cookie  # told to drop the cookie
    later = await sessions.load(cookie=cookie)
    assert RejectReason.NOT_FOUND == later.rejection
    assert await sessions.commit(later) is None
    assert "add" not in store.writes

    third = await sessions.load(cookie=cookie)  # unknown id: a change makes a new id
    third["fresh"] = True
    store.writes.clear()
    assert value_of(await sessions.commit(third)) != cookie
    assert ["add"] == store.writes


async def test_revoked_users_are_refused(
    secret: str, store: Counting | None, tmp_path: Path
) -> None:
    if store is None:
        revocations = SQLiteStore(tmp_path / "revocations.db")
        sessions = make(secret, None, user_key="user_id", revocation_store=revocations)
        clock_store: Store = revocations
    else:
        sessions = make(secret, store, user_key="user_id")
        clock_store = store
    clock = Clock()
    sessions = Sessions.from_backend(sessions.backend, clock=clock)
    cookie = await logged_in(sessions, store)
    assert "42" == (await sessions.load(cookie=cookie))["user_id"]
    await revoke_user(clock_store, "42", now=int(clock.now) + 1)
    refused = await sessions.load(cookie=cookie)
    expected = RejectReason.REVOKED if store is None else RejectReason.NOT_FOUND
    assert expected == refused.rejection
    if store is None:
        await revocations.aclose()


async def test_read_only_sessions_are_never_written(secret: str, store: Counting | None) -> None:
    sessions = make(secret, store)
    cookie = await logged_in(sessions, store)
    session = await sessions.load(cookie=cookie, read_only=True)
    session["changed"] = True
    session.regenerate()
    assert await sessions.commit(session) is None
    assert [] == writes(store)
    assert "changed" not in await sessions.load(cookie=cookie)


async def test_an_error_in_the_block_commits_nothing(secret: str, store: Counting | None) -> None:
    sessions = make(secret, store)
    seen: list[Opened] = []

    async def fail_inside() -> None:
        async with sessions.open() as opened:
            seen.append(opened)
            opened.session["x"] = 1
            raise LookupError

    with pytest.raises(LookupError):
        await fail_inside()
    assert seen[0].set_cookie is None
    assert [] == writes(store)


# -- both ways with the real middleware -----------------------------------------------------


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """GET /me echoes the session; GET /bump adds one to session["n"]."""
    session: Session = scope["session"]
    if scope["path"] == "/bump":
        session["n"] = session.get("n", 0) + 1
    body = httpx.Response(200, json=dict(session)).content
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_the_middleware_and_the_api_read_each_others_cookies(
    secret: str, store: Counting | None
) -> None:
    middleware = SessionMiddleware(app, secret_key_base=secret, store=store)
    sessions = Sessions.from_middleware(middleware)
    assert sessions.backend is middleware.backend
    session = await sessions.load()
    session["n"] = 10
    made_here = value_of(await sessions.commit(session, secure=False))

    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        headers = {"cookie": f"session={made_here}"}
        assert {"n": 10} == (await c.get("/me", headers=headers)).json()
        response = await c.get("/bump", headers=headers)
        assert {"n": 11} == response.json()
        made_there = response.cookies.get("session") or made_here  # a server-side id stays
    assert {"n": 11} == dict(await sessions.load(cookie_header=f"session={made_there}"))

    same_settings = make(secret, store)  # built from keywords, not from the middleware
    assert {"n": 11} == dict(await same_settings.load(cookie=made_there))


async def test_an_older_secret_opens_and_is_reissued(
    secret: str, other_secret: str, store: Counting | None
) -> None:
    """Key rotation: the old secret still opens; the commit re-issues under the newest."""
    old = await logged_in(make(other_secret, store), store)
    sessions = make([secret, other_secret], store)
    session = await sessions.load(cookie=old)
    assert "42" == session["user_id"]
    assert sessions.info(session).stale
    set_cookie = await sessions.commit(session)
    new = value_of(set_cookie)
    # A server-side id is re-sealed, and so is its record (one write, even on a read).
    assert ([] if store is None else ["save"]) == writes(store)
    assert not sessions.info(await sessions.load(cookie=new)).stale
    newest_only = make(secret, store)  # the old secret retired: the new cookie still opens
    assert "42" == (await newest_only.load(cookie=new))["user_id"]
    assert RejectReason.UNKNOWN_KEY == (await newest_only.load(cookie=old)).rejection


async def test_set_expiry_follows_the_settings(secret: str, store: Counting | None) -> None:
    """A session opened here is bound by the same lifetime as one in a request."""
    now = [1_800_000_000.0]
    sessions = make(secret, store, lifetime=3600, clock=lambda: now[0])
    session = await sessions.load()
    session["user_id"] = "42"
    with pytest.raises(ExpiryTooLong):
        session.set_expiry(7200)
    session.set_expiry(0)  # ends with the browser
    set_cookie = await sessions.commit(session)
    assert set_cookie is not None
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
    assert not {"max-age", "expires"} & attributes

    again = await sessions.load(cookie=value_of(set_cookie))
    assert again.expires_at_browser_close
    again.set_expiry(600)
    chosen = await sessions.commit(again)
    assert chosen is not None
    assert "Max-Age=600" in chosen
    now[0] += 601
    later = await sessions.load(cookie=value_of(chosen))
    assert {} == dict(later)
    assert later.rejection is not None
