# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""``Session.log_id``: a stable, non-secret id of the session, safe to log, on every store.

Per store (the cookie store, MemoryStore, SQLiteStore on a real file, RedisStore on a real
redis-server, MemcachedStore on a real memcached): stable across requests, cookie
refreshes and key rotation; new after regenerate() and reset(); and unrelated to the
cookie, the session id and the store key (neither equal to nor inside any of them).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asgisession import Keyring, MessageEncryptor, Session, SessionMiddleware
from asgisession._types import Receive, Scope, Send
from asgisession.backends._records import RecordSeal
from asgisession.backends.server import session_key
from asgisession.crypto import b64url_decode
from asgisession.session import LOG_SEED_KEY, LoadedState, log_id_of
from asgisession.stores import Store

from .asgi_helpers import Clock, client
from .stores_under_test import STORES, open_store

pytestmark = pytest.mark.anyio

LOG_ID = re.compile(r"[0-9a-f]{24}")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: the Redis and memcached clients are asyncio-only."""
    return "asyncio"


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store | None]:
    """The store under test (``None``: the cookie store); real servers, fresh namespaces."""
    made = open_store(request.param, request, tmp_path)
    yield made
    if made is not None:
        await made.aclose()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Do what the path says, then answer with the session's log id."""
    session: Session = scope["session"]
    await session.load()
    action = scope["path"].strip("/")
    if action == "login":
        session["user"] = "alice"
    elif action == "touch":
        session["n"] = session.get("n", 0) + 1
    elif action == "light":  # only keys that stay in the cookie with a server store
        session["_csrf_token"] = "t" * 43
    elif action == "regenerate":
        session.regenerate()
    elif action == "reset":
        session.reset()
    elif action != "read":
        raise AssertionError(action)
    body = json.dumps({"log_id": session.log_id}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


class Browser:
    """One middleware over the store and the cookie it set last."""

    def __init__(self, secret: Any, store: Store | None, **options: Any) -> None:
        self.clock = Clock(float(int(time.time())))
        self.secret = secret
        self.store = store
        self.options = options
        self.value = ""
        self.set_cookies: list[str] = []

    def middleware(self) -> SessionMiddleware:
        return SessionMiddleware(
            app, secret_key_base=self.secret, store=self.store, clock=self.clock, **self.options
        )

    async def log_id(self, path: str = "/read") -> str | None:
        headers = {"cookie": f"session={self.value}"} if self.value else {}
        async with client(self.middleware()) as c:
            response = await c.get(path, headers=headers)
        assert 200 == response.status_code
        self.set_cookies = response.headers.get_list("set-cookie")
        if self.set_cookies:
            self.value = self.set_cookies[0].split(";", 1)[0].split("=", 1)[1]
        log_id: str | None = response.json()["log_id"]
        return log_id


async def test_none_while_the_session_holds_nothing(store: Store | None, secret: str) -> None:
    """An empty session has no log id, and asking for one writes nothing."""
    browser = Browser(secret, store)
    assert None is await browser.log_id()
    assert [] == browser.set_cookies


async def test_stable_across_requests_refreshes_and_rotation(
    store: Store | None, secret: str, other_secret: str
) -> None:
    """The same id on every request: plain reads, writes, idle refreshes, a new secret."""
    browser = Browser(secret, store, idle_timeout=600)
    first = await browser.log_id("/login")
    assert first is not None
    assert LOG_ID.fullmatch(first)
    seen = {first, await browser.log_id(), await browser.log_id("/touch")}
    browser.clock.advance(300)  # past refresh_after (60 s): the cookie is re-issued
    seen.add(await browser.log_id())
    assert browser.set_cookies
    browser.secret = [other_secret, secret]  # rotation: re-issued under the new secret
    seen.add(await browser.log_id())
    assert browser.set_cookies
    seen.add(await browser.log_id())
    assert {first} == seen


async def test_a_session_from_before_gets_one_once(store: Store | None, secret: str) -> None:
    """A session with data but no seed gets one on first read, written with that response."""
    browser = Browser(secret, store)

    async def before(scope: Scope, receive: Receive, send: Send) -> None:
        session: Session = scope["session"]
        await session.load()
        session["user"] = "alice"  # an app that never reads log_id
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    old = SessionMiddleware(before, secret_key_base=secret, store=store, clock=browser.clock)
    async with client(old) as c:
        await c.get("/")
        browser.value = c.cookies["session"]
    first = await browser.log_id()
    if store is None:  # the seed goes into the cookie (server stores: into the record)
        assert browser.set_cookies
    assert first == await browser.log_id()
    assert first == await browser.log_id()


async def test_new_after_regenerate_and_reset(store: Store | None, secret: str) -> None:
    """regenerate() and reset() give the session a new log id (none while it is empty)."""
    browser = Browser(secret, store)
    first = await browser.log_id("/login")
    regenerated = await browser.log_id("/regenerate")
    assert regenerated is not None
    assert first != regenerated
    assert regenerated == await browser.log_id()
    assert None is await browser.log_id("/reset")
    again = await browser.log_id("/login")
    assert again not in (None, first, regenerated)


async def test_kept_when_a_light_session_moves_into_the_store(
    store: Store | None, secret: str
) -> None:
    """A session that starts in the cookie (CSRF secret only) keeps its id once it holds more."""
    browser = Browser(secret, store)
    light = await browser.log_id("/light")
    assert light is not None
    assert light == await browser.log_id("/login")
    assert light == await browser.log_id()


async def test_unrelated_to_cookie_id_and_store_key(store: Store | None, secret: str) -> None:
    """Neither equal to nor inside the cookie, the session id, the store key or the record.

    And no part of them inside it: it is a one-way hash of a seed of its own.
    """
    browser = Browser(secret, store)
    log_id = await browser.log_id("/login")
    assert log_id is not None
    opened = MessageEncryptor(Keyring(secret)).open(
        browser.value, purpose="session", now=int(browser.clock.now)
    )
    secrets_of_session = [browser.value, b64url_decode(browser.value).hex()]
    if store is not None:
        key = session_key(opened.payload)
        record = await store.load(key)
        assert record is not None
        payload, _ = RecordSeal(Keyring(secret)).open(key, opened.payload, record)
        secrets_of_session += [opened.payload.hex(), key, key.split(":")[-1], record.hex()]
        secrets_of_session.append(payload.decode())
        seed = json.loads(payload)[LOG_SEED_KEY]
    else:
        seed = json.loads(opened.payload)[LOG_SEED_KEY]
    secrets_of_session.append(seed)
    for text in secrets_of_session:
        assert log_id not in text
        assert log_id != text
        for start in range(0, len(text) - 8):
            assert text[start : start + 8] not in log_id


def test_distinct_sessions_have_distinct_ids() -> None:
    """Each session draws its own random seed."""
    ids = set()
    for _ in range(200):
        session = Session(lambda: LoadedState(data={"user": "x"}, serialized=b"{}"))
        ids.add(session.log_id)
    assert 200 == len(ids)
    assert log_id_of("a") != log_id_of("b")
