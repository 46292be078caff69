"""Anonymous visitors do not fill the store.

A cookieless GET of a page with a form asks for a CSRF token, which puts the CSRF secret
in the session; that alone must not write a record (the store-flooding class of Django's
CVE-2015-5143): a session holding only the CSRF secret and flash stays in the sealed
cookie. The token still works for the login form, and login moves the session into the
store (regenerated, with a new token, as before). Each runs on every server-side store.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl, urlencode

import pytest

from asgisession import CSRFMiddleware, Session, SessionMiddleware, csrf_token
from asgisession._types import ASGIApp, Receive, Scope, Send
from asgisession.flash import flash

from .asgi import body, call, set_cookie, status
from .conftest import Served

pytestmark = pytest.mark.anyio

VISITORS = 10_000
FORM = [(b"content-type", b"application/x-www-form-urlencoded"), (b"origin", b"http://testserver")]


async def site(scope: Scope, receive: Receive, send: Send) -> None:
    """``/form`` renders a token, ``/login`` (POST) logs in, ``/flash`` sets a flash."""
    session: Session = scope["session"]
    result: object = None
    if scope["path"] == "/form":
        result = {"token": csrf_token(scope)}
    elif scope["path"] == "/login":
        message = await receive()
        form = dict(parse_qsl(message.get("body", b"").decode()))
        session.regenerate()
        session["user"] = form["user"]
        result = {"token": csrf_token(scope)}
    elif scope["path"] == "/flash":
        flash(scope)["notice"] = "saved"
    elif scope["path"] == "/read":
        result = dict(session)
    elif scope["path"] == "/logout":
        session.reset()
    payload = repr(result).replace("'", '"').replace("None", "null").encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": payload})


def build(served: Served, secret: str | list[str]) -> ASGIApp:
    return SessionMiddleware(CSRFMiddleware(site), secret_key_base=secret, store=served.store)


async def login(app: ASGIApp, cookie: str, token: str, user: str = "alice") -> tuple[int, str]:
    form = urlencode({"authenticity_token": token, "user": user}).encode()
    answer = await call(app, "/login", cookie, method="POST", body=form, headers=FORM)
    return status(answer), set_cookie(answer) or ""


async def test_ten_thousand_form_views_write_no_record(served: Served, secret: str) -> None:
    """10,000 cookieless GETs of a form page: 10,000 tokens, 0 records."""
    app = build(served, secret)
    visitors: list[tuple[str, str]] = []
    for _ in range(VISITORS):
        answer = await call(app, "/form")
        cookie = set_cookie(answer)
        assert cookie
        visitors.append((cookie, body(answer)["token"]))
    assert 0 == await served.records()
    assert VISITORS == len({cookie for cookie, _ in visitors})
    # Every tenth visitor logs in with the token it got: it passes, and only then a record.
    for cookie, token in visitors[::1000]:
        code, session = await login(app, cookie, token)
        assert 200 == code
        assert session
        assert {"user": "alice"} == {
            k: v for k, v in body(await call(app, "/read", session)).items() if k == "user"
        }
    assert VISITORS // 1000 == await served.records()


async def test_the_light_cookie_keeps_its_token_and_flash(served: Served, secret: str) -> None:
    """A flash and the token stay in the cookie; a later form view keeps the same secret."""
    app = build(served, secret)
    first = await call(app, "/form")
    cookie = set_cookie(first)
    assert cookie
    flashed = set_cookie(await call(app, "/flash", cookie))
    assert flashed
    assert {"flash", "_csrf_token"} == set(body(await call(app, "/read", flashed)))
    assert 0 == await served.records()
    code, session = await login(app, flashed, body(first)["token"])
    assert (200, True) == (code, bool(session))
    assert 1 == await served.records()


async def test_a_forged_token_still_fails(served: Served, secret: str) -> None:
    """Keeping the secret in the cookie does not let another visitor's token pass."""
    app = build(served, secret)
    mine = set_cookie(await call(app, "/form"))
    theirs = body(await call(app, "/form"))["token"]
    assert mine
    assert 403 == (await login(app, mine, theirs))[0]
    assert 0 == await served.records()


async def test_logout_and_rotation_of_a_light_cookie(served: Served, secret: str) -> None:
    """A light cookie opened by an older secret is re-issued under the newest, unstored."""
    old = set_cookie(await call(build(served, secret), "/form"))
    assert old
    rotated = build(served, [secrets.token_hex(32), secret])
    answer = await call(rotated, "/read", old)
    renewed = set_cookie(answer)
    assert renewed
    assert renewed != old
    assert {"_csrf_token"} == set(body(answer))
    assert "" == set_cookie(await call(rotated, "/logout", renewed))  # a deletion
    assert 0 == await served.records()
