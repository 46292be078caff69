"""One scenario every framework integration must pass, against the same small JSON app.

Each framework's test builds an app with these routes, using that framework's own way of
reaching the session:

- ``GET /csrf``: ``{"token": <csrf_token>}``
- ``POST /counter``: adds one to ``count``, returns ``{"count": n}``
- ``POST /login`` (JSON ``{"user": ...}``): regenerates, sets ``user``, returns the session
- ``POST /logout``: resets the session, returns ``{}``
- ``GET /me``: the session without keys starting with ``_``

:func:`wrap` puts ``SessionMiddleware(CSRFMiddleware(app))`` around it and
:func:`check_contract` drives it with a real HTTP client: a write read back across requests,
regenerate on login, the CSRF token round trip, and a tampered cookie read as an empty session.
"""

from __future__ import annotations

from typing import Any

import httpx

from asgisession import CSRFMiddleware, SessionMiddleware
from asgisession._types import AnyASGIApp, ASGIApp
from asgisession.stores.memory import MemoryStore

STORES = ("cookie", "memory")


def wrap(app: AnyASGIApp, secret: str, store: str) -> SessionMiddleware:
    """The framework app behind CSRF protection and a session (cookie or server-side)."""
    server_store = MemoryStore() if store == "memory" else None
    return SessionMiddleware(CSRFMiddleware(app), secret_key_base=secret, store=server_store)


def public(session: Any) -> dict[str, Any]:
    """The session's data without the helpers' private keys (``_csrf_token``)."""
    return {key: value for key, value in dict(session).items() if not key.startswith("_")}


def tampered(value: str) -> str:
    """The cookie value with one character in the middle changed."""
    middle = len(value) // 2
    return value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]


async def token(c: httpx.AsyncClient) -> str:
    response = await c.get("/csrf")
    assert 200 == response.status_code, response.text
    value: str = response.json()["token"]
    return value


async def me_with(transport: httpx.ASGITransport, cookie: str) -> httpx.Response:
    """``GET /me`` with exactly this session cookie, from a client with no jar of its own."""
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as bare:
        return await bare.get("/me", headers={"cookie": f"session={cookie}"})


async def check_contract(app: ASGIApp, *, server_side: bool) -> None:
    """Drive the contract app: every step is one real request through the whole stack."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        assert {} == (await c.get("/me")).json()

        # CSRF: no token and a wrong one are refused; the page's token passes.
        assert 403 == (await c.post("/counter")).status_code
        assert 403 == (await c.post("/counter", headers={"x-csrf-token": "x" * 86})).status_code
        before_login = await token(c)
        for expected in (1, 2):
            response = await c.post("/counter", headers={"x-csrf-token": before_login})
            assert {"count": expected} == response.json()

        # Write, then read back on later requests.
        assert {"count": 2} == (await c.get("/me")).json()
        anonymous_cookie = c.cookies["session"]

        # Login regenerates: data kept, the old token and (server-side) the old id stop working.
        response = await c.post(
            "/login", json={"user": "alice"}, headers={"x-csrf-token": before_login}
        )
        assert 200 == response.status_code, response.text
        assert {"count": 2, "user": "alice"} == response.json()
        assert response.headers.get_list("set-cookie")
        assert anonymous_cookie != c.cookies["session"]
        refused = await c.post("/counter", headers={"x-csrf-token": before_login})
        assert 403 == refused.status_code
        after_login = await token(c)
        response = await c.post("/counter", headers={"x-csrf-token": after_login})
        assert {"count": 3} == response.json()
        logged_in_cookie = c.cookies["session"]
        assert {"count": 3, "user": "alice"} == (await me_with(transport, logged_in_cookie)).json()

        replayed = await me_with(transport, anonymous_cookie)
        if server_side:
            assert {} == replayed.json()  # the pre-login record is gone
        else:
            assert {"count": 2} == replayed.json()  # a cookie store cannot revoke a copy

        # A tampered cookie is an empty session, not an error.
        response = await me_with(transport, tampered(logged_in_cookie))
        assert 200 == response.status_code
        assert {} == response.json()

        # Logout resets: the next request starts empty.
        response = await c.post("/logout", headers={"x-csrf-token": await token(c)})
        assert 200 == response.status_code, response.text
        assert "session" not in c.cookies
        assert {} == (await c.get("/me")).json()
