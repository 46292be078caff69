"""SessionMiddleware with a server-side store: ids, laziness, races, outages.

These run against MemoryStore wrapped in a recorder of every store call, so "no store I/O"
and "zero writes" are checked, not assumed. The adapters themselves are covered by the
contract suite in tests/stores/.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from typing import Any

import anyio
import httpx
import pytest

from asgisession import (
    ConfigurationError,
    MessageEncryptor,
    RejectReason,
    Session,
    SessionMiddleware,
    SessionNotLoaded,
    StoreUnavailable,
)
from asgisession._types import Message, Receive, Scope, Send
from asgisession.backends._records import RecordSeal
from asgisession.backends.server import SESSION_ID_BYTES, ServerBackend
from asgisession.crypto import Keyring, b64url_decode
from asgisession.stores.base import hash_key
from asgisession.stores.memory import MemoryStore
from asgisession.stores.null import NullStore

from ..asgi_helpers import Clock

NOW = 1_750_000_000


class RecordingStore(MemoryStore):
    """A MemoryStore that records every call, and can be told to fail or stall."""

    def __init__(self) -> None:
        super().__init__(clock=lambda: float(NOW))
        self.calls: list[tuple[str, str]] = []
        self.failing = False
        self.stall = 0.0

    async def _enter(self, op: str, key: str) -> None:
        self.calls.append((op, key))
        if self.stall:
            await anyio.sleep(self.stall)
        if self.failing:
            raise StoreUnavailable("the test store is down")

    async def load(self, key: str) -> bytes | None:
        await self._enter("load", key)
        return await super().load(key)

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        await self._enter("replace" if replace else "save", key)
        return await super().save(key, data, ttl=ttl, replace=replace)

    async def load_versioned(self, key: str) -> tuple[bytes, bytes] | None:
        await self._enter("load", key)
        return await super().load_versioned(key)

    async def save_if(self, key: str, data: bytes, *, ttl: int, version: bytes | int) -> bool:
        await self._enter("replace", key)  # a replace that compares first
        return await super().save_if(key, data, ttl=ttl, version=version)

    async def touch(self, key: str, *, ttl: int) -> bool:
        await self._enter("touch", key)
        return await super().touch(key, ttl=ttl)

    async def add(self, key: str, data: bytes, *, ttl: int) -> bool:
        await self._enter("add", key)
        return await super().add(key, data, ttl=ttl)

    async def delete(self, key: str) -> bool:
        await self._enter("delete", key)
        return await super().delete(key)

    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """A test app: the path says what to do with the session; the body is JSON."""
    session: Session = scope["session"]
    path = scope["path"]
    status = 200
    result: Any = None
    if path == "/none":
        result = "untouched"
    elif path == "/set":
        session["user"] = "alice"
        session["n"] = session.get("n", 0) + 1
        result = dict(session)
    elif path == "/read":
        result = dict(session)
    elif path == "/regenerate":
        session.regenerate()
        result = dict(session)
    elif path == "/reset":
        session.reset()
    elif path == "/clear":
        session.clear()
    elif path == "/deferred":
        await session.load()
        result = dict(session)
    elif path == "/sync-on-deferred":
        try:
            session.get("user")
        except SessionNotLoaded as exc:
            result = str(exc)
    elif path == "/fail-500":
        session["user"] = "mallory"
        status = 500
    elif path == "/info":
        result = {"data": dict(session), "rejection": session.rejection}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(result).encode()})


def middleware(store: Any, secret: str | list[str], **options: Any) -> SessionMiddleware:
    options.setdefault("clock", lambda: float(NOW))
    return SessionMiddleware(app, secret_key_base=secret, store=store, **options)


def client(mw: SessionMiddleware) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://testserver")


def session_id_of(secret: str, set_cookie: str) -> bytes:
    value = set_cookie.split(";", 1)[0].split("=", 1)[1]
    return MessageEncryptor(Keyring(secret)).open(value, purpose="session", now=NOW).payload


def opened_record(secret: str, session_id: bytes, record: bytes) -> bytes:
    """The serialised data of a session's sealed record."""
    key = hash_key("s:", session_id)
    payload, stale = RecordSeal(Keyring(secret)).open(key, session_id, record)
    assert not stale
    return payload


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


