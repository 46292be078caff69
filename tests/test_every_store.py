# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""The middleware suite of the foundation, run against every store.

Each test runs once per backend: the cookie store, MemoryStore, SQLiteStore on a real file,
RedisStore on a real redis-server, on a real three-node Redis Cluster and through real
sentinels (a primary, a replica, three sentinels), MemcachedStore on one real memcached
and over three, and PostgresStore on a real PostgreSQL. Requests go through the real
SessionMiddleware and ``httpx.AsyncClient(transport=httpx.ASGITransport(app=...))`` with its
cookie jar; what ASGITransport cannot show (websockets, streaming) goes through a
hand-rolled scope/receive/send recorder.

Real stores expire keys by their own clock, so the tests give them long TTLs and move only
the middleware's ``clock=``: expiry is then checked where the cookie is refused.

Where the backends differ, the test says so: a server-side session keeps its cookie across
writes (the cookie holds only the id), and a cookie the server dropped (regenerate, clear,
reset) stops working there, while a cookie-store cookie stays valid until it expires.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from redis.asyncio import RedisCluster

from asgisession import (
    Keyring,
    MessageEncryptor,
    RejectReason,
    Session,
    SessionMiddleware,
    revoke_user,
    user_sessions,
)
from asgisession._types import ASGIApp, Message, Receive, Scope, Send
from asgisession.crypto import Opened, SecretKeyBase, b64url_decode, b64url_encode
from asgisession.stores import (
    MemcachedStore,
    MemoryStore,
    PostgresStore,
    RedisStore,
    SQLiteStore,
    Store,
)

from .asgi_helpers import Recorder, client, http_scope, ws_app
from .redis_cluster import RedisClusterProcesses
from .redis_sentinel import SentinelSetup
from .servers import LOOPBACK, PostgresServer, ServerProcess

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: so are the Redis, memcached, PostgreSQL and SQLite stores; the tests use
    asyncio.gather.

    MemoryStore under Trio is covered by tests/backends/ and tests/stores/test_memory.py.
    """
    return "asyncio"


HOUR = 3600
DAY = 24 * HOUR
BACKENDS = [
    "cookie",
    "memory",
    "sqlite",
    "redis",
    "redis-cluster",
    "redis-sentinel",
    "memcached",
    "memcached-ring",
    "postgres",
]


# -- servers: started once, stopped by pid ---------------------------------------------------


# -- the backend under test -------------------------------------------------------------------


class Clock:
    """The middleware's clock, moved by hand; it starts at the real time."""

    def __init__(self) -> None:
        self.start = int(time.time())
        self.now = float(self.start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MakeApp:
    """Builds SessionMiddleware instances over one backend (one store, shared by all)."""

    def __init__(self, name: str, store: Store | None) -> None:
        self.name = name
        self.store = store
        self.clock = Clock()

    @property
    def server_side(self) -> bool:
        return self.store is not None

    def __call__(
        self, secret: SecretKeyBase, inner: ASGIApp | None = None, **options: Any
    ) -> SessionMiddleware:
        options.setdefault("clock", self.clock)
        return SessionMiddleware(inner or app, secret_key_base=secret, store=self.store, **options)


def fresh_namespace() -> str:
    return f"t{uuid.uuid4().hex}:"


def fresh_table() -> str:
    return f"t{uuid.uuid4().hex}"


@pytest.fixture(params=BACKENDS)
async def make_app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeApp]:
    """A SessionMiddleware factory per backend; real stores get a fresh namespace or file."""
    name: str = request.param
    async with AsyncExitStack() as stack:
        store: Store | None = None
        if name == "memory":
            store = MemoryStore()
        elif name == "sqlite":
            store = SQLiteStore(tmp_path / "sessions.db")
        elif name == "redis":
            server: ServerProcess = request.getfixturevalue("redis_proc")
            url = f"redis://{LOOPBACK}:{server.port}/0"
            store = RedisStore.from_url(url, namespace=fresh_namespace())
        elif name == "redis-cluster":
            cluster: RedisClusterProcesses = request.getfixturevalue("redis_cluster")
            client = RedisCluster(host=LOOPBACK, port=cluster.ports[0])
            stack.push_async_callback(client.aclose)  # ours: closed after the store
            store = RedisStore(client, namespace=fresh_namespace())
        elif name == "redis-sentinel":
            sentinels: SentinelSetup = request.getfixturevalue("redis_sentinels")
            store = RedisStore.from_url(sentinels.url, namespace=fresh_namespace())
        elif name == "memcached":
            memcached: ServerProcess = request.getfixturevalue("memcached_proc")
            store = MemcachedStore(port=memcached.port, namespace=fresh_namespace())
        elif name == "memcached-ring":
            ring: list[ServerProcess] = request.getfixturevalue("memcached_ring_procs")
            servers = [(LOOPBACK, server.port) for server in ring]
            store = MemcachedStore(servers=servers, namespace=fresh_namespace())
        elif name == "postgres":
            postgres: PostgresServer = request.getfixturevalue("postgres_proc")
            store = PostgresStore(postgres.url, table=fresh_table())
        else:
            assert "cookie" == name
        if store is not None:
            stack.push_async_callback(store.aclose)
        yield MakeApp(name, store)


