# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""Per-session expiry (``Session.set_expiry``) on the cookie store and every server store.

Each test runs per store (the cookie store, MemoryStore, SQLiteStore on a real file,
RedisStore on a real redis-server, MemcachedStore on a real memcached) and per choice:
``0`` (the cookie ends when the browser closes), a short lifetime, and the default. Time
moves by the middleware's ``clock=`` (real stores keep their records far longer than the
tests run, so an end is seen where the cookie, or the record's chosen end, is refused);
one test per server store waits real seconds to see the record's TTL follow the choice.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio
import pytest

from asgisession import ExpiryTooLong, Keyring, MessageEncryptor, Session, SessionMiddleware
from asgisession._types import Receive, Scope, Send
from asgisession.backends.server import session_key
from asgisession.crypto import b64url_decode, b64url_encode
from asgisession.expiry import ExpiryPolicy
from asgisession.rails import RailsCookies
from asgisession.stores import Store

from .asgi_helpers import Clock, client
from .stores_under_test import STORES, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: the Redis and memcached clients are asyncio-only."""
    return "asyncio"


HOUR = 3600
LIFETIME = HOUR


@dataclass
class Choice:
    """A set_expiry value, the Max-Age it gives a fresh cookie, and when the session ends."""

    query: str  # what /expiry is given
    max_age: int | None  # None: no Max-Age, no Expires
    ends_after: int  # seconds from the choice until the server refuses the cookie


CHOICES = {
    "browser-close": Choice("value=0", None, LIFETIME),
    "short": Choice("value=60", 60, 60),
    "default": Choice("value=none", LIFETIME, LIFETIME),
}


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store | None]:
    """The store under test (``None``: the cookie store); real servers, fresh namespaces."""
    made = open_store(request.param, request, tmp_path)
    yield made
    if made is not None:
        await made.aclose()


@pytest.fixture(params=list(CHOICES))
def choice(request: pytest.FixtureRequest) -> Choice:
    return CHOICES[request.param]


def parse_value(raw: str) -> Any:
    if raw == "none":
        return None
    if raw.startswith("date:"):
        return datetime.fromtimestamp(float(raw[5:]), timezone.utc)
    return float(raw) if "." in raw else int(raw)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The path says what to do; the body is what the session looks like afterwards."""
    params = dict(parse_qsl(scope.get("query_string", b"").decode()))
    session: Session = scope["session"]
    await session.load()
    action = scope["path"].strip("/")
    if action == "login":
        session["user"] = params.get("user", "alice")
    elif action == "expiry":
        session.set_expiry(parse_value(params["value"]))
    elif action == "touch":
        session["n"] = session.get("n", 0) + 1
    elif action == "regenerate":
        session.regenerate()
    elif action == "reset":
        session.reset()
    elif action != "read":
        raise AssertionError(action)
    reason = session.rejection
    body = {
        "data": {k: v for k, v in session.items() if not k.startswith("_")},
        "rejection": reason and reason.value,
        "browser_close": session.expires_at_browser_close,
        "age": session.expiry_age,
    }
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class Browser:
    """One middleware over the store, driven by hand: the cookie it holds is ``self.value``."""

    def __init__(self, secret: str, store: Store | None, **options: Any) -> None:
        self.clock = Clock(float(int(time.time())))
        options.setdefault("lifetime", LIFETIME)
        self.mw = SessionMiddleware(
            app, secret_key_base=secret, store=store, clock=self.clock, **options
        )
        self.value = ""
        self.set_cookie: str | None = None

    async def get(self, path: str, value: str | None = None) -> Any:
        """GET ``path`` sending ``value`` (default: the held cookie); keep what is set."""
        sent = self.value if value is None else value
        headers = {"cookie": f"session={sent}"} if sent else {}
        async with client(self.mw) as c:
            response = await c.get(path, headers=headers)
        assert 200 == response.status_code
        set_cookies = response.headers.get_list("set-cookie")
        assert len(set_cookies) <= 1
        self.set_cookie = set_cookies[0] if set_cookies else None
        if self.set_cookie is not None and value is None:
            self.value = self.set_cookie.split(";", 1)[0].split("=", 1)[1]
        return response.json()