pytestmark = pytest.mark.anyio


async def test_no_cookie_means_no_store_io(secret: str, store: RecordingStore) -> None:
    """Without a session cookie, neither an untouched nor a read session touches the store."""
    async with client(middleware(store, secret)) as c:
        assert "untouched" == (await c.get("/none")).json()
        assert {} == (await c.get("/read")).json()
    assert [] == store.calls


async def test_write_creates_a_record_under_the_hashed_id(
    secret: str, store: RecordingStore
) -> None:
    """The cookie carries a sealed 256-bit id; the store holds only SHA-256 of it."""
    async with client(middleware(store, secret)) as c:
        response = await c.get("/set")
    session_id = session_id_of(secret, response.headers["set-cookie"])
    assert SESSION_ID_BYTES == len(session_id)
    key = hash_key("s:", session_id)
    assert [("add", key)] == store.calls
    record = await store.load(key)
    assert record is not None
    assert b"alice" not in record
    assert b'{"user":"alice","n":1}' == opened_record(secret, session_id, record)
    assert session_id.hex() not in key
    assert session_id.hex().encode() not in record
    assert "private" == response.headers["cache-control"]


async def test_session_survives_requests_and_writes_only_changes(
    secret: str, store: RecordingStore
) -> None:
    """Reads load once per request and write nothing; a change is one replace, no new cookie."""
    async with client(middleware(store, secret)) as c:
        await c.get("/set")
        store.calls.clear()
        response = await c.get("/read")
        assert {"user": "alice", "n": 1} == response.json()
        assert [] == response.headers.get_list("set-cookie")
        assert ["load"] == store.ops()
        response = await c.get("/set")
        assert {"user": "alice", "n": 2} == response.json()
        assert [] == response.headers.get_list("set-cookie")
        assert ["load", "load", "replace"] == store.ops()


async def test_untouched_request_with_cookie_is_preloaded_but_not_written(
    secret: str, store: RecordingStore
) -> None:
    """A cookie means one load before the app runs; untouched, it adds no headers."""
    async with client(middleware(store, secret)) as c:
        await c.get("/set")
        store.calls.clear()
        response = await c.get("/none")
    assert ["load"] == store.ops()
    assert "vary" not in response.headers
    assert "set-cookie" not in response.headers


async def test_forged_cookie_costs_no_store_io(secret: str, store: RecordingStore) -> None:
    """A cookie that does not open is refused before any store call."""
    async with client(middleware(store, secret)) as c:
        c.cookies.set("session", "forged.value")
        assert {"data": {}, "rejection": "malformed"} == (await c.get("/info")).json()
    assert [] == store.calls


async def test_unknown_id_is_a_new_session_with_zero_writes(
    secret: str, store: RecordingStore
) -> None:
    """A valid cookie whose id the store lacks is an empty session; reading it writes nothing."""
    mw = middleware(store, secret)
    async with client(mw) as c:
        await c.get("/set")
        store.calls.clear()
        await store.aclose()  # the record is gone (expired, evicted)
        assert {"data": {}, "rejection": "not_found"} == (await c.get("/info")).json()
        assert ["load"] == store.ops()
        assert Counter({RejectReason.NOT_FOUND: 1}) == mw.rejections
        response = await c.get("/set")
    assert ["load", "load", "add"] == store.ops()
    assert 1 == len(response.headers.get_list("set-cookie"))


async def test_empty_sessions_are_never_stored(secret: str, store: RecordingStore) -> None:
    """Setting and removing keys, or clearing, leaves the store untouched."""
    async with client(middleware(store, secret)) as c:
        response = await c.get("/clear")
    assert [] == store.calls
    assert "set-cookie" not in response.headers


