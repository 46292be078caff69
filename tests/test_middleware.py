# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""Tests for asgisession.middleware: SessionMiddleware on the default cookie store.

Most flows go through httpx.ASGITransport with the client's cookie jar; what ASGITransport
cannot show (lifespan, websockets, message identity, what was sent before an error) goes
through a hand-rolled scope/receive/send recorder.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgisession import (
    ConfigurationError,
    CookieOptions,
    CookieOverflow,
    Keyring,
    MessageEncryptor,
    RejectReason,
    SerializationError,
    Session,
    SessionMiddleware,
)
from asgisession._types import Receive, Scope, Send
from asgisession.backends.cookie import CookieBackend
from asgisession.cookies import cookie_values
from asgisession.crypto import Opened, b64url_decode, b64url_encode
from asgisession.session import Commit, LoadedState, control_of

from .asgi_helpers import Clock, Recorder, client, http_scope, ws_app

NOW = 1_750_000_000
HOUR = 3600


# -- helpers ------------------------------------------------------------------------------


class SpyCodec:
    """A MessageCodec that wraps the real encryptor and counts the calls to open()."""

    records_issued_at = True

    def __init__(self, secret: str) -> None:
        self.inner = MessageEncryptor(Keyring(secret))
        self.opens = 0

    def seal(self, payload: bytes, *, purpose: str, issued_at: int, expires_at: int) -> str:
        return self.inner.seal(payload, purpose=purpose, issued_at=issued_at, expires_at=expires_at)

    def open(self, token: str, *, purpose: str, now: int) -> Opened:
        self.opens += 1
        return self.inner.open(token, purpose=purpose, now=now)


def cookie_value(set_cookie: str | bytes) -> str:
    """The value part of a Set-Cookie header."""
    text = set_cookie.decode("latin-1") if isinstance(set_cookie, bytes) else set_cookie
    return text.split(";", 1)[0].split("=", 1)[1]


def open_cookie(secret: str | list[str], value: str, now: float = NOW) -> Opened:
    return MessageEncryptor(Keyring(secret)).open(value, purpose="session", now=int(now))


def seal(secret: str, payload: bytes, *, name: str = "session", now: int = NOW) -> str:
    codec = MessageEncryptor(Keyring(secret))
    return codec.seal(payload, purpose=name, issued_at=now, expires_at=now + HOUR)


# What each path of the test app does to the session; the result is the JSON body.
Action = Callable[[Session, dict[str, str]], Any]


def _set(session: Session, params: dict[str, str]) -> Any:
    session.update(params)
    return dict(session)


def _append(session: Session, params: dict[str, str]) -> Any:
    session.setdefault("cart", [])
    session["cart"].append(int(params.get("item", "1")))
    return dict(session)


def _info(session: Session, params: dict[str, str]) -> Any:
    reason = session.rejection
    return {"data": dict(session), "is_new": session.is_new, "rejection": reason and reason.value}


def _regenerate(session: Session, params: dict[str, str]) -> Any:
    session.regenerate()
    return dict(session)


def _reset(session: Session, params: dict[str, str]) -> Any:
    session.reset()
    return dict(session)


def _clear(session: Session, params: dict[str, str]) -> Any:
    session.clear()
    return dict(session)


