"""Tests for asgisession.flash: Rails flash semantics through the real SessionMiddleware."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl

import httpx
import pytest

from asgisession import (
    ConfigurationError,
    Flash,
    Keyring,
    MessageEncryptor,
    SessionMiddleware,
    flash,
)
from asgisession._types import Receive, Scope, Send
from asgisession.session import LoadedState, Session, control_of
from asgisession.stores.base import Store
from asgisession.stores.memory import MemoryStore


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/set?k=v`` flashes for the next request (``&_discard=k`` then discards k),
    ``/now?k=v`` for this one, ``/keep``, ``/untouched``; the body is the visible flash."""
    path = scope["path"].strip("/")
    params = dict(parse_qsl(scope.get("query_string", b"").decode()))
    body: object = None
    if path != "untouched":
        messages = flash(scope)
        if path == "set":
            discard = params.pop("_discard", None)
            messages.update(params)
            if discard is not None:
                messages.discard(discard)
        elif path == "now":
            for key, value in params.items():
                messages.now[key] = value
        elif path == "keep":
            messages.keep(params.get("key"))
        body = dict(messages)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def client(secret: str, store: Store | None = None) -> httpx.AsyncClient:
    middleware = SessionMiddleware(app, secret_key_base=secret, store=store)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware), base_url="http://testserver"
    )


def stored(secret: str, response: httpx.Response) -> bytes:
    """The session payload (JSON bytes) in the response's session cookie."""
    value = response.cookies["session"]
    opened = MessageEncryptor(Keyring(secret)).open(value, purpose="session", now=int(time.time()))
    return opened.payload


def flash_of(data: dict[str, object] | None = None) -> Flash:
    return Flash(Session(lambda: LoadedState(data=dict(data or {}))))


@pytest.mark.anyio
async def test_flash_is_visible_on_the_next_request_then_gone(secret: str) -> None:
    """A flash set now shows on the next request only, and its session key then goes away."""
    async with client(secret) as http:
        assert {"notice": "Signed in"} == (await http.get("/set?notice=Signed in")).json()
        shown = await http.get("/read")
        assert {"notice": "Signed in"} == shown.json()
        assert {} == (await http.get("/read")).json()
        assert "session" not in http.cookies


@pytest.mark.anyio
async def test_flash_now_is_never_persisted(secret: str) -> None:
    """flash.now is readable on this request, but writes nothing to the session."""
    async with client(secret) as http:
        response = await http.get("/now?alert=Bad password")
        assert {"alert": "Bad password"} == response.json()
        assert [] == response.headers.get_list("set-cookie")
        assert {} == (await http.get("/read")).json()


@pytest.mark.anyio
async def test_keep_carries_a_flash_over_one_more_request(secret: str) -> None:
    """keep() makes a shown flash survive one more request, and no more."""
    async with client(secret) as http:
        await http.get("/set?notice=hi")
        assert {"notice": "hi"} == (await http.get("/keep")).json()
        assert {"notice": "hi"} == (await http.get("/read")).json()
        assert {} == (await http.get("/read")).json()


@pytest.mark.anyio
async def test_keep_one_key_keeps_only_that_key(secret: str) -> None:
    """keep(key) carries over that key; the others are gone next time."""
    async with client(secret) as http:
        await http.get("/set?notice=hi&alert=oops")
        await http.get("/keep?key=alert")
        assert {"alert": "oops"} == (await http.get("/read")).json()


@pytest.mark.anyio
async def test_discard_drops_a_flash_set_on_this_request(secret: str) -> None:
    """discard(key) leaves the flash readable now but keeps it from the next request."""
    async with client(secret) as http:
        shown = await http.get("/set?notice=hi&alert=oops&_discard=notice")
        assert {"notice": "hi", "alert": "oops"} == shown.json()
        assert {"alert": "oops"} == (await http.get("/read")).json()


@pytest.mark.anyio
async def test_a_request_that_never_uses_flash_sends_no_set_cookie(secret: str) -> None:
    """Neither the session nor the flash is touched when the app never calls flash()."""
    async with client(secret) as http:
        await http.get("/set?notice=hi")
        response = await http.get("/untouched")
        assert [] == response.headers.get_list("set-cookie")
        assert {"notice": "hi"} == (await http.get("/read")).json()


@pytest.mark.anyio
async def test_reading_an_empty_flash_writes_nothing(secret: str) -> None:
    """A request that reads the flash when none is stored sends no Set-Cookie."""
    async with client(secret) as http:
        response = await http.get("/read")
        assert {} == response.json()
        assert [] == response.headers.get_list("set-cookie")


