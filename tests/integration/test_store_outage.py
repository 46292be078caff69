# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""The 503 for a store outage, at its edges, in Starlette and FastAPI with a real memcached.

Only a 5xx sent after the app met the failure becomes the 503: a 500 for another reason,
a response the app chose below 500, and a 503 page of its own go out as they are. A
deferred load that fails (``defer_load`` with FastAPI's ``SessionDep``) counts as meeting it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from asgisession import SessionMiddleware, StoreUnavailable
from asgisession.integrations.fastapi import SessionDep
from asgisession.stores.memcached import MemcachedStore

from ..servers import LOOPBACK, memcached_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: the outages are of real memcached and Redis stores (asyncio-only clients)."""
    return "asyncio"


async def count(request: Request) -> JSONResponse:
    request.session["count"] = request.session.get("count", 0) + 1
    return JSONResponse({"count": request.session["count"]})


async def unrelated(request: Request) -> Response:
    raise RuntimeError("a bug that has nothing to do with the session")


async def maintenance(request: Request) -> Response:
    try:
        return JSONResponse(dict(request.session))
    except StoreUnavailable:
        return RedirectResponse("/maintenance", status_code=303)


def starlette_app() -> Starlette:
    routes = [Route("/count", count), Route("/unrelated", unrelated)]
    return Starlette(routes=[*routes, Route("/maintenance", maintenance)])


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/count")
    async def count(session: SessionDep) -> dict[str, int]:
        session["count"] = session.get("count", 0) + 1
        return {"count": session["count"]}

    return app


@pytest.fixture
async def session_then_outage(secret: str) -> tuple[str, int]:
    """A session cookie for a session kept in memcached; the server is then stopped."""
    server = memcached_server()
    try:
        store = MemcachedStore(LOOPBACK, server.port, timeout=0.5)
        app = SessionMiddleware(starlette_app(), secret_key_base=secret, store=store)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            assert {"count": 1} == (await c.get("/count")).json()
            cookie = c.cookies["session"]
        await store.aclose()
    finally:
        server.stop()
    return cookie, server.port


async def get(app: Any, cookie: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        return await c.get(path, headers={"cookie": f"session={cookie}"})


@pytest.mark.anyio
async def test_only_a_5xx_after_the_failure_becomes_503(
    secret: str, session_then_outage: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    cookie, port = session_then_outage
    store = MemcachedStore(LOOPBACK, port, timeout=0.5)
    app = SessionMiddleware(starlette_app(), secret_key_base=secret, store=store)
    try:
        response = await get(app, cookie, "/count")
        assert (503, "5") == (response.status_code, response.headers["retry-after"])
        assert "the app's 500 sent as 503" in caplog.text

        # The preload failed, but the app never used its session: its own 500 stays.
        response = await get(app, cookie, "/unrelated")
        assert 500 == response.status_code
        assert "retry-after" not in response.headers

        # The app met the failure and chose a redirect: that is what is sent.
        response = await get(app, cookie, "/maintenance")
        assert (303, "/maintenance") == (response.status_code, response.headers["location"])
        assert "set-cookie" not in response.headers
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_an_exception_handlers_own_503_page_is_kept(
    secret: str, session_then_outage: tuple[str, int]
) -> None:
    """FastAPI's exception handler for StoreUnavailable renders a page: kept, Retry-After added."""
    cookie, port = session_then_outage
    app = fastapi_app()

    @app.exception_handler(StoreUnavailable)
    async def outage(request: Request, exc: Exception) -> HTMLResponse:
        return HTMLResponse("<h1>Back in a moment</h1>", status_code=503)

    store = MemcachedStore(LOOPBACK, port, timeout=0.5)
    try:
        response = await get(
            SessionMiddleware(app, secret_key_base=secret, store=store), cookie, "/count"
        )
        assert (503, "<h1>Back in a moment</h1>") == (response.status_code, response.text)
        assert "5" == response.headers["retry-after"]
        assert "set-cookie" not in response.headers
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_a_deferred_load_that_fails_is_503_in_fastapi(
    secret: str, session_then_outage: tuple[str, int]
) -> None:
    """defer_load: SessionDep awaits the load itself; FastAPI's 500 for it becomes the 503."""
    cookie, port = session_then_outage
    store = MemcachedStore(LOOPBACK, port, timeout=0.5)
    app = SessionMiddleware(fastapi_app(), secret_key_base=secret, store=store, defer_load=["/"])
    try:
        response = await get(app, cookie, "/count")
        assert 503 == response.status_code, response.text
        assert "set-cookie" not in response.headers
    finally:
        await store.aclose()