# -- the test app -----------------------------------------------------------------------------


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body", False):
            return body


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The path says what to do with the session; the result is the JSON body."""
    params = dict(parse_qsl(scope.get("query_string", b"").decode()))
    body = await read_body(receive)
    session: Session = scope["session"]
    action = scope["path"].strip("/")
    status = 200
    result: Any = None
    if action == "untouched":
        pass
    elif action == "read":
        result = dict(session)
    elif action == "info":
        reason = session.rejection
        result = {
            "data": dict(session),
            "is_new": session.is_new,
            "rejection": reason and reason.value,
        }
    elif action == "set":
        session.update(params)
        result = dict(session)
    elif action == "put":
        session.update(json.loads(body))
        result = dict(session)
    elif action == "append":
        session.setdefault("cart", [])
        session["cart"].append(int(params.get("item", "1")))
        result = dict(session)
    elif action == "cart":
        result = session.get("cart")
    elif action == "incr":
        marker = session.setdefault("marker", params["marker"])
        count = session.get("count", 0)
        await asyncio.sleep(0)  # let other clients' requests interleave
        session["count"] = count + 1
        result = {"marker": marker, "count": count + 1}
    elif action == "regenerate":
        session.regenerate()
        result = dict(session)
    elif action == "reset":
        session.reset()
        result = dict(session)
    elif action == "clear":
        session.clear()
        result = dict(session)
    elif action == "fail":
        session.update(params)
        status = 500
    else:
        raise AssertionError(action)
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(result).encode()})


# -- helpers ----------------------------------------------------------------------------------


def cookie_value(set_cookie: str | bytes) -> str:
    """The value part of a Set-Cookie header."""
    text = set_cookie.decode("latin-1") if isinstance(set_cookie, bytes) else set_cookie
    return text.split(";", 1)[0].split("=", 1)[1]


def open_cookie(secret: SecretKeyBase, value: str, now: float) -> Opened:
    return MessageEncryptor(Keyring(secret)).open(value, purpose="session", now=int(now))


async def issue(mw: SessionMiddleware, query: str = "user=alice") -> str:
    """Run one write through ``mw`` and return the session cookie's value."""
    async with client(mw) as c:
        response = await c.get(f"/set?{query}")
    (set_cookie,) = response.headers.get_list("set-cookie")
    return cookie_value(set_cookie)


async def info(mw: SessionMiddleware, value: str) -> Any:
    """What a fresh client (no jar) sees when it sends ``value`` as the session cookie."""
    async with client(mw) as c:
        response = await c.get("/info", headers={"cookie": f"session={value}"})
    assert 200 == response.status_code
    return response.json()


EMPTY = {"data": {}, "is_new": True, "rejection": None}


# -- quiet when nothing happens ---------------------------------------------------------------


async def test_untouched_session_adds_nothing(make_app: MakeApp, secret: str) -> None:
    """An app that never touches the session gets no Set-Cookie, Vary or Cache-Control."""
    mw = make_app(secret)
    value = await issue(mw)
    async with client(mw) as c:
        for headers in ({}, {"cookie": f"session={value}"}):
            response = await c.get("/untouched", headers=headers)
            assert [] == response.headers.get_list("set-cookie")
            assert "vary" not in response.headers
            assert "cache-control" not in response.headers
        assert {"user": "alice"} == (
            await c.get("/read", headers={"cookie": f"session={value}"})
        ).json()


