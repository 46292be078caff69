"""Tests for asgisession.jar: the app's own cookies, through the real SessionMiddleware.

Header-level checks drive the middleware with a hand-rolled scope and a recorder; flows
across requests go through httpx.ASGITransport and the client's cookie jar.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest

from asgisession import ConfigurationError, CookieJar, CookieOverflow, SessionMiddleware, cookies
from asgisession._types import ASGIApp, Message, Receive, Scope, Send
from asgisession.cookies import MAX_AGE_LIMIT, CookieOptions
from asgisession.crypto import Keyring, b64url_decode
from asgisession.jar import JarCodecs

NOW = 1_750_000_000
Action = Callable[[Scope], Any]


def make_app(
    action: Action, *, status: int = 200, headers: Sequence[tuple[bytes, bytes]] = ()
) -> ASGIApp:
    """An app that runs ``action(scope)`` and answers with its result as JSON."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        result = action(scope)
        start = {"type": "http.response.start", "status": status, "headers": list(headers)}
        await send(start)
        await send({"type": "http.response.body", "body": json.dumps(result).encode()})

    return app


async def run(
    secret: str,
    action: Action,
    *cookie_headers: str,
    scheme: str = "http",
    status: int = 200,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> tuple[Any, list[tuple[bytes, bytes]]]:
    """One request through SessionMiddleware: the app's result and the response headers."""
    middleware = SessionMiddleware(
        make_app(action, status=status, headers=headers), secret_key_base=secret, clock=lambda: NOW
    )
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "scheme": scheme,
        "path": "/",
        "query_string": b"",
        "headers": [(b"cookie", value.encode("latin-1")) for value in cookie_headers],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    return json.loads(sent[1]["body"]), list(sent[0].get("headers", []))


def bare_jar(secret: str) -> CookieJar:
    """A jar built directly, for checks that need no request."""
    return CookieJar([], codecs=JarCodecs(Keyring(secret)), clock=lambda: NOW)


def set_cookies(headers: list[tuple[bytes, bytes]]) -> list[str]:
    return [value.decode("latin-1") for key, value in headers if key == b"set-cookie"]


def client(secret: str, action: Action) -> httpx.AsyncClient:
    middleware = SessionMiddleware(make_app(action), secret_key_base=secret)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware), base_url="http://testserver"
    )


# -- reading ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_reading_every_cookie_header_first_value_wins(secret: str) -> None:
    """Cookies from all cookie headers are read, and the first value of a name wins."""

    def read(scope: Scope) -> Any:
        jar = cookies(scope)
        return {"a": jar["a"], "b": jar.get("b"), "c": "c" in jar, "all": dict(jar)}

    result, _ = await run(secret, read, "a=1; b=2", "a=3; d=4")
    assert {"a": "1", "b": "2", "c": False, "all": {"a": "1", "b": "2", "d": "4"}} == result


@pytest.mark.anyio
async def test_a_missing_cookie_raises_keyerror_and_gets_none(secret: str) -> None:
    """jar[name] raises KeyError for a missing cookie; jar.get(name) returns None."""

    def read(scope: Scope) -> Any:
        jar = cookies(scope)
        with pytest.raises(KeyError):
            jar["nope"]
        return jar.get("nope")

    assert (await run(secret, read))[0] is None


def test_cookies_without_the_middleware_raises() -> None:
    """cookies() names the missing SessionMiddleware."""
    with pytest.raises(ConfigurationError, match="SessionMiddleware"):
        cookies({})


# -- writing ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_set_renders_the_attributes(secret: str) -> None:
    """set() renders Path, Domain, Max-Age with Expires, Secure, HttpOnly and SameSite."""

    def write(scope: Scope) -> Any:
        cookies(scope).set(
            "theme", "dark", max_age=60, path="/app", domain="example.com",
            secure=True, httponly=False, samesite="strict",
        )  # fmt: skip

    _, headers = await run(secret, write)
    assert [
        "theme=dark; Path=/app; Domain=example.com; Max-Age=60; "
        "Expires=Sun, 15 Jun 2025 15:07:40 GMT; Secure; SameSite=Strict"
    ] == set_cookies(headers)