def max_age_of(set_cookie: str) -> int | None:
    """The Max-Age of a Set-Cookie, or ``None``; checks Expires goes with it."""
    attributes = dict([*part.strip().split("=", 1), ""][:2] for part in set_cookie.split(";")[1:])
    if "Max-Age" not in attributes:
        assert "Expires" not in attributes, set_cookie
        return None
    assert "Expires" in attributes, set_cookie
    return int(attributes["Max-Age"])


async def chosen(browser: Browser, choice: Choice) -> Any:
    """Log in, then make the choice; the cookie the browser then holds has it."""
    await browser.get("/login")
    return await browser.get(f"/expiry?{choice.query}")


# -- Set-Cookie and the end on the server -------------------------------------------------------


async def test_set_cookie_carries_the_choice(
    store: Store | None, choice: Choice, secret: str
) -> None:
    """Browser-close: no Max-Age/Expires; a lifetime: that Max-Age; default: the lifetime."""
    browser = Browser(secret, store)
    await browser.get("/login")
    login_cookie = browser.set_cookie
    assert login_cookie is not None
    body = await browser.get(f"/expiry?{choice.query}")
    if choice.query == "value=none":  # already the default: nothing changed, nothing sent
        assert browser.set_cookie is None
        set_cookie = login_cookie
    else:
        assert browser.set_cookie is not None
        set_cookie = browser.set_cookie
    assert choice.max_age == max_age_of(set_cookie)
    assert (choice.max_age is None) == body["browser_close"]
    assert choice.ends_after == body["age"]


async def test_the_server_ends_the_session_at_the_choice(
    store: Store | None, choice: Choice, secret: str
) -> None:
    """The cookie works until the chosen end and is an empty session from then on."""
    browser = Browser(secret, store)
    await chosen(browser, choice)
    browser.clock.advance(choice.ends_after - 1)
    assert {"user": "alice"} == (await browser.get("/read"))["data"]
    browser.clock.advance(1)
    ended = await browser.get("/read")
    assert {} == ended["data"]
    assert "expired" == ended["rejection"]


async def test_browser_close_sessions_end_at_the_idle_timeout(
    store: Store | None, secret: str
) -> None:
    """A browser-close session's server-side bound: the idle timeout (and the lifetime)."""
    browser = Browser(secret, store, idle_timeout=600)
    await chosen(browser, CHOICES["browser-close"])
    browser.clock.advance(599)
    assert {"user": "alice"} == (await browser.get("/read"))["data"]
    assert browser.set_cookie is not None  # an idle-timeout refresh: still no Max-Age
    assert None is max_age_of(browser.set_cookie)
    browser.clock.advance(600)
    assert "idle_timeout" == (await browser.get("/read"))["rejection"]


async def test_an_extended_cookie_does_not_open(store: Store | None, secret: str) -> None:
    """Moving the sealed end forward breaks the seal; the old cookie cannot outlive the choice.

    On a server store the cookie from before ``set_expiry`` (same id, a later end) is
    refused too, by the end recorded in the data. (A cookie-store cookie from before is a
    whole other copy of the session: it lives to its own end, as any old copy does.)
    """
    browser = Browser(secret, store)
    await browser.get("/login")
    before = browser.value
    await browser.get(f"/expiry?{CHOICES['short'].query}")
    frame = bytearray(b64url_decode(browser.value))
    frame[21:29] = (int.from_bytes(frame[21:29], "big") + 10 * HOUR).to_bytes(8, "big")
    forged = b64url_encode(bytes(frame))
    assert "bad_tag" == (await browser.get("/read", forged))["rejection"]
    browser.clock.advance(61)
    assert "expired" == (await browser.get("/read"))["rejection"]
    old = await browser.get("/read", before)
    if store is None:
        assert {"user": "alice"} == old["data"]
    else:
        assert {} == old["data"]
        assert old["rejection"] in ("expired", "not_found")