async def test_read_only_sets_vary_but_no_cookie(make_app: MakeApp, secret: str) -> None:
    """Reading the session adds Vary: Cookie, and neither Set-Cookie nor Cache-Control."""
    mw = make_app(secret)
    value = await issue(mw)
    async with client(mw) as c:
        response = await c.get("/read", headers={"cookie": f"session={value}"})
        assert {"user": "alice"} == response.json()
        assert [] == response.headers.get_list("set-cookie")
        assert ["Cookie"] == response.headers.get_list("vary")
        assert "cache-control" not in response.headers

        response = await c.get("/read")  # no cookie: a new, empty session, only read
        assert {} == response.json()
        assert [] == response.headers.get_list("set-cookie")
        assert ["Cookie"] == response.headers.get_list("vary")


# -- writing ----------------------------------------------------------------------------------


async def test_write_sets_one_cookie_vary_and_cache_control(make_app: MakeApp, secret: str) -> None:
    """The first write sends one Set-Cookie, Vary and Cache-Control: private."""
    async with client(make_app(secret)) as c:
        response = await c.get("/set?user=alice")
        (set_cookie,) = response.headers.get_list("set-cookie")
        assert ["Cookie"] == response.headers.get_list("vary")
        assert ["private"] == response.headers.get_list("cache-control")
        attributes = [part.strip() for part in set_cookie.split(";")]
        assert attributes[0].startswith("session=")
        sealed = open_cookie(secret, cookie_value(set_cookie), make_app.clock.now).payload
        if make_app.server_side:  # the cookie holds only the 256-bit session id
            assert 32 == len(sealed)
        else:
            assert b'{"user":"alice"}' == sealed
        assert {"Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={14 * DAY}"} <= set(attributes)

        response = await c.get("/set?theme=dark")
        assert {"user": "alice", "theme": "dark"} == response.json()
        assert ["Cookie"] == response.headers.get_list("vary")
        # A server-side cookie holds only the id: later writes need no new one.
        expected_cookies = 0 if make_app.server_side else 1
        assert expected_cookies == len(response.headers.get_list("set-cookie"))

        assert {"user": "alice", "theme": "dark"} == (await c.get("/read")).json()


async def test_values_round_trip(make_app: MakeApp, secret: str) -> None:
    """Nested dicts and lists, unicode, ints, bools and None come back as they were written."""
    values = {
        "profile": {"name": "Zoë Ñúñez", "tags": ["λ", "日本語", "中文"], "deep": [1, {"x": None}]},
        "greeting": 'héllo 🎉 \u2028 "quoted" \\ back',
        "count": 42,
        "negative": -7,
        "big": 2**53,
        "float": 1.5,
        "zero": 0,
        "yes": True,
        "no": False,
        "nothing": None,
        "empty_list": [],
        "empty_dict": {},
        "ключ": "значение",
    }
    async with client(make_app(secret)) as c:
        response = await c.post("/put", json=values)
        assert values == response.json()
        assert 1 == len(response.headers.get_list("set-cookie"))
        assert values == (await c.get("/read")).json()

        response = await c.post("/put", json={"count": 43, "profile": {"name": "Ω"}})
        assert {**values, "count": 43, "profile": {"name": "Ω"}} == response.json()
        assert {**values, "count": 43, "profile": {"name": "Ω"}} == (await c.get("/read")).json()


async def test_nested_mutation_is_saved(make_app: MakeApp, secret: str) -> None:
    """session["cart"].append(x) is written; reading the list back unchanged writes nothing."""
    async with client(make_app(secret)) as c:
        response = await c.get("/append?item=1")
        assert 1 == len(response.headers.get_list("set-cookie"))
        response = await c.get("/append?item=2")
        assert {"cart": [1, 2]} == response.json()
        expected_cookies = 0 if make_app.server_side else 1
        assert expected_cookies == len(response.headers.get_list("set-cookie"))

        response = await c.get("/cart")
        assert [1, 2] == response.json()
        assert [] == response.headers.get_list("set-cookie")
        assert ["Cookie"] == response.headers.get_list("vary")
        assert "cache-control" not in response.headers
        assert {"cart": [1, 2]} == (await c.get("/read")).json()