async def test_regenerate_moves_data_to_a_new_id(secret: str, store: RecordingStore) -> None:
    """regenerate(): a new id and cookie, the same data, and the old record deleted."""
    async with client(middleware(store, secret)) as c:
        first = session_id_of(secret, (await c.get("/set")).headers["set-cookie"])
        store.calls.clear()
        response = await c.get("/regenerate")
        second = session_id_of(secret, response.headers["set-cookie"])
        assert {"user": "alice", "n": 1} == (await c.get("/read")).json()
    assert first != second
    assert ["load", "delete", "add", "load"] == store.ops()
    assert None is await store.load(hash_key("s:", first))
    record = await store.load(hash_key("s:", second))
    assert record is not None
    assert b'{"user":"alice","n":1}' == opened_record(secret, second, record)


async def test_reset_deletes_record_and_cookie(secret: str, store: RecordingStore) -> None:
    """reset(): the record is deleted and the browser told to drop the cookie."""
    async with client(middleware(store, secret)) as c:
        session_id = session_id_of(secret, (await c.get("/set")).headers["set-cookie"])
        response = await c.get("/reset")
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert {} == (await c.get("/read")).json()
    assert None is await store.load(hash_key("s:", session_id))


async def test_save_racing_a_delete_does_not_resurrect(secret: str, store: RecordingStore) -> None:
    """A request that loaded before a logout elsewhere and writes after it stays logged out."""
    gate = anyio.Event()

    async def slow_writer(scope: Scope, receive: Receive, send: Send) -> None:
        session: Session = scope["session"]
        assert "alice" == session["user"]
        await gate.wait()
        session["cart"] = ["book"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = middleware(store, secret)
    async with client(mw) as c:
        set_cookie = (await c.get("/set")).headers["set-cookie"]
        key = hash_key("s:", session_id_of(secret, set_cookie))
        writer = SessionMiddleware(
            slow_writer, secret_key_base=secret, store=store, clock=lambda: float(NOW)
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=writer), base_url="http://testserver"
        ) as other_tab:
            other_tab.cookies = c.cookies
            responses: list[httpx.Response] = []

            async def other_request() -> None:
                responses.append(await other_tab.get("/"))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(other_request)
                await anyio.sleep(0.05)
                await c.get("/reset")  # logout in this tab deletes the record
                gate.set()
            response = responses[0]
    assert None is await store.load(key)
    assert "Max-Age=0" in response.headers["set-cookie"]


async def test_5xx_response_does_not_commit(secret: str, store: RecordingStore) -> None:
    """A handler answering 500 saves nothing and sets no cookie."""
    async with client(middleware(store, secret)) as c:
        response = await c.get("/fail-500")
    assert 500 == response.status_code
    assert "set-cookie" not in response.headers
    assert [] == store.calls


async def test_read_only_refresh_is_throttled(secret: str, store: RecordingStore) -> None:
    """With an idle timeout, reads touch the TTL at most once per tenth of it."""
    clock = Clock(NOW)
    mw = middleware(store, secret, idle_timeout=1000, clock=clock)
    async with client(mw) as c:
        await c.get("/set")
        store.calls.clear()
        for _ in range(3):
            clock.now += 30
            assert [] == (await c.get("/read")).headers.get_list("set-cookie")
        clock.now += 10  # 100 s since the cookie was issued: a refresh is due
        response = await c.get("/read")
        assert 1 == len(response.headers.get_list("set-cookie"))
        clock.now += 50
        assert [] == (await c.get("/read")).headers.get_list("set-cookie")
    assert ["load", "load", "load", "load", "touch", "load"] == store.ops()


async def test_idle_session_expires(secret: str, store: RecordingStore) -> None:
    """Past the idle timeout the cookie is refused without store I/O."""
    clock = Clock(NOW)
    async with client(middleware(store, secret, idle_timeout=100, clock=clock)) as c:
        await c.get("/set")
        store.calls.clear()
        clock.now += 100
        assert {"data": {}, "rejection": "idle_timeout"} == (await c.get("/info")).json()
    assert [] == store.calls