@pytest.mark.anyio
async def test_set_defaults_and_secure_auto(secret: str) -> None:
    """By default a cookie is HttpOnly, Lax, for the browser session; Secure on https."""

    def write(scope: Scope) -> Any:
        cookies(scope).set("a", "1")

    _, plain = await run(secret, write)
    _, tls = await run(secret, write, scheme="https")
    assert ["a=1; Path=/; HttpOnly; SameSite=Lax"] == set_cookies(plain)
    assert ["a=1; Path=/; Secure; HttpOnly; SameSite=Lax"] == set_cookies(tls)


@pytest.mark.anyio
async def test_delete_sends_an_expired_cookie(secret: str) -> None:
    """delete() sends Max-Age=0 with the given Path and Domain, and the jar forgets it."""

    def delete(scope: Scope) -> Any:
        jar = cookies(scope)
        jar.delete("a", path="/x", domain="example.com")
        return jar.get("a")

    result, headers = await run(secret, delete, "a=1")
    assert result is None
    assert [
        "a=; Path=/x; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
        "HttpOnly; SameSite=Lax"
    ] == set_cookies(headers)


@pytest.mark.anyio
async def test_the_last_write_of_a_cookie_wins(secret: str) -> None:
    """Setting and then deleting one cookie sends only the deletion; reads see the change."""

    def write(scope: Scope) -> Any:
        jar = cookies(scope)
        jar.set("a", "2")
        seen = jar["a"]
        jar.delete("a")
        return seen

    result, headers = await run(secret, write, "a=1")
    assert "2" == result
    assert 1 == len(set_cookies(headers))
    assert "Max-Age=0" in set_cookies(headers)[0]


@pytest.mark.anyio
async def test_permanent_cookies_get_400_days(secret: str) -> None:
    """jar.permanent.set() and permanent=True use the longest Max-Age browsers keep."""

    def write(scope: Scope) -> Any:
        jar = cookies(scope)
        jar.permanent.set("a", "1")
        jar.set("b", "2", permanent=True)
        jar.permanent.signed.set("c", 3)

    _, headers = await run(secret, write)
    assert 3 == len(set_cookies(headers))
    for header in set_cookies(headers):
        assert f"Max-Age={MAX_AGE_LIMIT};" in header
    assert 34_560_000 == MAX_AGE_LIMIT


@pytest.mark.anyio
async def test_set_takes_the_options_as_one_object(secret: str) -> None:
    """options=CookieOptions(...) gives every attribute; its name and max_age are as told."""
    prefs = CookieOptions(
        name="ignored", max_age=60, path="/app", domain="example.com", secure=True,
        httponly=False, samesite="strict",
    )  # fmt: skip

    def write(scope: Scope) -> Any:
        cookies(scope).set("theme", "dark", options=prefs)

    _, headers = await run(secret, write)
    assert [
        "theme=dark; Path=/app; Domain=example.com; Max-Age=60; "
        "Expires=Sun, 15 Jun 2025 15:07:40 GMT; Secure; SameSite=Strict"
    ] == set_cookies(headers)


@pytest.mark.anyio
async def test_keywords_are_shortcuts_over_the_options(secret: str) -> None:
    """A keyword given with another value than its default replaces that field only."""
    prefs = CookieOptions(max_age=60, path="/app", samesite="strict")

    def write(scope: Scope) -> Any:
        jar = cookies(scope)
        jar.set("a", "1", options=prefs, path="/other")
        jar.set("b", "2", options=prefs, path="/")  # the default: prefs' path stays
        jar.set("c", "3", options=prefs, permanent=True)
        jar.permanent.set("d", "4", options=prefs)

    _, headers = await run(secret, write)
    a, b, c, d = set_cookies(headers)
    assert a.startswith("a=1; Path=/other; Max-Age=60;")
    assert b.startswith("b=2; Path=/app; Max-Age=60;")
    for header in (c, d):  # permanent replaces the options' max_age
        assert f"Path=/app; Max-Age={MAX_AGE_LIMIT};" in header
        assert header.endswith("HttpOnly; SameSite=Strict")