@pytest.mark.anyio
async def test_flash_with_a_server_side_store(secret: str) -> None:
    """With MemoryStore the flash lives in the store and follows the same rules."""
    async with MemoryStore() as store, client(secret, store=store) as http:
        await http.get("/set?notice=saved")
        assert {"notice": "saved"} == (await http.get("/read")).json()
        assert {} == (await http.get("/read")).json()


@pytest.mark.anyio
async def test_the_stored_shape_is_rails(secret: str) -> None:
    """The session holds {"discard":[],"flashes":{...}} under "flash", written compactly."""
    async with client(secret) as http:
        response = await http.get("/set?notice=Signed in")
    assert b'{"flash":{"discard":[],"flashes":{"notice":"Signed in"}}}' == stored(secret, response)


def test_flash_is_cached_per_request() -> None:
    """flash(scope) returns the same object for the whole request."""
    scope: Scope = {"session": Session(lambda: LoadedState())}
    assert flash(scope) is flash(scope)


def test_flash_without_the_middleware_raises() -> None:
    """flash() names the missing SessionMiddleware instead of failing with a KeyError."""
    with pytest.raises(ConfigurationError, match="SessionMiddleware"):
        flash({})


def test_a_stored_flash_is_visible_and_marked_for_discard() -> None:
    """On load, stored flashes (minus Rails' own discard list) become visible, then go."""
    stored_flash = {"discard": ["old"], "flashes": {"notice": "hi", "old": "gone"}}
    messages = flash_of({"flash": stored_flash})
    assert {"notice": "hi"} == dict(messages)
    assert messages.to_session_value() is None


def test_mapping_reads() -> None:
    """get, [], in, len, iteration and items work like a dict."""
    messages = flash_of({"flash": {"discard": [], "flashes": {"notice": "hi"}}})
    messages.now["alert"] = "now"
    assert "hi" == messages["notice"]
    assert "now" == messages.now["alert"]
    assert messages.get("missing") is None
    assert "alert" in messages
    assert 2 == len(messages)
    assert [("notice", "hi"), ("alert", "now")] == list(messages.items())


def test_setting_a_key_after_now_keeps_it() -> None:
    """Assigning a key normally after flash.now un-discards it (as in Rails)."""
    messages = flash_of()
    messages.now["notice"] = "a"
    messages["notice"] = "b"
    assert {"discard": [], "flashes": {"notice": "b"}} == messages.to_session_value()


def test_delete_and_discard_all() -> None:
    """del removes a message; discard() with no key drops every message at commit."""
    messages = flash_of()
    messages["notice"] = "a"
    messages["alert"] = "b"
    del messages["alert"]
    assert {"discard": [], "flashes": {"notice": "a"}} == messages.to_session_value()
    messages.discard()
    assert messages.to_session_value() is None


def test_malformed_stored_flash_reads_empty_and_is_removed() -> None:
    """A flash value that is not Rails' shape reads as empty and is removed at commit."""
    session = Session(lambda: LoadedState(data={"flash": "junk", "user": 1}))
    messages = Flash(session)
    assert {} == dict(messages)
    control_of(session).run_before_commit()
    assert {"user": 1} == dict(session)


def test_non_string_keys_are_refused() -> None:
    """Flash keys are strings, as session keys are."""
    with pytest.raises(TypeError, match="flash keys must be str"):
        flash_of()[1] = "x"  # type: ignore[index]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("order", "expected"),
    [("before", None), ("after", {"notice": "Signed out"})],
    ids=["flash-then-reset", "reset-then-flash"],
)
async def test_reset_drops_an_earlier_flash_and_keeps_a_later_one(
    secret: str, order: str, expected: dict[str, str] | None
) -> None:
    """As in Rails, reset_session drops the flash set before it; one set after it survives."""

    async def logout(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/logout":
            if order == "before":
                flash(scope)["notice"] = "Signed out"
                scope["session"].reset()
            else:
                scope["session"].reset()
                flash(scope)["notice"] = "Signed out"
            body: object = None
        else:
            body = dict(flash(scope)) or None
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    middleware = SessionMiddleware(logout, secret_key_base=secret)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware), base_url="http://testserver"
    ) as c:
        c.cookies.set("session", "")
        await c.get("/logout")
        assert expected == (await c.get("/show")).json()