async def test_rotation_reissues_the_cookie_and_reseals_the_record(
    secret: str, other_secret: str, store: RecordingStore
) -> None:
    """An id sealed with an older secret is re-sealed under the newest, and so is its record.

    Even on a read: the old secret can then be retired once every active session has made
    one request since the rotation, as with cookie sessions.
    """
    async with client(middleware(store, other_secret)) as c:
        old_cookie = (await c.get("/set")).headers["set-cookie"]
        store.calls.clear()
        async with client(middleware(store, [secret, other_secret])) as rotated:
            rotated.cookies = c.cookies
            response = await rotated.get("/read")
    assert {"user": "alice", "n": 1} == response.json()
    assert ["load", "replace"] == store.ops()
    record = await store.load(store.calls[0][1])
    assert record is not None
    assert Keyring(secret).newest.key_id == record[1:5]
    assert session_id_of(other_secret, old_cookie) == session_id_of(
        secret, response.headers["set-cookie"]
    )


async def test_defer_load_needs_an_explicit_load(secret: str, store: RecordingStore) -> None:
    """Deferred paths skip the preload; sync access says how to load; await load() works."""
    mw = middleware(store, secret, defer_load=["/deferred", "/sync-on-deferred"])
    async with client(mw) as c:
        await c.get("/set")
        store.calls.clear()
        message = (await c.get("/sync-on-deferred")).json()
        assert [] == store.calls
        assert "await session.load()" in message
        assert "defer_load" in message
        assert {"user": "alice", "n": 1} == (await c.get("/deferred")).json()
    assert ["load"] == store.ops()


async def test_defer_load_predicate(secret: str, store: RecordingStore) -> None:
    """defer_load also takes a predicate on the scope."""
    mw = middleware(store, secret, defer_load=lambda scope: scope["path"] == "/none")
    async with client(mw) as c:
        await c.get("/set")
        store.calls.clear()
        await c.get("/none")
    assert [] == store.calls