async def test_the_choice_survives_later_requests(
    store: Store | None, choice: Choice, secret: str
) -> None:
    """Requests that do not call set_expiry keep it: the same end, the same kind of cookie."""
    browser = Browser(secret, store)
    await chosen(browser, choice)
    browser.clock.advance(10)
    body = await browser.get("/touch")
    if store is None:  # the cookie holds the data: re-issued, with the choice
        assert browser.set_cookie is not None
        expected = None if choice.max_age is None else choice.max_age - 10
        assert expected == max_age_of(browser.set_cookie)
    assert choice.ends_after - 10 == body["age"]
    assert (choice.max_age is None) == body["browser_close"]
    browser.clock.advance(choice.ends_after - 11)
    assert {"user": "alice", "n": 1} == (await browser.get("/read"))["data"]
    browser.clock.advance(1)
    assert {} == (await browser.get("/read"))["data"]


async def test_regenerate_keeps_the_choice(store: Store | None, secret: str) -> None:
    """A new identity, the same expiry: browser-close stays so, a chosen end stays put."""
    for name in ("browser-close", "short"):
        choice = CHOICES[name]
        browser = Browser(secret, store)
        await chosen(browser, choice)
        old = browser.value
        browser.clock.advance(10)
        body = await browser.get("/regenerate")
        assert browser.value != old
        assert browser.set_cookie is not None
        expected = None if choice.max_age is None else choice.max_age - 10
        assert expected == max_age_of(browser.set_cookie)
        assert (choice.max_age is None) == body["browser_close"]
        # A chosen end stays put; browser-close starts a new lifetime, as the default does.
        remaining = LIFETIME if choice.max_age is None else choice.ends_after - 10
        assert remaining == body["age"]
        browser.clock.advance(remaining - 1)
        assert {"user": "alice"} == (await browser.get("/read"))["data"]
        browser.clock.advance(1)
        assert {} == (await browser.get("/read"))["data"]


async def test_reset_drops_the_choice(store: Store | None, secret: str) -> None:
    """After reset() the next session is on the default again."""
    for name in ("browser-close", "short"):
        browser = Browser(secret, store)
        await chosen(browser, CHOICES[name])
        body = await browser.get("/reset")
        assert not body["browser_close"]
        assert LIFETIME == body["age"]
        await browser.get("/login")
        assert browser.set_cookie is not None
        assert LIFETIME == max_age_of(browser.set_cookie)
        browser.clock.advance(LIFETIME - 1)
        assert {"user": "alice"} == (await browser.get("/read"))["data"]


async def test_none_puts_the_session_back_on_the_default(store: Store | None, secret: str) -> None:
    """set_expiry(None) after a choice: Max-Age and the end are the default's, from now."""
    browser = Browser(secret, store)
    await chosen(browser, CHOICES["short"])
    browser.clock.advance(30)
    body = await browser.get("/expiry?value=none")
    assert browser.set_cookie is not None
    assert LIFETIME == max_age_of(browser.set_cookie)
    assert LIFETIME == body["age"]
    browser.clock.advance(LIFETIME - 1)
    assert {"user": "alice"} == (await browser.get("/read"))["data"]


async def test_a_datetime_sets_the_end(store: Store | None, secret: str) -> None:
    """An aware datetime is an end: Max-Age counts down to it, the server refuses after it."""
    browser = Browser(secret, store)
    await browser.get("/login")
    end = browser.clock.now + 120
    await browser.get(f"/expiry?value=date:{end}")
    assert browser.set_cookie is not None
    assert 120 == max_age_of(browser.set_cookie)
    browser.clock.advance(119)
    assert {"user": "alice"} == (await browser.get("/read"))["data"]
    browser.clock.advance(1)
    assert "expired" == (await browser.get("/read"))["rejection"]


