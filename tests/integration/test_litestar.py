# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""examples/litestar_app.py: request.session is asgisession's; set/clear_session work."""

from __future__ import annotations

from typing import Any, cast

import pytest
from litestar import Litestar, Request, get, post
from litestar.di import Provide
from litestar.middleware import DefineMiddleware

from asgisession import CSRFMiddleware, SessionMiddleware
from asgisession._types import ASGIApp
from asgisession.integrations.litestar import SessionSync, provide_session, session_of
from asgisession.stores.memory import MemoryStore
from examples import litestar_app

from ..asgi_helpers import client
from .contract import STORES, check_contract, wrap

pytestmark = pytest.mark.integration

AnyRequest = Request[Any, Any, Any]


@post("/replace", status_code=200)
async def replace(request: AnyRequest) -> dict[str, Any]:
    request.set_session({"replaced": True})
    return {}


@get("/typed")
async def typed(request: AnyRequest) -> dict[str, bool]:
    return {"same": session_of(request) is request.session}


def make_app(*, sync: bool = True) -> Any:
    handlers = [litestar_app.counter, litestar_app.logout, litestar_app.me, replace, typed]
    app = Litestar(route_handlers=handlers, dependencies={"session": Provide(provide_session)})
    return SessionSync(app) if sync else app


@pytest.mark.anyio
@pytest.mark.parametrize("store", STORES)
async def test_contract(secret: str, store: str) -> None:
    app = SessionSync(litestar_app.app)
    await check_contract(wrap(app, secret, store), server_side=store != "cookie")


@pytest.mark.anyio
async def test_example_create_app_serves_the_contract(secret: str) -> None:
    await check_contract(litestar_app.create_app(secret), server_side=False)


@pytest.mark.anyio
async def test_set_session_replaces_the_data(secret: str) -> None:
    """request.set_session(dict) becomes the session's contents, written to the cookie."""
    async with client(SessionMiddleware(make_app(), secret_key_base=secret)) as c:
        await c.post("/counter")
        assert 200 == (await c.post("/replace")).status_code
        assert {"replaced": True} == (await c.get("/me")).json()
        assert {"same": True} == (await c.get("/typed")).json()
        await c.post("/logout")
        assert "session" not in c.cookies


@pytest.mark.anyio
async def test_without_session_sync_clear_session_is_lost(secret: str) -> None:
    """Why SessionSync exists: without it, clear_session() never reaches the cookie."""
    async with client(SessionMiddleware(make_app(sync=False), secret_key_base=secret)) as c:
        await c.post("/counter")
        await c.post("/logout")
        assert {"count": 1} == (await c.get("/me")).json()


@pytest.mark.anyio
@pytest.mark.parametrize("server_side", [False, True], ids=["cookie", "memory"])
async def test_litestar_middleware_list_serves_the_contract(secret: str, server_side: bool) -> None:
    """Litestar's own middleware=[...] form: the first entry runs outermost, as documented."""
    store = {"store": MemoryStore()} if server_side else {}
    # Litestar types its scopes more strictly than ASGI, so its types refuse generic middleware.
    middleware: list[Any] = [
        DefineMiddleware(SessionMiddleware, secret_key_base=secret, **store),  # type: ignore[arg-type]
        CSRFMiddleware,
        SessionSync,
    ]
    app = Litestar(
        route_handlers=[
            litestar_app.csrf,
            litestar_app.counter,
            litestar_app.login,
            litestar_app.logout,
            litestar_app.me,
        ],
        dependencies={"session": Provide(provide_session)},
        middleware=middleware,
    )
    await check_contract(cast(ASGIApp, app), server_side=server_side)