@pytest.mark.anyio
async def test_sealed_cookies_take_options_and_expire_with_them(secret: str) -> None:
    """jar.signed/encrypted.set(options=...) seal until now + the options' max_age."""
    prefs = CookieOptions(max_age=120, path="/app")

    def write(scope: Scope) -> Any:
        jar = cookies(scope)
        jar.signed.set("s", {"a": 1}, options=prefs)
        jar.encrypted.set("e", [1, 2], options=prefs)

    _, headers = await run(secret, write)
    signed, encrypted = set_cookies(headers)
    for header in (signed, encrypted):
        assert "; Path=/app; Max-Age=120;" in header
    codecs = JarCodecs(Keyring(secret))
    value = signed.split(";", 1)[0].split("=", 1)[1]
    opened = codecs.get("signed").open(value, purpose="s", now=NOW)
    assert NOW + 120 == opened.expires_at


def test_options_are_checked_like_the_keywords(secret: str) -> None:
    """The options' own checks run, and max_age with permanent still conflicts."""
    jar = bare_jar(secret)
    with pytest.raises(ConfigurationError, match="not a valid cookie name"):
        jar.set("bad name", "v", options=CookieOptions())
    with pytest.raises(ConfigurationError, match="permanent"):
        jar.set("a", "v", options=CookieOptions(), max_age=60, permanent=True)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("bad name", {}),
        ("a", {"samesite": "loose"}),
        ("a", {"samesite": "none"}),
        ("a", {"max_age": 0}),
        ("a", {"max_age": MAX_AGE_LIMIT + 1}),
        ("a", {"path": "relative"}),
        ("a", {"domain": "a;b"}),
        ("a", {"partitioned": True}),
        ("__Host-a", {"secure": True, "path": "/x"}),
        ("a", {"secure": "yes"}),
        ("a", {"max_age": 60, "permanent": True}),
    ],
)
def test_invalid_options_raise_configuration_error(
    secret: str, name: str, options: dict[str, Any]
) -> None:
    """The session cookie's rules apply to every jar cookie."""
    jar = bare_jar(secret)
    with pytest.raises(ConfigurationError):
        jar.set(name, "v", **options)


@pytest.mark.parametrize("value", ["has space", 'quote"', "semi;colon", "comma,", "é"])
def test_values_that_are_not_cookie_octets_are_refused(secret: str, value: str) -> None:
    """Plain values must already be cookie-octets; the error says how to fix it."""
    with pytest.raises(ValueError, match=r"jar\.signed"):
        bare_jar(secret).set("a", value)


def test_oversized_cookies_raise_cookie_overflow(secret: str) -> None:
    """A cookie whose name and value pass 4096 bytes raises instead of being dropped."""
    with pytest.raises(CookieOverflow):
        bare_jar(secret).set("a", "x" * 4096)


def test_non_json_sealed_values_are_refused(secret: str) -> None:
    """Signed and encrypted values must be JSON."""
    with pytest.raises(TypeError, match="JSON"):
        bare_jar(secret).signed.set("a", object())


# -- signed and encrypted -----------------------------------------------------------------------


def write_sealed(kind: str, name: str = "remember") -> Action:
    def write(scope: Scope) -> Any:
        getattr(cookies(scope), kind).set(name, {"user": 42, "roles": ["admin"]}, max_age=3600)

    return write