async def test_a_light_session_keeps_the_choice_into_the_store(
    store: Store | None, secret: str
) -> None:
    """A session that chose browser-close before holding data keeps it once it holds some."""
    browser = Browser(secret, store)
    await browser.get("/expiry?value=0")
    assert browser.set_cookie is not None
    assert None is max_age_of(browser.set_cookie)
    body = await browser.get("/login")
    assert body["browser_close"]
    if browser.set_cookie is not None:  # server stores: a new id; the cookie store: new data
        assert None is max_age_of(browser.set_cookie)
    assert {"user": "alice"} == (await browser.get("/read"))["data"]


async def test_a_lowered_lifetime_bounds_an_earlier_choice(
    store: Store | None, secret: str
) -> None:
    """An end chosen under a longer lifetime is brought within a lowered one at the next write."""
    browser = Browser(secret, store, lifetime=10 * HOUR)
    await browser.get("/login")
    await browser.get("/expiry?value=30000")
    browser.mw = SessionMiddleware(  # redeployed with lifetime=1 h
        app, secret_key_base=secret, store=store, clock=browser.clock, lifetime=HOUR
    )
    body = await browser.get("/touch")
    assert HOUR == body["age"]
    assert browser.set_cookie is not None  # re-issued with the end brought in
    assert HOUR == max_age_of(browser.set_cookie)
    browser.clock.advance(HOUR - 1)
    assert {"user": "alice", "n": 1} == (await browser.get("/read"))["data"]
    browser.clock.advance(1)
    assert {} == (await browser.get("/read"))["data"]


# -- the record's TTL, in real seconds ----------------------------------------------------------


async def test_the_record_ttl_follows_the_choice(store: Store | None, secret: str) -> None:
    """A server store forgets a record at its chosen end, by its own clock; a default one not."""
    if store is None:
        pytest.skip("the cookie store keeps no record")
    keyring = Keyring(secret)
    mw = SessionMiddleware(app, secret_key_base=secret, store=store, lifetime=LIFETIME)
    keys = {}
    for name, query in (("short", "value=2"), ("default", "value=none")):
        async with client(mw) as c:
            await c.get("/login")
            response = await c.get(f"/expiry?{query}")
            value = c.cookies["session"]
        assert 200 == response.status_code
        opened = MessageEncryptor(keyring).open(value, purpose="session", now=int(time.time()))
        keys[name] = session_key(opened.payload)
        assert await store.load(keys[name]) is not None
    await anyio.sleep(3.2)
    assert await store.load(keys["short"]) is None
    assert await store.load(keys["default"]) is not None


# -- what set_expiry accepts --------------------------------------------------------------------


def made_session(data: dict[str, Any] | None = None, **policy: Any) -> Session:
    from asgisession.session import LoadedState

    policy.setdefault("clock", lambda: 1_000_000.0)
    state = LoadedState(data=dict(data or {}), serialized=b"{}", expires_at=1_000_500)
    return Session(lambda: state, policy=ExpiryPolicy(**policy))


@pytest.mark.parametrize(
    "value",
    [HOUR + 1, timedelta(hours=1, seconds=1), datetime.fromtimestamp(1_003_602, timezone.utc)],
)
def test_longer_than_the_lifetime_raises(value: Any) -> None:
    """Above the middleware's lifetime: ExpiryTooLong, which says what to change."""
    session = made_session(lifetime=HOUR)
    with pytest.raises(ExpiryTooLong, match=r"lifetime=3600.*SessionMiddleware\(lifetime="):
        session.set_expiry(value)
    assert not session.modified
    session.set_expiry(HOUR)  # the lifetime itself is allowed
    assert 1_000_000 + HOUR == session["_expiry"]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1, ValueError),
        (float("inf"), ValueError),
        (float("nan"), ValueError),
        (datetime(2030, 1, 1), ValueError),  # naive
        (datetime.fromtimestamp(999_999, timezone.utc), ValueError),  # past
        ("60", TypeError),
        (True, TypeError),
    ],
)
def test_bad_values_raise(value: Any, error: type[Exception]) -> None:
    session = made_session(lifetime=HOUR)
    with pytest.raises(error):
        session.set_expiry(value)
    assert "_expiry" not in session


