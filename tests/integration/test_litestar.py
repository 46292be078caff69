# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""A real Litestar app: request.session is asgisession's, set_session/clear_session work."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, get, post
from litestar.di import NamedDependency, Provide

from asgisession import Session, SessionMiddleware, csrf_token
from asgisession.integrations.litestar import SessionSync, provide_session, session_of

from ..asgi_helpers import client
from .contract import STORES, check_contract, public, wrap

pytestmark = pytest.mark.integration

AnyRequest = Request[Any, Any, Any]


@get("/csrf")
async def csrf(request: AnyRequest) -> dict[str, str]:
    return {"token": csrf_token(request.scope)}


@post("/counter", status_code=200)
async def counter(request: AnyRequest) -> dict[str, int]:
    count: int = request.session.get("count", 0) + 1
    request.session["count"] = count
    return {"count": count}


@post("/login", status_code=200)
async def login(request: AnyRequest, session: NamedDependency[Session]) -> dict[str, Any]:
    user = (await request.json())["user"]
    session.regenerate()
    session["user"] = user
    return public(session)


@post("/logout", status_code=200)
async def logout(request: AnyRequest) -> dict[str, Any]:
    request.clear_session()  # Litestar's own call: SessionSync turns it into a reset
    return {}


@get("/me")
async def me(request: AnyRequest) -> dict[str, Any]:
    return public(request.session)


@post("/replace", status_code=200)
async def replace(request: AnyRequest) -> dict[str, Any]:
    request.set_session({"replaced": True})
    return {}


@get("/typed")
async def typed(request: AnyRequest) -> dict[str, bool]:
    return {"same": session_of(request) is request.session}


def make_app() -> SessionSync:
    return SessionSync(
        Litestar(
            route_handlers=[csrf, counter, login, logout, me, replace, typed],
            dependencies={"session": Provide(provide_session)},
        )
    )


@pytest.mark.anyio
@pytest.mark.parametrize("store", STORES)
async def test_contract(secret: str, store: str) -> None:
    await check_contract(wrap(make_app(), secret, store), server_side=store != "cookie")


@pytest.mark.anyio
async def test_set_session_replaces_the_data(secret: str) -> None:
    """request.set_session(dict) becomes the session's contents, written to the cookie."""
    async with client(SessionMiddleware(make_app(), secret_key_base=secret)) as c:
        await c.post("/counter")
        assert "session" in c.cookies
        assert 200 == (await c.post("/replace")).status_code
        assert {"replaced": True} == (await c.get("/me")).json()
        assert {"same": True} == (await c.get("/typed")).json()


@pytest.mark.anyio
async def test_without_session_sync_clear_session_is_lost(secret: str) -> None:
    """Why SessionSync exists: without it, clear_session() never reaches the cookie."""
    litestar = Litestar(route_handlers=[counter, logout, me])
    app = SessionMiddleware(litestar, secret_key_base=secret)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await c.post("/counter")
        await c.post("/logout")
        assert {"count": 1} == (await c.get("/me")).json()