def read_sealed(kind: str, name: str = "remember") -> Action:
    def read(scope: Scope) -> Any:
        sealed = getattr(cookies(scope), kind)
        return {"value": sealed.get(name), "in": name in sealed}

    return read


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["signed", "encrypted"])
async def test_sealed_values_round_trip_across_requests(secret: str, kind: str) -> None:
    """A signed or encrypted JSON value set on one request reads back on the next."""
    actions = {"write": write_sealed(kind), "read": read_sealed(kind)}
    async with client(secret, lambda scope: actions[scope["path"].strip("/")](scope)) as http:
        await http.get("/write")
        assert "remember" in http.cookies
        response = await http.get("/read")
    assert {"value": {"user": 42, "roles": ["admin"]}, "in": True} == response.json()


@pytest.mark.anyio
async def test_encrypted_values_are_not_readable_and_signed_ones_are(secret: str) -> None:
    """The encrypted cookie hides the value; the signed one carries it readably."""
    _, signed = await run(secret, write_sealed("signed"))
    _, encrypted = await run(secret, write_sealed("encrypted"))

    def raw(headers: list[tuple[bytes, bytes]]) -> bytes:
        return b64url_decode(set_cookies(headers)[0].split(";")[0].split("=", 1)[1])

    assert b'{"user":42,"roles":["admin"]}' in raw(signed)
    assert b'"user"' not in raw(encrypted)


def cookie_pair(headers: list[tuple[bytes, bytes]]) -> str:
    return set_cookies(headers)[0].split(";")[0]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["signed", "encrypted"])
async def test_tampered_values_read_as_missing(secret: str, kind: str) -> None:
    """A changed character makes the cookie read as missing, not an error."""
    _, headers = await run(secret, write_sealed(kind))
    name, value = cookie_pair(headers).split("=", 1)
    flipped = value[:40] + ("A" if value[40] != "A" else "B") + value[41:]
    result, _ = await run(secret, read_sealed(kind), f"{name}={flipped}")
    assert {"value": None, "in": False} == result


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["signed", "encrypted"])
async def test_a_value_moved_to_another_name_reads_as_missing(secret: str, kind: str) -> None:
    """The seal is bound to the cookie name: copied under another name it does not open."""
    _, headers = await run(secret, write_sealed(kind, "admin_of"))
    value = cookie_pair(headers).split("=", 1)[1]
    result, _ = await run(secret, read_sealed(kind, "remember"), f"remember={value}")
    assert {"value": None, "in": False} == result


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["signed", "encrypted"])
async def test_a_foreign_secret_reads_as_missing(secret: str, other_secret: str, kind: str) -> None:
    """A cookie sealed under another secret_key_base reads as missing."""
    _, headers = await run(other_secret, write_sealed(kind))
    result, _ = await run(secret, read_sealed(kind), cookie_pair(headers))
    assert {"value": None, "in": False} == result


@pytest.mark.anyio
async def test_signed_and_encrypted_cookies_do_not_open_each_other(secret: str) -> None:
    """Each kind has its own derived key: a signed value does not read as encrypted."""
    _, headers = await run(secret, write_sealed("signed"))
    result, _ = await run(secret, read_sealed("encrypted"), cookie_pair(headers))
    assert {"value": None, "in": False} == result


@pytest.mark.anyio
async def test_an_expired_sealed_value_reads_as_missing(secret: str) -> None:
    """The seal expires with max_age, even if the browser sends the cookie later."""
    _, headers = await run(secret, write_sealed("encrypted"))
    later = SessionMiddleware(
        make_app(read_sealed("encrypted")), secret_key_base=secret, clock=lambda: NOW + 3600
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=later), base_url="http://testserver"
    ) as http:
        response = await http.get("/", headers={"cookie": cookie_pair(headers)})
    assert {"value": None, "in": False} == response.json()


@pytest.mark.anyio
async def test_a_session_cookie_does_not_open_as_a_jar_cookie(secret: str) -> None:
    """The jar's keys differ from the session's: a session cookie renamed does not open."""

    def write_session(scope: Scope) -> Any:
        scope["session"]["user"] = 42

    _, headers = await run(secret, write_session)
    value = cookie_pair(headers).split("=", 1)[1]
    result, _ = await run(secret, read_sealed("encrypted"), f"remember={value}")
    assert {"value": None, "in": False} == result