def test_accessors() -> None:
    """expiry_age / expiry_date / expires_at_browser_close read the choice or the default."""
    session = made_session(lifetime=HOUR)
    assert 500 == session.expiry_age  # the loaded session's own end
    closes = session.expires_at_browser_close  # (a local: mypy would keep it narrowed)
    assert not closes
    session.set_expiry(timedelta(minutes=2))
    assert 120 == session.expiry_age
    assert datetime.fromtimestamp(1_000_120, timezone.utc) == session.expiry_date
    session.set_expiry(0)
    assert session.expires_at_browser_close
    assert HOUR == session.expiry_age  # on the server: a default session's end, from now
    session.set_expiry(None)
    assert HOUR == session.expiry_age  # the default, from now
    assert made_session(lifetime=HOUR, browser_close=True).expires_at_browser_close
    assert made_session({"_expiry": "soon"}, lifetime=HOUR).expiry_age == 500  # foreign value
    assert datetime.fromtimestamp(1_000_500, timezone.utc) == made_session().expiry_date


def test_unchanged_choice_is_no_change() -> None:
    """Setting the choice the session already has writes nothing."""
    session = made_session({"_expiry": 0}, lifetime=HOUR)
    session.set_expiry(0)
    assert not session.modified
    session = made_session(lifetime=HOUR)
    session.set_expiry(None)
    assert not session.modified


# -- Rails' cookie format -----------------------------------------------------------------------


async def test_rails_format_carries_the_choice(secret: str) -> None:
    """Rails' format: the end as Rails writes one (``exp`` and Expires), browser-close too."""
    for name in ("browser-close", "short"):
        choice = CHOICES[name]
        browser = Browser(secret, None, cookie_format=RailsCookies(digest="sha256"))
        await chosen(browser, choice)
        assert browser.set_cookie is not None
        assert choice.max_age == max_age_of(browser.set_cookie)
        codec = RailsCookies(digest="sha256").session_codec(Keyring(secret))
        opened = codec.open(browser.value, purpose="session", now=int(browser.clock.now))
        assert int(browser.clock.now) + choice.ends_after == opened.expires_at  # Rails' "exp"
        browser.clock.advance(choice.ends_after - 1)
        assert "alice" == (await browser.get("/read"))["data"]["user"]
        browser.clock.advance(1)
        assert {} == (await browser.get("/read"))["data"]


# -- the per-user index ("your devices") ----------------------------------------------------------


async def test_the_user_index_follows_the_choice(store: Store | None, secret: str) -> None:
    """user_sessions() lists a session until the end it chose, also after set_expiry(None).

    Moving the end back out (to the default) must move the index entry too, or the session
    would drop out of the list, and out of revoke_user's reach, while still alive.
    """
    if store is None:
        pytest.skip("the cookie store keeps no per-user index")
    from asgisession import user_sessions
    from asgisession.revocation import Revocations

    if not Revocations(store).indexed:
        pytest.skip(f"{type(store).__name__} keeps no per-user index")
    browser = Browser(secret, store, user_key="user")
    start = int(browser.clock.now)
    await chosen(browser, CHOICES["short"])
    (listed,) = await user_sessions(store, "alice", now=start)
    assert start + 60 == listed.expires_at
    await browser.get("/expiry?value=none")
    (listed,) = await user_sessions(store, "alice", now=start)
    assert start + LIFETIME == listed.expires_at