ACTIONS: dict[str, Action] = {
    "untouched": lambda session, params: None,
    "read": lambda session, params: dict(session),
    "cart": lambda session, params: session.get("cart"),
    "set": _set,
    "append": _append,
    "info": _info,
    "regenerate": _regenerate,
    "reset": _reset,
    "clear": _clear,
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Runs ACTIONS[path]; ``?vary=`` and ``?cache_control=`` set response headers."""
    params = dict(parse_qsl(scope.get("query_string", b"").decode()))
    headers = [(b"content-type", b"application/json")]
    if "vary" in params:
        headers.append((b"vary", params.pop("vary").encode()))
    if "cache_control" in params:
        headers.append((b"Cache-Control", params.pop("cache_control").encode()))
    result = ACTIONS[scope["path"].strip("/")](scope["session"], params)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(result).encode()})


async def issue(mw: SessionMiddleware, query: str = "user=alice") -> str:
    """Run one write through ``mw`` and return the session cookie's value."""
    async with client(mw) as c:
        response = await c.get(f"/set?{query}")
    (set_cookie,) = response.headers.get_list("set-cookie")
    return cookie_value(set_cookie)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


# -- pass-through -------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("scope_type", ["lifespan", "custom.unknown"])
async def test_other_scope_types_pass_through(secret: str, scope_type: str) -> None:
    """Lifespan and unknown scopes reach the app as the very same objects, with no session."""
    seen: list[tuple[Scope, Receive, Send]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    scope: Scope = {"type": scope_type, "asgi": {"version": "3.0"}}
    recorder = Recorder([{"type": "lifespan.startup"}])
    receive, send = recorder.receive, recorder.send
    await SessionMiddleware(inner, secret_key_base=secret)(scope, receive, send)

    ((got_scope, got_receive, got_send),) = seen
    assert got_scope is scope
    assert got_receive is receive
    assert got_send is send
    assert {"type": scope_type, "asgi": {"version": "3.0"}} == scope


@pytest.mark.anyio
async def test_session_is_put_in_the_scope(secret: str) -> None:
    """HTTP requests get a Session in scope["session"] and a wrapped send."""
    seen: list[tuple[Any, Send]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["session"], send))

    recorder = Recorder()
    send = recorder.send
    await SessionMiddleware(inner, secret_key_base=secret)(
        http_scope(path="/read"), recorder.receive, send
    )
    ((session, got_send),) = seen
    assert isinstance(session, Session)
    assert not control_of(session).accessed
    assert got_send is not send


# -- quiet when nothing happens -------------------------------------------------------------


@pytest.mark.anyio
async def test_untouched_session_adds_nothing_and_opens_nothing(secret: str) -> None:
    """An app that never touches the session gets no Set-Cookie/Vary/Cache-Control, no decode."""
    spy = SpyCodec(secret)
    mw = SessionMiddleware(app, secret_key_base=secret, cookie_format=spy)
    value = await issue(mw)
    assert 0 == spy.opens

    async with client(mw) as c:
        response = await c.get("/untouched", headers={"cookie": f"session={value}"})
    assert 0 == spy.opens
    assert [] == response.headers.get_list("set-cookie")
    assert "vary" not in response.headers
    assert "cache-control" not in response.headers

    async with client(mw) as c:
        response = await c.get("/read", headers={"cookie": f"session={value}"})
    assert 1 == spy.opens
    assert {"user": "alice"} == response.json()


@pytest.mark.anyio
async def test_read_only_sets_vary_but_no_cookie(secret: str) -> None:
    """Reading the session adds Vary: Cookie, and neither Set-Cookie nor Cache-Control."""
    mw = SessionMiddleware(app, secret_key_base=secret)
    value = await issue(mw)
    async with client(mw) as c:
        response = await c.get("/read", headers={"cookie": f"session={value}"})
    assert {"user": "alice"} == response.json()
    assert [] == response.headers.get_list("set-cookie")
    assert ["Cookie"] == response.headers.get_list("vary")
    assert "cache-control" not in response.headers


class CountingBackend(CookieBackend):
    """The cookie backend, counting its commits; ``unsettle`` makes it mark no state settled."""

    def __init__(self, *args: Any, unsettle: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commits: list[Commit] = []
        self.unsettle = unsettle

    def _open_one(self, value: str, now: int) -> LoadedState:
        state = super()._open_one(value, now)
        if self.unsettle:
            state.settled = False
        return state

    async def commit(self, commit: Commit, *, secure: bool, now: int) -> str | None:
        self.commits.append(commit)
        return await super().commit(commit, secure=secure, now=now)


def counting_backend(secret: str | list[str], **kwargs: Any) -> CountingBackend:
    return CountingBackend(
        MessageEncryptor(Keyring(secret)), CookieOptions(), lifetime=14 * 24 * HOUR, **kwargs
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "commits"),
    [("read", 0), ("cart", 0), ("info", 0), ("set?user=bob", 1), ("regenerate", 1), ("clear", 1)],
)
async def test_a_settled_session_only_read_is_not_committed(
    secret: str, path: str, commits: int
) -> None:
    """A session the backend marked settled and the request only read skips the backend.

    Anything else (a write, a reset, a mutable value handed out) is still committed.
    """
    backend = counting_backend(secret)
    mw = SessionMiddleware(app, secret_key_base=secret, backend=backend)
    value = await issue(mw, "user=alice&cart=x")
    backend.commits.clear()
    async with client(mw) as c:
        response = await c.get(f"/{path}", headers={"cookie": f"session={value}"})
    assert 200 == response.status_code
    assert commits == len(backend.commits)
    assert ["Cookie"] == response.headers.get_list("vary")
    assert commits == len(response.headers.get_list("set-cookie"))


@pytest.mark.anyio
async def test_a_state_not_settled_is_committed_even_when_only_read(secret: str) -> None:
    """A backend that does not mark its states settled sees every read's commit, as before."""
    backend = counting_backend(secret, unsettle=True)
    mw = SessionMiddleware(app, secret_key_base=secret, backend=backend)
    value = await issue(mw)
    backend.commits.clear()
    async with client(mw) as c:
        response = await c.get("/read", headers={"cookie": f"session={value}"})
    assert [] == response.headers.get_list("set-cookie")
    assert 1 == len(backend.commits)
    assert not backend.commits[0].changed


@pytest.mark.anyio
async def test_stale_or_refresh_due_sessions_are_not_settled(
    secret: str, other_secret: str, clock: Clock
) -> None:
    """Opened by an older secret, or due for an idle-timeout refresh: a read re-issues it."""
    old = await issue(SessionMiddleware(app, secret_key_base=other_secret))
    backend = counting_backend([secret, other_secret])
    rotated = SessionMiddleware(app, secret_key_base=[secret, other_secret], backend=backend)
    async with client(rotated) as c:
        response = await c.get("/read", headers={"cookie": f"session={old}"})
    assert 1 == len(response.headers.get_list("set-cookie"))
    idle = counting_backend(secret, idle_timeout=HOUR)
    mw = SessionMiddleware(app, secret_key_base=secret, backend=idle, clock=clock)
    value = await issue(mw)
    clock.advance(HOUR // 10 + 1)
    async with client(mw) as c:
        response = await c.get("/read", headers={"cookie": f"session={value}"})
    assert 1 == len(response.headers.get_list("set-cookie"))


@pytest.mark.anyio
async def test_reading_an_empty_session_without_cookie_writes_nothing(secret: str) -> None:
    """A new, empty session that is only read sends no cookie."""
    async with client(SessionMiddleware(app, secret_key_base=secret)) as c:
        response = await c.get("/read")
    assert {} == response.json()
    assert [] == response.headers.get_list("set-cookie")
    assert ["Cookie"] == response.headers.get_list("vary")


# -- writing ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_write_sets_one_cookie_vary_and_cache_control(secret: str) -> None:
    """A write sends exactly one Set-Cookie, Vary: Cookie and Cache-Control: private."""
    async with client(SessionMiddleware(app, secret_key_base=secret)) as c:
        response = await c.get("/set?user=alice")
        (set_cookie,) = response.headers.get_list("set-cookie")
        assert ["Cookie"] == response.headers.get_list("vary")
        assert ["private"] == response.headers.get_list("cache-control")
        assert set_cookie.startswith("session=")
        attributes = [part.strip() for part in set_cookie.split(";")[1:]]
        assert "Path=/" in attributes
        assert "HttpOnly" in attributes
        assert "SameSite=Lax" in attributes
        assert f"Max-Age={14 * 24 * HOUR}" in attributes

        assert {"user": "alice"} == (await c.get("/read")).json()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("app_vary", "expected"),
    [
        ("Accept-Encoding", "Accept-Encoding, Cookie"),
        ("*", "*"),
        ("cookie", "cookie"),
        ("Accept-Encoding,Cookie", "Accept-Encoding,Cookie"),
    ],
)
async def test_vary_is_merged(secret: str, app_vary: str, expected: str) -> None:
    """Cookie is merged into the app's own Vary; '*' or an existing cookie token is kept."""
    async with client(SessionMiddleware(app, secret_key_base=secret)) as c:
        response = await c.get("/set", params={"user": "alice", "vary": app_vary})
    assert [expected] == response.headers.get_list("vary")


@pytest.mark.anyio
async def test_own_cache_control_is_kept(secret: str) -> None:
    """An app's own Cache-Control is left alone, and no second one is added."""
    async with client(SessionMiddleware(app, secret_key_base=secret)) as c:
        response = await c.get("/set", params={"user": "alice", "cache_control": "no-store"})
    assert ["no-store"] == response.headers.get_list("cache-control")
    assert 1 == len(response.headers.get_list("set-cookie"))


@pytest.mark.anyio
async def test_nested_mutation_is_saved(secret: str) -> None:
    """session["cart"].append(x) is written; reading the list back unchanged writes nothing."""
    async with client(SessionMiddleware(app, secret_key_base=secret)) as c:
        await c.get("/append?item=1")
        response = await c.get("/append?item=2")
        assert 1 == len(response.headers.get_list("set-cookie"))
        assert {"cart": [1, 2]} == response.json()

        response = await c.get("/cart")
        assert [1, 2] == response.json()
        assert [] == response.headers.get_list("set-cookie")
        assert ["Cookie"] == response.headers.get_list("vary")


@pytest.mark.anyio
async def test_write_after_response_started_is_not_saved(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A change made after http.response.start is lost, and a debug record says so."""
    caplog.set_level(logging.DEBUG, logger="asgisession")

    async def late(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        scope["session"]["user"] = "alice"
        await send({"type": "http.response.body", "body": b""})

    recorder = Recorder()
    await SessionMiddleware(late, secret_key_base=secret)(
        http_scope(path="/read"), recorder.receive, recorder.send
    )
    assert [] == recorder.headers(b"set-cookie")
    assert any("after the response started" in r.getMessage() for r in caplog.records)


# -- clearing ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_clear_with_cookie_sends_deletion_with_same_path_and_domain(secret: str) -> None:
    """clear() of a session that came with a cookie deletes it with the same Path and Domain
    (on a request under that Path: elsewhere the cookie read is not this one)."""
    mw = SessionMiddleware(app, secret_key_base=secret, path="/", domain="example.com")
    value = await issue(mw)
    mw = SessionMiddleware(app, secret_key_base=secret, path="/clear", domain="example.com")
    recorder = Recorder()
    await mw(http_scope(f"session={value}", path="/clear"), recorder.receive, recorder.send)

    (deletion,) = recorder.headers(b"set-cookie")
    parts = [part.strip() for part in deletion.decode().split(";")]
    assert "session=" == parts[0]
    assert {"Path=/clear", "Domain=example.com", "Max-Age=0"} <= set(parts)
    assert {} == recorder.body_json()


@pytest.mark.anyio
async def test_clear_without_cookie_sends_nothing(secret: str) -> None:
    """clear() of a session that had no cookie sends no Set-Cookie."""
    recorder = Recorder()
    mw = SessionMiddleware(app, secret_key_base=secret)
    await mw(http_scope(path="/clear"), recorder.receive, recorder.send)
    assert [] == recorder.headers(b"set-cookie")


@pytest.mark.anyio
async def test_clear_removes_cookie_from_jar(secret: str) -> None:
    """After clear() the client's jar no longer holds the session cookie."""
    async with client(SessionMiddleware(app, secret_key_base=secret)) as c:
        await c.get("/set?user=alice")
        assert "session" in c.cookies
        await c.get("/clear")
        assert "session" not in c.cookies
        assert {} == (await c.get("/read")).json()


# -- which cookie is read ----------------------------------------------------------------


@pytest.mark.anyio
async def test_every_cookie_header_is_read(secret: str) -> None:
    """The session cookie is found in a second `cookie` header (HTTP/2 splits them)."""
    mw = SessionMiddleware(app, secret_key_base=secret)
    value = await issue(mw)
    recorder = Recorder()
    await mw(
        http_scope("theme=dark", f"session={value}", path="/read"), recorder.receive, recorder.send
    )
    assert {"user": "alice"} == recorder.body_json()


@pytest.mark.anyio
async def test_first_valid_duplicate_wins(secret: str) -> None:
    """With a garbage session cookie first and a valid one second, the valid one is used."""
    rejected: list[RejectReason] = []
    mw = SessionMiddleware(app, secret_key_base=secret, on_reject=rejected.append)
    value = await issue(mw)
    recorder = Recorder()
    scope = http_scope(f"session=garbage!; session={value}", path="/info")
    await mw(scope, recorder.receive, recorder.send)
    assert {"data": {"user": "alice"}, "is_new": False, "rejection": None} == recorder.body_json()
    assert ([], Counter()) == (rejected, mw.rejections)


@pytest.mark.anyio
async def test_at_most_three_duplicates_are_tried(secret: str) -> None:
    """A valid cookie behind three bad ones is not tried: the session starts empty."""
    mw = SessionMiddleware(app, secret_key_base=secret)
    value = await issue(mw)
    recorder = Recorder()
    header = f"session=a!; session=b!; session=c!; session={value}"
    await mw(http_scope(header, path="/info"), recorder.receive, recorder.send)
    assert {"data": {}, "is_new": True, "rejection": "malformed"} == recorder.body_json()


# -- rejected cookies -------------------------------------------------------------------


async def bad_cookie(
    case: str, secret: str, other: str, mw: SessionMiddleware, clock: Clock
) -> str:
    """A session cookie value that ``mw`` must refuse for the reason named by ``case``."""
    if case == "garbage":
        return "not*base64"
    if case == "oversized":
        return "A" * 4100
    if case == "not_an_object":
        return seal(secret, b"[1, 2]")
    if case == "foreign_secret":
        return await issue(SessionMiddleware(app, secret_key_base=other, clock=clock))
    if case == "wrong_name":
        mw_other = SessionMiddleware(app, secret_key_base=secret, cookie_name="other", clock=clock)
        return await issue(mw_other)
    valid = await issue(mw)
    frame = bytearray(b64url_decode(valid))
    if case == "tampered":
        frame[45] ^= 0x01
        return b64url_encode(bytes(frame))
    if case == "truncated":
        return b64url_encode(bytes(frame[:-5]))
    if case == "padded":
        return valid + "="
    if case == "expired":
        clock.advance(2 * HOUR)
        return valid
    if case == "idle":
        clock.advance(600)
        return valid
    raise AssertionError(case)


REJECTIONS = {
    "garbage": RejectReason.MALFORMED,
    "padded": RejectReason.NON_CANONICAL,
    "tampered": RejectReason.BAD_TAG,
    "truncated": RejectReason.BAD_TAG,
    "foreign_secret": RejectReason.UNKNOWN_KEY,
    "wrong_name": RejectReason.WRONG_PURPOSE,
    "expired": RejectReason.EXPIRED,
    "idle": RejectReason.IDLE_TIMEOUT,
    "not_an_object": RejectReason.BAD_PAYLOAD,
    "oversized": RejectReason.OVERSIZED,
}


@pytest.mark.anyio
@pytest.mark.parametrize(("case", "reason"), REJECTIONS.items(), ids=list(REJECTIONS))
async def test_rejected_cookie_gives_empty_session(
    secret: str,
    other_secret: str,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    case: str,
    reason: RejectReason,
) -> None:
    """A refused cookie: 200, empty session, reason exposed, counted, hooked, debug-logged."""
    caplog.set_level(logging.DEBUG, logger="asgisession")
    rejected: list[RejectReason] = []
    mw = SessionMiddleware(
        app, secret_key_base=secret, lifetime=2 * HOUR, idle_timeout=600, clock=clock,
        on_reject=rejected.append,
    )  # fmt: skip
    bad = await bad_cookie(case, secret, other_secret, mw, clock)
    caplog.clear()

    async with client(mw) as c:
        response = await c.get("/info", headers={"cookie": f"session={bad}"})

    assert 200 == response.status_code
    assert {"data": {}, "is_new": True, "rejection": reason.value} == response.json()
    assert Counter({reason: 1}) == mw.rejections
    assert [reason] == rejected
    (record,) = [r for r in caplog.records if r.name == "asgisession"]
    assert logging.DEBUG == record.levelno
    assert reason.value in record.getMessage()
    assert bad not in caplog.text


@pytest.mark.anyio
async def test_rejected_cookie_is_replaced_on_write(secret: str) -> None:
    """Writing to a session whose cookie was refused issues a fresh, valid cookie."""
    mw = SessionMiddleware(app, secret_key_base=secret)
    async with client(mw) as c:
        response = await c.get("/set?user=bob", headers={"cookie": "session=garbage!"})
    (set_cookie,) = response.headers.get_list("set-cookie")
    assert b'{"user":"bob"}' == open_cookie(secret, cookie_value(set_cookie), time.time()).payload


# -- secrets and expiry -------------------------------------------------------------------


@pytest.mark.anyio
async def test_rotation_reissues_under_newest_secret(secret: str, other_secret: str) -> None:
    """A cookie sealed with A is read by [B, A] and re-issued under B on the same response."""
    old, new = secret, other_secret
    value = await issue(SessionMiddleware(app, secret_key_base=old))

    async with client(SessionMiddleware(app, secret_key_base=[new, old])) as c:
        response = await c.get("/read", headers={"cookie": f"session={value}"})
    assert {"user": "alice"} == response.json()
    (set_cookie,) = response.headers.get_list("set-cookie")
    reissued = cookie_value(set_cookie)

    only_new = SessionMiddleware(app, secret_key_base=new)
    async with client(only_new) as c:
        assert {"user": "alice"} == (
            await c.get("/read", headers={"cookie": f"session={reissued}"})
        ).json()
        response = await c.get("/info", headers={"cookie": f"session={value}"})
    assert {"data": {}, "is_new": True, "rejection": "unknown_key"} == response.json()


@pytest.mark.anyio
async def test_idle_timeout_refreshes_active_and_expires_idle(secret: str, clock: Clock) -> None:
    """Active sessions are re-issued once idle_timeout//10 has passed; idle ones expire."""
    mw = SessionMiddleware(
        app, secret_key_base=secret, lifetime=100 * HOUR, idle_timeout=1000, clock=clock
    )
    async with client(mw) as c:
        response = await c.get("/set?user=alice")
        first = cookie_value(response.headers["set-cookie"])

        clock.advance(99)
        response = await c.get("/read")
        assert [] == response.headers.get_list("set-cookie")

        clock.advance(1)
        response = await c.get("/read")
        assert {"user": "alice"} == response.json()
        refreshed = open_cookie(secret, cookie_value(response.headers["set-cookie"]), clock.now)
        assert NOW + 100 == refreshed.issued_at
        assert open_cookie(secret, first).expires_at == refreshed.expires_at

        clock.advance(999)
        assert {"user": "alice"} == (await c.get("/read")).json()

        clock.advance(1000)
        response = await c.get("/info")
    assert {"data": {}, "is_new": True, "rejection": "idle_timeout"} == response.json()


@pytest.mark.anyio
async def test_untouched_requests_do_not_refresh(secret: str, clock: Clock) -> None:
    """Requests that never touch the session do not count as activity."""
    mw = SessionMiddleware(app, secret_key_base=secret, idle_timeout=1000, clock=clock)
    async with client(mw) as c:
        await c.get("/set?user=alice")
        clock.advance(500)
        assert [] == (await c.get("/untouched")).headers.get_list("set-cookie")
        clock.advance(500)
        response = await c.get("/info")
    assert "idle_timeout" == response.json()["rejection"]


@pytest.mark.anyio
async def test_lifetime_is_absolute(secret: str, clock: Clock) -> None:
    """Writes keep the first expiry; Max-Age shrinks so the cookie never outlives it."""
    mw = SessionMiddleware(app, secret_key_base=secret, lifetime=HOUR, clock=clock)
    async with client(mw) as c:
        response = await c.get("/set?user=alice")
        assert "Max-Age=3600" in response.headers["set-cookie"]

        clock.advance(600)
        response = await c.get("/set?theme=dark")
        assert "Max-Age=3000" in response.headers["set-cookie"]
        value = cookie_value(response.headers["set-cookie"])
        assert NOW + HOUR == open_cookie(secret, value, clock.now).expires_at

        clock.advance(3000)
        response = await c.get("/info", headers={"cookie": f"session={value}"})
    assert "expired" == response.json()["rejection"]


@pytest.mark.anyio
async def test_regenerate_keeps_data_and_restarts_lifetime(secret: str, clock: Clock) -> None:
    """regenerate() re-issues the same data with a new absolute expiry."""
    mw = SessionMiddleware(app, secret_key_base=secret, lifetime=HOUR, clock=clock)
    async with client(mw) as c:
        first = cookie_value((await c.get("/set?user=alice")).headers["set-cookie"])
        clock.advance(600)
        response = await c.get("/regenerate")
        assert {"user": "alice"} == response.json()
        second = cookie_value(response.headers["set-cookie"])
        assert first != second
        assert NOW + 600 + HOUR == open_cookie(secret, second, clock.now).expires_at
        assert "Max-Age=3600" in response.headers["set-cookie"]

        clock.advance(HOUR - 1)
        assert {"user": "alice"} == (await c.get("/read")).json()


@pytest.mark.anyio
async def test_reset_empties_and_deletes_cookie(secret: str) -> None:
    """reset() empties the session and sends a deletion cookie."""
    async with client(SessionMiddleware(app, secret_key_base=secret)) as c:
        await c.get("/set?user=alice")
        response = await c.get("/reset")
        assert {} == response.json()
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert "session" not in c.cookies
        assert {"data": {}, "is_new": True, "rejection": None} == (await c.get("/info")).json()


# -- size, serialisation, attributes --------------------------------------------------------


@pytest.mark.anyio
async def test_cookie_overflow_raises_before_anything_is_sent(secret: str) -> None:
    """A ~5 KB session raises CookieOverflow out of send, before http.response.start."""

    async def big(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["user"] = "alice"
        scope["session"]["blob"] = "x" * 5000
        await send({"type": "http.response.start", "status": 200, "headers": []})

    recorder = Recorder()
    with pytest.raises(CookieOverflow) as info:
        await SessionMiddleware(big, secret_key_base=secret)(
            http_scope(path="/read"), recorder.receive, recorder.send
        )
    assert [] == recorder.sent
    assert "blob" == info.value.largest_keys[0][0]
    assert "'blob'" in str(info.value)
    assert 4096 == info.value.limit
    assert info.value.size > 4096


@pytest.mark.anyio
async def test_non_json_value_raises_serialization_error(secret: str) -> None:
    """A value JSON cannot carry raises SerializationError naming the key, before sending."""

    async def bad(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["when"] = object()
        await send({"type": "http.response.start", "status": 200, "headers": []})

    recorder = Recorder()
    with pytest.raises(SerializationError) as info:
        await SessionMiddleware(bad, secret_key_base=secret)(
            http_scope(path="/read"), recorder.receive, recorder.send
        )
    assert ("when", []) == (info.value.key, recorder.sent)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("base_url", "secure"), [("https://testserver", True), ("http://testserver", False)]
)
async def test_secure_auto_follows_scheme(secret: str, base_url: str, secure: bool) -> None:
    """secure="auto" adds the Secure attribute on https requests only."""
    async with client(SessionMiddleware(app, secret_key_base=secret), base_url) as c:
        response = await c.get("/set?user=alice")
        attributes = [p.strip() for p in response.headers["set-cookie"].split(";")]
        assert secure == ("Secure" in attributes)
        assert {"user": "alice"} == (await c.get("/read")).json()


@pytest.mark.parametrize(
    "options",
    [
        {"samesite": "none"},
        {"samesite": "none", "secure": "auto"},
        {"lifetime": 0},
        {"lifetime": -1},
        {"lifetime": 2**64},
        {"idle_timeout": 0},
        {"max_age": 0},
        {"cookie_format": "json"},
        {"cookie_format": object()},
        {"cookie_name": "bad name"},
        {"secret_key_base": "too-short"},
        {"secret_key_base": []},
        {"partitioned": True},
    ],
    ids=[
        "samesite-none-insecure",
        "samesite-none-auto",
        "lifetime-0",
        "lifetime-negative",
        "lifetime-past-u64",
        "idle-0",
        "max-age-0",
        "format-string",
        "format-object",
        "cookie-name",
        "short-secret",
        "no-secret",
        "partitioned-insecure",
    ],
)
def test_bad_settings_fail_at_construction(secret: str, options: dict[str, Any]) -> None:
    """Invalid settings raise ConfigurationError when the middleware is built."""
    kwargs: dict[str, Any] = {"secret_key_base": secret, **options}
    with pytest.raises(ConfigurationError):
        SessionMiddleware(app, **kwargs)


def test_same_secret_twice_is_refused(secret: str) -> None:
    """Listing one secret twice in a rotation is a configuration error."""
    with pytest.raises(ConfigurationError, match="same secret"):
        SessionMiddleware(app, secret_key_base=[secret, secret])


@pytest.mark.anyio
async def test_signed_format_round_trip_and_tamper(secret: str) -> None:
    """cookie_format="signed" keeps the JSON readable, reads it back, and refuses edits."""
    mw = SessionMiddleware(app, secret_key_base=secret, cookie_format="signed")
    value = await issue(mw)
    frame = b64url_decode(value)
    assert b'{"user":"alice"}' == frame[29:-32]

    forged = b64url_encode(frame.replace(b"alice", b"admin"))
    async with client(mw) as c:
        assert {"user": "alice"} == (
            await c.get("/read", headers={"cookie": f"session={value}"})
        ).json()
        response = await c.get("/info", headers={"cookie": f"session={forged}"})
    assert {"data": {}, "is_new": True, "rejection": "bad_tag"} == response.json()


# -- websockets -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_websocket_reads_session_and_sets_cookie_on_accept(secret: str) -> None:
    """The handshake sees the session; a change adds Set-Cookie to websocket.accept."""
    value = await issue(SessionMiddleware(app, secret_key_base=secret))
    recorder = Recorder([{"type": "websocket.connect"}])
    scope = http_scope(f"session={value}", scheme="wss", scope_type="websocket", path="/read")
    await SessionMiddleware(ws_app(write=True), secret_key_base=secret)(
        scope, recorder.receive, recorder.send
    )
    accept, text, _ = recorder.sent
    assert "websocket.accept" == accept["type"]
    assert "alice" == text["text"]
    (set_cookie,) = recorder.headers(b"set-cookie")
    assert [b"1"] == recorder.headers(b"x-app")
    assert [] == recorder.headers(b"vary")
    assert b"Secure" in set_cookie
    opened = open_cookie(secret, cookie_value(set_cookie), time.time())
    assert b'{"user":"alice","seen":true}' == opened.payload


@pytest.mark.anyio
async def test_websocket_unchanged_session_adds_nothing(secret: str) -> None:
    """A handshake that only reads the session leaves websocket.accept as the app sent it."""
    value = await issue(SessionMiddleware(app, secret_key_base=secret))
    recorder = Recorder([{"type": "websocket.connect"}])
    scope = http_scope(f"session={value}", scope_type="websocket", path="/read")
    await SessionMiddleware(ws_app(write=False), secret_key_base=secret)(
        scope, recorder.receive, recorder.send
    )
    assert {"type": "websocket.accept", "headers": [(b"x-app", b"1")]} == recorder.sent[0]
    assert "alice" == recorder.sent[1]["text"]


# -- streaming --------------------------------------------------------------------------


# -- fuzzing ----------------------------------------------------------------------------

FUZZ_SECRET = secrets.token_hex(32)
FUZZ_DATA = b'{"user":"alice","role":"admin"}'
FUZZ_COOKIE = MessageEncryptor(Keyring(FUZZ_SECRET)).seal(
    FUZZ_DATA, purpose="session", issued_at=NOW, expires_at=NOW + HOUR
)
FUZZ_FRAME = b64url_decode(FUZZ_COOKIE)
# Characters a client may put in a cookie value (RFC 6265 cookie-octets).
COOKIE_OCTETS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\')


def _flip_bits(positions: list[int]) -> str:
    frame = bytearray(FUZZ_FRAME)
    for position in positions:
        frame[position // 8] ^= 1 << (position % 8)
    return b64url_encode(bytes(frame))


mutated_cookies = st.one_of(
    st.lists(st.integers(0, 8 * len(FUZZ_FRAME) - 1), min_size=1, max_size=4, unique=True).map(
        _flip_bits
    ),
    st.integers(0, len(FUZZ_COOKIE) - 1).map(lambda n: FUZZ_COOKIE[:n]),
    st.text(COOKIE_OCTETS, min_size=1, max_size=40).map(lambda junk: FUZZ_COOKIE + junk),
    st.text(COOKIE_OCTETS, max_size=300),
    st.binary(max_size=300).map(lambda raw: raw.decode("latin-1")),
)


@pytest.mark.anyio
@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated=mutated_cookies)
async def test_mutated_cookies_never_open(mutated: str) -> None:
    """Bit flips, truncations, appended junk and random text never raise nor reveal data."""
    mw = SessionMiddleware(app, secret_key_base=FUZZ_SECRET, clock=lambda: NOW)
    recorder = Recorder()
    header = b"session=" + mutated.encode("latin-1")
    await mw(http_scope(header, path="/info"), recorder.receive, recorder.send)
    assert 200 == recorder.sent[0]["status"]
    body = recorder.body_json()
    assert {} == body["data"]
    sent_values = [v for v in cookie_values([(b"cookie", header)], "session") if v]
    # An empty value counts as no cookie (what a deletion leaves behind), not a rejection.
    assert (body["rejection"] is not None) == bool(sent_values)


@pytest.mark.anyio
async def test_fuzz_baseline_cookie_opens() -> None:
    """The unmutated fuzzing cookie does open (so the fuzz test checks something)."""
    mw = SessionMiddleware(app, secret_key_base=FUZZ_SECRET, clock=lambda: NOW)
    recorder = Recorder()
    await mw(http_scope(f"session={FUZZ_COOKIE}", path="/read"), recorder.receive, recorder.send)
    assert {"user": "alice", "role": "admin"} == recorder.body_json()


# -- limits and hooks that hold for any backend --------------------------------------------


@pytest.mark.anyio
async def test_max_age_follows_idle_timeout(secret: str, clock: Clock) -> None:
    """With an idle timeout, the browser forgets the cookie when the server would refuse it."""
    mw = SessionMiddleware(app, secret_key_base=secret, idle_timeout=600, clock=clock)
    async with client(mw) as c:
        response = await c.get("/set?user=alice")
    assert "Max-Age=600" in response.headers["set-cookie"]


class ForwardingBackend:
    """A custom backend: a CookieBackend behind the protocol, to prove the seam is enough."""

    loads_in_line = True

    def __init__(self, inner: CookieBackend) -> None:
        self.inner = inner
        self.cookie = inner.cookie

    def open(self, values: list[str], now: int) -> LoadedState:
        return self.inner.open(values, now)

    async def load(self, values: list[str], now: int) -> LoadedState:
        return await self.inner.load(values, now)

    async def commit(self, commit: Commit, *, secure: bool, now: int) -> str | None:
        return await self.inner.commit(commit, secure=secure, now=now)


@pytest.mark.anyio
async def test_custom_backend_rejections_are_counted(secret: str) -> None:
    """Rejections are counted and reported by the middleware, whatever the backend."""
    reasons: list[RejectReason] = []
    inner = CookieBackend(
        MessageEncryptor(Keyring(secret)), CookieOptions(name="sid"), lifetime=HOUR
    )
    mw = SessionMiddleware(
        app, secret_key_base=secret, backend=ForwardingBackend(inner), on_reject=reasons.append
    )
    recorder = Recorder()
    await mw(http_scope("sid=garbage!", path="/info"), recorder.receive, recorder.send)
    assert {"data": {}, "is_new": True, "rejection": "malformed"} == recorder.body_json()
    assert [RejectReason.MALFORMED] == reasons
    assert Counter({RejectReason.MALFORMED: 1}) == mw.rejections

    async with client(mw) as c:
        response = await c.get("/set?user=bob")
        assert response.headers["set-cookie"].startswith("sid=")
        assert {"user": "bob"} == (await c.get("/read")).json()


@pytest.mark.anyio
async def test_empty_cookie_value_is_no_cookie(secret: str) -> None:
    """`session=` (what a deletion can leave behind) is an absent cookie, not a rejection."""
    mw = SessionMiddleware(app, secret_key_base=secret)
    recorder = Recorder()
    await mw(http_scope("session=", path="/info"), recorder.receive, recorder.send)
    assert {"data": {}, "is_new": True, "rejection": None} == recorder.body_json()
    assert Counter() == mw.rejections


@pytest.mark.anyio
async def test_second_change_after_start_is_logged(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A change after http.response.start is logged even when an earlier change was saved."""

    async def late_writer(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["a"] = 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        scope["session"]["b"] = 2
        await send({"type": "http.response.body", "body": b""})

    mw = SessionMiddleware(late_writer, secret_key_base=secret)
    recorder = Recorder()
    with caplog.at_level(logging.DEBUG, logger="asgisession"):
        await mw(http_scope(path="/read"), recorder.receive, recorder.send)
    (set_cookie,) = recorder.headers(b"set-cookie")
    assert b'{"a":1}' == open_cookie(secret, cookie_value(set_cookie), time.time()).payload
    assert any("after the response started" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("vary_headers", "expected"),
    [
        ([b"Accept-Encoding", b"Cookie"], [b"Accept-Encoding", b"Cookie"]),
        ([b"Accept-Encoding", b"Origin"], [b"Accept-Encoding, Cookie", b"Origin"]),
        ([b""], [b"Cookie"]),
    ],
)
@pytest.mark.anyio
async def test_vary_across_several_headers(
    secret: str, vary_headers: list[bytes], expected: list[bytes]
) -> None:
    """Cookie is added once, to the first Vary header, unless any Vary header already has it."""

    async def varying(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["x"] = 1
        headers = [(b"vary", value) for value in vary_headers]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    recorder = Recorder()
    await SessionMiddleware(varying, secret_key_base=secret)(
        http_scope(path="/read"), recorder.receive, recorder.send
    )
    assert expected == recorder.headers(b"vary")


@pytest.mark.anyio
async def test_before_commit_writes_are_saved(secret: str) -> None:
    """A before_commit callback runs before the commit, so what it writes is saved."""

    async def deferred_writer(scope: Scope, receive: Receive, send: Send) -> None:
        control_of(scope["session"]).before_commit(lambda s: s.__setitem__("late", True))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    recorder = Recorder()
    await SessionMiddleware(deferred_writer, secret_key_base=secret)(
        http_scope(path="/read"), recorder.receive, recorder.send
    )
    (set_cookie,) = recorder.headers(b"set-cookie")
    assert b'{"late":true}' == open_cookie(secret, cookie_value(set_cookie), time.time()).payload
