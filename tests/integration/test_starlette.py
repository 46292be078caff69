# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""A real Starlette app using request.session through SessionMiddleware."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from types import ModuleType

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from asgisession import Session, SessionMiddleware
from asgisession._types import Message, Scope
from examples import starlette_app

from .contract import STORES, check_contract, wrap

pytestmark = pytest.mark.integration


def make_app(secret: str) -> Starlette:
    async def counter(request: Request) -> JSONResponse:
        request.session["count"] = request.session.get("count", 0) + 1
        return JSONResponse({"count": request.session["count"]})

    async def login(request: Request) -> JSONResponse:
        session: Session = request.scope["session"]
        session.regenerate()
        session["user"] = (await request.json())["user"]
        return JSONResponse(dict(session))

    async def logout(request: Request) -> Response:
        session: Session = request.scope["session"]
        session.reset()
        return Response(status_code=204)

    async def me(request: Request) -> JSONResponse:
        return JSONResponse(dict(request.session))

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(dict(websocket.session))
        await websocket.close()

    routes = [
        Route("/counter", counter, methods=["POST"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/me", me),
        WebSocketRoute("/ws", ws),
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(SessionMiddleware, secret_key_base=secret)]
    )


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.mark.anyio
async def test_login_counter_logout_flow(secret: str) -> None:
    """Counting, logging in (data kept across regenerate) and logging out, across requests."""
    async with client(make_app(secret)) as c:
        assert {} == (await c.get("/me")).json()
        for expected in (1, 2, 3):
            assert {"count": expected} == (await c.post("/counter")).json()

        response = await c.post("/login", json={"user": "alice"})
        assert {"count": 3, "user": "alice"} == response.json()
        assert {"count": 4} == (await c.post("/counter")).json()
        assert {"count": 4, "user": "alice"} == (await c.get("/me")).json()

        response = await c.post("/logout")
        assert 204 == response.status_code
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert "session" not in c.cookies
        assert {} == (await c.get("/me")).json()


@pytest.mark.anyio
async def test_reading_does_not_rewrite_the_cookie(secret: str) -> None:
    """A GET that only reads request.session sends no Set-Cookie, only Vary: Cookie."""
    async with client(make_app(secret)) as c:
        await c.post("/counter")
        response = await c.get("/me")
    assert [] == response.headers.get_list("set-cookie")
    assert "Cookie" == response.headers["vary"]


@pytest.mark.anyio
async def test_websocket_sees_the_session(secret: str) -> None:
    """Starlette's websocket.session is the session the handshake's cookie carries."""
    app = make_app(secret)
    async with client(app) as c:
        await c.post("/login", json={"user": "alice"})
        cookie = f"session={c.cookies['session']}".encode()

    scope: Scope = {
        "type": "websocket", "path": "/ws", "raw_path": b"/ws", "root_path": "",
        "scheme": "ws", "query_string": b"", "headers": [(b"cookie", cookie)],
        "subprotocols": [], "asgi": {"version": "3.0"},
    }  # fmt: skip
    incoming: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert ["websocket.accept", "websocket.send", "websocket.close"] == [m["type"] for m in sent]
    assert {"user": "alice"} == json.loads(sent[1]["text"])
    assert [] == [k for k, _ in sent[0].get("headers", []) if k == b"set-cookie"]


@pytest.fixture
def cookie_app(secret: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """examples.cookie_app, imported afresh with SECRET_KEY_BASE set."""
    monkeypatch.setenv("SECRET_KEY_BASE", secret)
    sys.modules.pop("examples.cookie_app", None)
    yield importlib.import_module("examples.cookie_app")
    sys.modules.pop("examples.cookie_app", None)


@pytest.mark.anyio
async def test_example_app_in_process(cookie_app: ModuleType) -> None:
    """The example counts visits, escapes the username, and logs in and out."""
    transport = httpx.ASGITransport(app=cookie_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        page = (await c.get("/")).text
        assert "Not logged in." in page
        assert "Visits in this session: 1" in page
        assert "Cookie as received: 0 of 4096 bytes" in page

        response = await c.post("/login", data={"username": "<b>x</b>"}, follow_redirects=True)
        assert "Logged in as <b>&lt;b&gt;x&lt;/b&gt;</b>." in response.text
        assert "Visits in this session: 2" in response.text
        size = len("session=") - 1 + len(c.cookies["session"])
        assert f"Cookie as received: {size} of 4096 bytes" in (await c.get("/")).text
        assert {"visits": 3, "user": "<b>x</b>"} == (await c.get("/api/session")).json()

        assert 400 == (await c.post("/login", data={"username": " "})).status_code
        await c.post("/logout")
        assert {} == (await c.get("/api/session")).json()


@pytest.mark.anyio
@pytest.mark.parametrize("store", STORES)
async def test_contract(secret: str, store: str) -> None:
    """examples/starlette_app.py's app, wrapped by the contract's middleware."""
    await check_contract(wrap(starlette_app.app, secret, store), server_side=store != "cookie")


@pytest.mark.anyio
async def test_example_middleware_list_serves_the_contract(secret: str) -> None:
    """The example's create_app (Starlette's middleware list) puts the session outside CSRF."""
    await check_contract(starlette_app.create_app(secret), server_side=False)