# -- clearing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["clear", "reset"])
async def test_clear_and_reset_delete_the_cookie(
    make_app: MakeApp, secret: str, action: str
) -> None:
    """clear()/reset() with a cookie send a deletion; the next request has an empty session."""
    mw = make_app(secret)
    async with client(mw) as c:
        response = await c.get("/set?user=alice")
        old = cookie_value(response.headers["set-cookie"])
        response = await c.get(f"/{action}")
        assert {} == response.json()
        (deletion,) = response.headers.get_list("set-cookie")
        parts = [part.strip() for part in deletion.split(";")]
        assert "session=" == parts[0]
        assert {"Path=/", "Max-Age=0"} <= set(parts)
        assert "session" not in c.cookies
        assert EMPTY == (await c.get("/info")).json()

    if make_app.server_side:  # the record is gone: the old cookie opens nothing
        assert {"data": {}, "is_new": True, "rejection": "not_found"} == await info(mw, old)
        assert Counter({RejectReason.NOT_FOUND: 1}) == mw.rejections
    else:  # the cookie store cannot take back a cookie it issued
        assert {"data": {"user": "alice"}, "is_new": False, "rejection": None} == await info(
            mw, old
        )


async def test_clear_without_cookie_sends_nothing(make_app: MakeApp, secret: str) -> None:
    """clear() and reset() of a session that had no cookie send no Set-Cookie."""
    async with client(make_app(secret)) as c:
        for action in ("clear", "reset"):
            response = await c.get(f"/{action}")
            assert 200 == response.status_code
            assert [] == response.headers.get_list("set-cookie")
        assert not c.cookies


# -- regenerate -------------------------------------------------------------------------------


async def test_regenerate_keeps_data_under_a_new_cookie(make_app: MakeApp, secret: str) -> None:
    """regenerate() keeps the data under a new cookie value; server stores drop the old one."""
    mw = make_app(secret)
    async with client(mw) as c:
        first = cookie_value((await c.get("/set?user=alice")).headers["set-cookie"])
        response = await c.get("/regenerate")
        assert {"user": "alice"} == response.json()
        (set_cookie,) = response.headers.get_list("set-cookie")
        second = cookie_value(set_cookie)
        assert first != second
        assert {"user": "alice"} == (await c.get("/read")).json()

    assert {"data": {"user": "alice"}, "is_new": False, "rejection": None} == await info(mw, second)
    if make_app.server_side:
        assert {"data": {}, "is_new": True, "rejection": "not_found"} == await info(mw, first)
        assert Counter({RejectReason.NOT_FOUND: 1}) == mw.rejections
    else:  # a cookie-store cookie stays valid until it expires
        assert {"data": {"user": "alice"}, "is_new": False, "rejection": None} == await info(
            mw, first
        )


async def test_regenerate_restarts_lifetime(make_app: MakeApp, secret: str) -> None:
    """regenerate() seals a new absolute expiry, counted from the regeneration."""
    clock = make_app.clock
    mw = make_app(secret, lifetime=HOUR)
    async with client(mw) as c:
        await c.get("/set?user=alice")
        clock.advance(600)
        response = await c.get("/regenerate")
        set_cookie = response.headers["set-cookie"]
        assert "Max-Age=3600" in set_cookie
        opened = open_cookie(secret, cookie_value(set_cookie), clock.now)
        assert clock.start + 600 + HOUR == opened.expires_at

        clock.advance(HOUR - 1)
        assert {"user": "alice"} == (await c.get("/read")).json()
        clock.advance(1)
        assert "expired" == (await c.get("/info")).json()["rejection"]


# -- rejected cookies ---------------------------------------------------------------------------