async def test_outage_503_only_when_the_session_is_needed(
    secret: str, store: RecordingStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Store down: requests that use the session get 503 + Retry-After; others are served."""
    async with client(middleware(store, secret, retry_after=7)) as c:
        await c.get("/set")
        store.failing = True
        with caplog.at_level(logging.WARNING, logger="asgisession"):
            response = await c.get("/read")
        assert 503 == response.status_code
        assert "7" == response.headers["retry-after"]
        assert "set-cookie" not in response.headers
        assert "untouched" == (await c.get("/none")).json()
        store.failing = False
        assert {"user": "alice", "n": 1} == (await c.get("/read")).json()
    assert any("unavailable" in r.getMessage() for r in caplog.records)


async def test_failed_save_is_never_reported_as_saved(secret: str, store: RecordingStore) -> None:
    """When the write fails, the response is a 503, not a 200 without the data."""
    async with client(middleware(store, secret)) as c:
        await c.get("/set")
        store.failing = True
        # the preload fails too; make only the save fail by failing after the load
        store.failing = False

        original_save_if = store.save_if

        async def failing_save_if(key: str, data: bytes, *, ttl: int, version: object) -> bool:
            raise StoreUnavailable("write failed")

        store.save_if = failing_save_if  # type: ignore[method-assign]
        response = await c.get("/set")
        store.save_if = original_save_if  # type: ignore[method-assign]
        assert 503 == response.status_code
        assert {"user": "alice", "n": 1} == (await c.get("/read")).json()


async def test_deprecated_store_timeout_still_bounds_a_store_of_your_own(
    secret: str, store: RecordingStore
) -> None:
    """store_timeout warns; until it goes, a store of your own that stalls counts as down."""
    with pytest.warns(DeprecationWarning, match="set timeout= on the store") as record:
        mw = SessionMiddleware(app, secret_key_base=secret, store=store, store_timeout=0.05)
    assert __file__ == record[0].filename  # the warning points at the caller
    async with client(mw) as c:
        await c.get("/set")
        store.stall = 1.0
        started = time.monotonic()
        response = await c.get("/read")
    assert 503 == response.status_code
    assert time.monotonic() - started < 0.9


async def test_deprecated_store_timeout_leaves_bundled_stores_alone(secret: str) -> None:
    """A bundled store times its own calls: store_timeout adds no second timer to it."""
    store = MemoryStore()
    with pytest.warns(DeprecationWarning, match="store_timeout"):
        mw = middleware(store, secret, store_timeout=0.05)
    assert isinstance(mw.backend, ServerBackend)
    assert store is mw.backend.store


def test_store_timeout_is_checked(secret: str) -> None:
    """A store_timeout that is not seconds > 0 is refused when the middleware is built."""
    with (
        pytest.warns(DeprecationWarning, match="store_timeout"),
        pytest.raises(ConfigurationError, match="> 0"),
    ):
        middleware(MemoryStore(), secret, store_timeout=0)


async def test_anonymous_policy_never_overwrites_the_cookie(
    secret: str, store: RecordingStore
) -> None:
    """With on_store_error='anonymous', an outage gives an empty session that is never saved."""
    async with client(middleware(store, secret, on_store_error="anonymous")) as c:
        await c.get("/set")
        store.failing = True
        assert {} == (await c.get("/read")).json()
        response = await c.get("/set")
        assert 200 == response.status_code
        assert "set-cookie" not in response.headers
        store.failing = False
        assert {"user": "alice", "n": 1} == (await c.get("/read")).json()


async def test_null_store_never_sets_a_cookie(secret: str) -> None:
    """NullStore: the app may use the session per request, but nothing persists."""
    async with client(middleware(NullStore(), secret)) as c:
        response = await c.get("/set")
        assert {"user": "alice", "n": 1} == response.json()
        assert "set-cookie" not in response.headers
        assert {} == (await c.get("/read")).json()


async def test_cookie_value_is_opaque(secret: str, store: RecordingStore) -> None:
    """The id is encrypted in the cookie: its bytes do not appear in the value."""
    async with client(middleware(store, secret)) as c:
        set_cookie = (await c.get("/set")).headers["set-cookie"]
    value = set_cookie.split(";", 1)[0].split("=", 1)[1]
    assert session_id_of(secret, set_cookie) not in b64url_decode(value)


async def test_websocket_outage_closes_with_try_again_later(
    secret: str, store: RecordingStore
) -> None:
    """A WebSocket whose session cannot load is closed with 1013 before it is accepted."""

    async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"].get("user")
        await send({"type": "websocket.accept"})

    async with client(middleware(store, secret)) as c:
        cookie = (await c.get("/set")).headers["set-cookie"].split(";", 1)[0]
    store.failing = True
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/", "headers": [(b"cookie", cookie.encode())]}
    mw = SessionMiddleware(ws_app, secret_key_base=secret, store=store, clock=lambda: float(NOW))
    await mw(scope, receive, send)
    assert [{"type": "websocket.close", "code": 1013, "reason": "Try Again Later"}] == sent


async def test_refresh_interval_is_configurable(secret: str, store: RecordingStore) -> None:
    """refresh_after sets how often reads may push the idle timeout forward."""
    clock = Clock(NOW)
    mw = middleware(store, secret, idle_timeout=1000, refresh_after=500, clock=clock)
    async with client(mw) as c:
        await c.get("/set")
        store.calls.clear()
        clock.now += 499
        assert [] == (await c.get("/read")).headers.get_list("set-cookie")
        clock.now += 1
        assert 1 == len((await c.get("/read")).headers.get_list("set-cookie"))
    assert ["load", "load", "touch"] == store.ops()


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"refresh_after": 10}, "needs an idle_timeout"),
        ({"idle_timeout": 100, "refresh_after": 100}, "between 1 and"),
        ({"idle_timeout": 100, "refresh_after": 0}, "between 1 and"),
        ({"idle_timeout": 100, "refresh_after": 1.5}, "whole seconds"),
    ],
)
def test_refresh_interval_is_checked(secret: str, options: dict[str, Any], match: str) -> None:
    """A refresh interval without an idle timeout, or not shorter than it, is refused."""
    with pytest.raises(ConfigurationError, match=match):
        middleware(MemoryStore(), secret, **options)
    with pytest.raises(ConfigurationError, match=match):
        SessionMiddleware(app, secret_key_base=secret, **options)