# -- reaching the response ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_app_jar_and_session_set_cookies_all_reach_the_response(secret: str) -> None:
    """The app's own Set-Cookie, two from the jar and the session's: four headers."""

    def write(scope: Scope) -> Any:
        jar = cookies(scope)
        jar.set("a", "1")
        jar.signed.set("b", 2)
        scope["session"]["user"] = 42

    _, headers = await run(secret, write, headers=[(b"set-cookie", b"own=1; Path=/")])
    names = [header.split("=", 1)[0] for header in set_cookies(headers)]
    assert ["own", "session", "a", "b"] == names


@pytest.mark.anyio
async def test_an_untouched_jar_adds_nothing(secret: str) -> None:
    """A request that never calls cookies() gets no headers from the jar."""
    _, headers = await run(secret, lambda scope: None, "a=1")
    assert [] == headers


@pytest.mark.anyio
async def test_reading_the_jar_adds_vary_cookie(secret: str) -> None:
    """A response that depends on a request cookie says so with Vary: Cookie."""
    _, headers = await run(secret, lambda scope: cookies(scope).get("a"), "a=1")
    assert [(b"vary", b"Cookie")] == [pair for pair in headers if pair[0] == b"vary"]


@pytest.mark.anyio
async def test_jar_cookies_are_private_to_caches(secret: str) -> None:
    """A response with a jar Set-Cookie gets Cache-Control: private unless it has one."""
    _, headers = await run(secret, lambda scope: cookies(scope).set("a", "1"))
    assert [b"private"] == [value for key, value in headers if key == b"cache-control"]


@pytest.mark.anyio
async def test_no_jar_cookies_on_a_server_error(secret: str) -> None:
    """Like the session cookie, jar cookies are not sent with a 5xx response."""
    _, headers = await run(secret, lambda scope: cookies(scope).set("a", "1"), status=500)
    assert [] == set_cookies(headers)


@pytest.mark.anyio
async def test_jar_cookies_reach_websocket_accept(secret: str) -> None:
    """A WebSocket app can set a cookie on websocket.accept."""

    async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
        cookies(scope).set("a", "1")
        await send({"type": "websocket.accept"})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = SessionMiddleware(ws_app, secret_key_base=secret)
    await middleware(
        {"type": "websocket", "scheme": "ws", "path": "/", "headers": []}, receive, send
    )
    assert [(b"set-cookie", b"a=1; Path=/; HttpOnly; SameSite=Lax")] == sent[0]["headers"]


@pytest.mark.anyio
async def test_the_seal_expires_with_max_age_or_after_400_days(secret: str) -> None:
    """The seal's expiry is now + max_age, or now + 400 days for a browser-session cookie."""

    def write(scope: Scope) -> Any:
        cookies(scope).signed.set("short", 1, max_age=60)
        cookies(scope).signed.set("browser", 1)

    _, headers = await run(secret, write)
    codec = JarCodecs(Keyring(secret)).get("signed")
    expiries = {}
    for header in set_cookies(headers):
        name, value = header.split(";")[0].split("=", 1)
        expiries[name] = codec.open(value, purpose=name, now=NOW).expires_at
    assert {"short": NOW + 60, "browser": NOW + MAX_AGE_LIMIT} == expiries


@pytest.mark.anyio
async def test_a_value_sealed_under_an_older_secret_still_opens(
    secret: str, other_secret: str
) -> None:
    """After rotation (new secret first), values sealed under the old one still read."""
    _, headers = await run(other_secret, write_sealed("encrypted"))
    middleware = SessionMiddleware(
        make_app(read_sealed("encrypted")),
        secret_key_base=[secret, other_secret],
        clock=lambda: NOW,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware), base_url="http://testserver"
    ) as http:
        response = await http.get("/", headers={"cookie": cookie_pair(headers)})
    assert {"value": {"user": 42, "roles": ["admin"]}, "in": True} == response.json()