async def bad_cookie(case: str, make_app: MakeApp, secret: str, other: str) -> str:
    """A session cookie value that ``make_app(secret)`` must refuse."""
    if case == "garbage":
        return "not*base64"
    if case == "foreign_secret":
        return await issue(make_app(other))
    if case == "wrong_name":
        return await issue(make_app(secret, cookie_name="other"))
    frame = bytearray(b64url_decode(await issue(make_app(secret))))
    if case == "tampered":
        frame[len(frame) // 2] ^= 0x01
        return b64url_encode(bytes(frame))
    if case == "truncated":
        return b64url_encode(bytes(frame[:-5]))
    raise AssertionError(case)


REJECTIONS = {
    "garbage": RejectReason.MALFORMED,
    "tampered": RejectReason.BAD_TAG,
    "truncated": RejectReason.BAD_TAG,
    "foreign_secret": RejectReason.UNKNOWN_KEY,
    "wrong_name": RejectReason.WRONG_PURPOSE,
}


@pytest.mark.parametrize(("case", "reason"), REJECTIONS.items(), ids=list(REJECTIONS))
async def test_rejected_cookie_gives_empty_session(
    make_app: MakeApp, secret: str, other_secret: str, case: str, reason: RejectReason
) -> None:
    """A refused cookie: 200, an empty session, the reason exposed, counted and hooked."""
    bad = await bad_cookie(case, make_app, secret, other_secret)
    rejected: list[RejectReason] = []
    mw = make_app(secret, on_reject=rejected.append)
    assert {"data": {}, "is_new": True, "rejection": reason.value} == await info(mw, bad)
    assert Counter({reason: 1}) == mw.rejections
    assert [reason] == rejected


async def test_rejected_cookie_is_replaced_on_write(make_app: MakeApp, secret: str) -> None:
    """Writing to a session whose cookie was refused issues a fresh cookie that works."""
    mw = make_app(secret)
    async with client(mw) as c:
        response = await c.get("/set?user=bob", headers={"cookie": "session=garbage!"})
    (set_cookie,) = response.headers.get_list("set-cookie")
    assert Counter({RejectReason.MALFORMED: 1}) == mw.rejections
    assert {"data": {"user": "bob"}, "is_new": False, "rejection": None} == await info(
        mw, cookie_value(set_cookie)
    )


async def test_bad_cookie_on_untouched_request_changes_nothing(
    make_app: MakeApp, secret: str
) -> None:
    """An untouched request with a refused cookie is served as is (server stores count it)."""
    mw = make_app(secret)
    async with client(mw) as c:
        response = await c.get("/untouched", headers={"cookie": "session=garbage!"})
    assert 200 == response.status_code
    assert [] == response.headers.get_list("set-cookie")
    assert "vary" not in response.headers
    expected = Counter({RejectReason.MALFORMED: 1}) if make_app.server_side else Counter()
    assert expected == mw.rejections


async def test_first_valid_duplicate_wins(make_app: MakeApp, secret: str) -> None:
    """With a garbage session cookie first and a valid one second, the valid one is used."""
    mw = make_app(secret)
    value = await issue(mw)
    async with client(mw) as c:
        response = await c.get("/info", headers={"cookie": f"session=garbage!; session={value}"})
    assert {"data": {"user": "alice"}, "is_new": False, "rejection": None} == response.json()
    assert Counter() == mw.rejections


async def test_empty_cookie_value_is_no_cookie(make_app: MakeApp, secret: str) -> None:
    """`session=` (what a deletion can leave behind) is an absent cookie, not a rejection."""
    mw = make_app(secret)
    assert EMPTY == await info(mw, "")
    assert Counter() == mw.rejections


# -- secrets and expiry -------------------------------------------------------------------------


async def test_rotation_reissues_under_newest_secret(
    make_app: MakeApp, secret: str, other_secret: str
) -> None:
    """A session made under A is read by [A's successor B, A] and re-issued under B."""
    old, new = secret, other_secret
    clock = make_app.clock
    value = await issue(make_app(old))

    async with client(make_app([new, old])) as c:
        response = await c.get("/read", headers={"cookie": f"session={value}"})
    assert {"user": "alice"} == response.json()
    (set_cookie,) = response.headers.get_list("set-cookie")
    reissued = cookie_value(set_cookie)
    assert 0 == open_cookie([new], reissued, clock.now).key_index
    if make_app.server_side:  # the same id, re-sealed
        assert (
            open_cookie(old, value, clock.now).payload
            == open_cookie(new, reissued, clock.now).payload
        )

    only_new = make_app(new)
    assert {"data": {"user": "alice"}, "is_new": False, "rejection": None} == await info(
        only_new, reissued
    )
    assert {"data": {}, "is_new": True, "rejection": "unknown_key"} == await info(only_new, value)


async def test_idle_timeout_refreshes_active_and_expires_idle(
    make_app: MakeApp, secret: str
) -> None:
    """Active sessions are re-issued once idle_timeout//10 has passed; idle ones expire."""
    clock = make_app.clock
    mw = make_app(secret, lifetime=100 * HOUR, idle_timeout=1000)
    async with client(mw) as c:
        response = await c.get("/set?user=alice")
        assert "Max-Age=1000" in response.headers["set-cookie"]
        first = open_cookie(secret, cookie_value(response.headers["set-cookie"]), clock.now)

        clock.advance(99)
        response = await c.get("/read")
        assert [] == response.headers.get_list("set-cookie")

        clock.advance(1)
        response = await c.get("/read")
        assert {"user": "alice"} == response.json()
        refreshed = open_cookie(secret, cookie_value(response.headers["set-cookie"]), clock.now)
        assert clock.start + 100 == refreshed.issued_at
        assert first.expires_at == refreshed.expires_at
        assert first.payload == refreshed.payload

        clock.advance(999)
        assert {"user": "alice"} == (await c.get("/read")).json()

        clock.advance(1000)
        response = await c.get("/info")
    assert {"data": {}, "is_new": True, "rejection": "idle_timeout"} == response.json()
    assert Counter({RejectReason.IDLE_TIMEOUT: 1}) == mw.rejections


async def test_refresh_is_throttled(make_app: MakeApp, secret: str) -> None:
    """Reads re-issue the cookie at most once per tenth of the idle timeout."""
    clock = make_app.clock
    mw = make_app(secret, idle_timeout=1000)
    refreshed: list[int] = []
    async with client(mw) as c:
        await c.get("/set?user=alice")
        for _ in range(12):
            clock.advance(30)
            response = await c.get("/read")
            assert {"user": "alice"} == response.json()
            if response.headers.get_list("set-cookie"):
                refreshed.append(int(clock.now) - clock.start)
    assert [120, 240, 360] == refreshed


async def test_untouched_requests_do_not_refresh(make_app: MakeApp, secret: str) -> None:
    """Requests that never touch the session do not count as activity."""
    clock = make_app.clock
    mw = make_app(secret, idle_timeout=1000)
    async with client(mw) as c:
        await c.get("/set?user=alice")
        clock.advance(500)
        assert [] == (await c.get("/untouched")).headers.get_list("set-cookie")
        clock.advance(500)
        response = await c.get("/info")
    assert "idle_timeout" == response.json()["rejection"]


async def test_lifetime_is_absolute(make_app: MakeApp, secret: str) -> None:
    """Writes keep the first expiry; the cookie store's Max-Age shrinks to match it."""
    clock = make_app.clock
    mw = make_app(secret, lifetime=HOUR)
    async with client(mw) as c:
        response = await c.get("/set?user=alice")
        assert "Max-Age=3600" in response.headers["set-cookie"]

        clock.advance(600)
        response = await c.get("/set?theme=dark")
        if make_app.server_side:
            assert [] == response.headers.get_list("set-cookie")
        else:
            assert "Max-Age=3000" in response.headers["set-cookie"]
        value = c.cookies["session"]
        assert clock.start + HOUR == open_cookie(secret, value, clock.now).expires_at

        clock.advance(2999)
        assert {"user": "alice", "theme": "dark"} == (await c.get("/read")).json()
        clock.advance(1)
        response = await c.get("/info")
    assert {"data": {}, "is_new": True, "rejection": "expired"} == response.json()
    assert Counter({RejectReason.EXPIRED: 1}) == mw.rejections


async def test_max_age_follows_idle_timeout(make_app: MakeApp, secret: str) -> None:
    """With an idle timeout, the browser forgets the cookie when the server would refuse it."""
    async with client(make_app(secret, idle_timeout=600)) as c:
        response = await c.get("/set?user=alice")
    assert "Max-Age=600" in response.headers["set-cookie"]


@pytest.mark.parametrize(
    ("base_url", "secure"), [("https://testserver", True), ("http://testserver", False)]
)
async def test_secure_auto_follows_scheme(
    make_app: MakeApp, secret: str, base_url: str, secure: bool
) -> None:
    """secure="auto" adds the Secure attribute on https requests only."""
    async with client(make_app(secret), base_url) as c:
        response = await c.get("/set?user=alice")
        attributes = [p.strip() for p in response.headers["set-cookie"].split(";")]
        assert secure == ("Secure" in attributes)
        assert {"user": "alice"} == (await c.get("/read")).json()


# -- errors -----------------------------------------------------------------------------------


async def test_5xx_response_commits_nothing(make_app: MakeApp, secret: str) -> None:
    """A 500 neither creates a session nor saves a change to an existing one."""
    mw = make_app(secret)
    async with client(mw) as c:
        response = await c.get("/fail?user=mallory")
        assert 500 == response.status_code
        assert [] == response.headers.get_list("set-cookie")
        assert not c.cookies

        await c.get("/set?user=alice")
        response = await c.get("/fail?user=mallory&role=admin")
        assert 500 == response.status_code
        assert [] == response.headers.get_list("set-cookie")
        assert {"user": "alice"} == (await c.get("/read")).json()


# -- websockets -------------------------------------------------------------------------------


async def test_websocket_reads_session_in_handshake(make_app: MakeApp, secret: str) -> None:
    """The handshake sees the session; reading it leaves websocket.accept as the app sent it."""
    value = await issue(make_app(secret))
    recorder = Recorder([{"type": "websocket.connect"}])
    scope = http_scope(f"session={value}", scope_type="websocket", scheme="ws")
    await make_app(secret, ws_app(write=False))(scope, recorder.receive, recorder.send)
    assert {"type": "websocket.accept", "headers": [(b"x-app", b"1")]} == recorder.sent[0]
    assert "alice" == recorder.sent[1]["text"]


async def test_websocket_new_session_sets_cookie_on_accept(make_app: MakeApp, secret: str) -> None:
    """A handshake that writes a new session adds one Set-Cookie to websocket.accept."""
    recorder = Recorder([{"type": "websocket.connect"}])
    scope = http_scope(scope_type="websocket", scheme="wss")
    mw = make_app(secret, ws_app(write=True))
    await mw(scope, recorder.receive, recorder.send)
    accept, text, _ = recorder.sent
    assert "websocket.accept" == accept["type"]
    assert "None" == text["text"]
    (set_cookie,) = recorder.headers(b"set-cookie")
    assert [b"1"] == recorder.headers(b"x-app")
    assert [] == recorder.headers(b"vary")
    assert b"Secure" in set_cookie
    assert {"data": {"seen": True}, "is_new": False, "rejection": None} == await info(
        make_app(secret), cookie_value(set_cookie)
    )


async def test_websocket_write_to_existing_session_is_saved(make_app: MakeApp, secret: str) -> None:
    """A handshake that changes an existing session saves it (a new cookie only if needed)."""
    value = await issue(make_app(secret))
    recorder = Recorder([{"type": "websocket.connect"}])
    scope = http_scope(f"session={value}", scope_type="websocket", scheme="ws")
    await make_app(secret, ws_app(write=True))(scope, recorder.receive, recorder.send)
    assert "alice" == recorder.sent[1]["text"]
    cookies = recorder.headers(b"set-cookie")
    assert (0 if make_app.server_side else 1) == len(cookies)
    current = cookie_value(cookies[0]) if cookies else value
    assert {"user": "alice", "seen": True} == (await info(make_app(secret), current))["data"]


# -- streaming --------------------------------------------------------------------------------


async def test_body_is_streamed_not_buffered(make_app: MakeApp, secret: str) -> None:
    """Three body chunks pass through one by one, in order, as the very same objects."""
    chunks: list[Message] = [
        {"type": "http.response.body", "body": b"one", "more_body": True},
        {"type": "http.response.body", "body": b"two", "more_body": True},
        {"type": "http.response.body", "body": b"three", "more_body": False},
    ]
    recorder = Recorder()

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["user"] = "alice"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for index, chunk in enumerate(chunks):
            await send(chunk)
            assert 2 + index == len(recorder.sent)

    await make_app(secret, streaming)(http_scope(), recorder.receive, recorder.send)
    assert 4 == len(recorder.sent)
    (set_cookie,) = recorder.headers(b"set-cookie")
    for sent, chunk in zip(recorder.sent[1:], chunks, strict=True):
        assert sent is chunk
    assert {"user": "alice"} == (await info(make_app(secret), cookie_value(set_cookie)))["data"]


# -- concurrency ------------------------------------------------------------------------------

CLIENTS = 50
ROUNDS = 5


async def test_concurrent_clients_keep_their_own_sessions(make_app: MakeApp, secret: str) -> None:
    """50 concurrent clients doing read-modify-write each see only their own, complete data."""
    mw = make_app(secret)

    async def one_client(n: int) -> tuple[Any, str]:
        async with client(mw) as c:
            for round_ in range(ROUNDS):
                response = await c.get("/incr", params={"marker": f"client-{n}"})
                assert 200 == response.status_code
                assert {"marker": f"client-{n}", "count": round_ + 1} == response.json()
            return (await c.get("/read")).json(), c.cookies["session"]

    results = await asyncio.gather(*(one_client(n) for n in range(CLIENTS)))
    expected = [{"marker": f"client-{n}", "count": ROUNDS} for n in range(CLIENTS)]
    assert expected == [data for data, _ in results]
    assert CLIENTS == len({value for _, value in results})
    assert Counter() == mw.rejections


# -- log out everywhere and real outages --------------------------------------------------


@pytest.mark.anyio
async def test_log_out_everywhere(make_app: MakeApp, secret: str) -> None:
    """revoke_user ends every session of one user and no other's, with every store."""
    revocations = MemoryStore() if make_app.store is None else None
    options: dict[str, Any] = {"user_key": "user_id"}
    if revocations is not None:
        options["revocation_store"] = revocations
    mw = make_app(secret, **options)
    store = make_app.store or revocations
    assert store is not None
    async with client(mw) as laptop, client(mw) as phone, client(mw) as other:
        await laptop.get("/set?user_id=alice")
        await phone.get("/set?user_id=alice")
        await other.get("/set?user_id=bob")
        expected = 0 if make_app.store is None else 2
        assert expected == len(await user_sessions(store, "alice"))
        make_app.clock.advance(1)  # cookies issued before this second are refused
        assert expected == await revoke_user(store, "alice", now=int(make_app.clock.now))
        for device in (laptop, phone):
            body = (await device.get("/info")).json()
            assert {} == body["data"]
            assert body["rejection"] in ("revoked", "not_found")
        assert {"user_id": "bob"} == (await other.get("/read")).json()


@pytest.mark.anyio
@pytest.mark.parametrize("server_name", ["redis", "memcached", "postgres"])
async def test_real_outage_gives_503_then_recovers(
    server_name: str, request: pytest.FixtureRequest, secret: str
) -> None:
    """With the real server stopped: 503 + Retry-After if the session is needed, else served;
    after a restart the same store serves again (sessions in memory are gone, not mixed up;
    PostgreSQL's are on disk and come back)."""
    server: ServerProcess | PostgresServer = request.getfixturevalue(f"{server_name}_proc")
    store: Store
    if server_name == "redis":
        store = RedisStore.from_url(
            f"redis://{LOOPBACK}:{server.port}/0", namespace=fresh_namespace(), timeout=1.0
        )
    elif isinstance(server, PostgresServer):
        store = PostgresStore(server.url, table=fresh_table(), timeout=1.0)
    else:
        store = MemcachedStore(port=server.port, namespace=fresh_namespace(), timeout=1.0)
    async with store:
        mw = SessionMiddleware(app, secret_key_base=secret, store=store)
        async with client(mw) as c:
            await c.get("/set?user=alice")
            server.stop()
            try:
                started = time.monotonic()
                response = await c.get("/read")
                assert 503 == response.status_code
                assert "5" == response.headers["retry-after"]
                assert time.monotonic() - started < 3.0
                assert 200 == (await c.get("/untouched")).status_code
            finally:
                server.start()
            response = await c.get("/info")
            assert 200 == response.status_code
            assert response.json()["data"] in ({}, {"user": "alice"})
            if server_name == "postgres":  # durable: nothing lost
                assert {"user": "alice"} == response.json()["data"]
            assert "bob" == (await c.get("/set?user=bob")).json()["user"]
            assert {"user": "bob"} == (await c.get("/read")).json()
