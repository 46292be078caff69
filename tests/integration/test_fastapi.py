# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""A real FastAPI app using request.session, with app.add_middleware(SessionMiddleware)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, WebSocket
from pydantic import BaseModel

from asgisession import CSRFMiddleware, Session, SessionMiddleware
from asgisession.errors import ConfigurationError
from asgisession.integrations.fastapi import CSRFToken
from asgisession.integrations.fastapi import SessionDep as LoadedSession
from asgisession.stores.memory import MemoryStore
from examples import fastapi_app

from ..asgi_helpers import Recorder, client
from .contract import STORES, check_contract, wrap

pytestmark = pytest.mark.integration


class Login(BaseModel):
    user: str


def get_session(request: Request) -> Session:
    session: Session = request.scope["session"]
    return session


SessionDep = Annotated[Session, Depends(get_session)]


def make_app(secret: str) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key_base=secret)

    @app.post("/counter")
    async def counter(request: Request) -> dict[str, int]:
        count: int = request.session.get("count", 0) + 1
        request.session["count"] = count
        return {"count": count}

    @app.post("/login")
    async def login(body: Login, session: SessionDep) -> dict[str, Any]:
        session.regenerate()
        session["user"] = body.user
        return dict(session)

    @app.post("/logout", status_code=204)
    async def logout(session: SessionDep) -> None:
        session.reset()

    @app.get("/me")
    async def me(session: SessionDep) -> dict[str, Any]:
        return dict(session)

    return app


@pytest.mark.anyio
async def test_login_counter_logout_flow(secret: str) -> None:
    """Counting, logging in (data kept across regenerate) and logging out, across requests."""
    transport = httpx.ASGITransport(app=make_app(secret))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        assert {} == (await c.get("/me")).json()
        assert {"count": 1} == (await c.post("/counter")).json()
        assert {"count": 2} == (await c.post("/counter")).json()

        response = await c.post("/login", json={"user": "alice"})
        assert {"count": 2, "user": "alice"} == response.json()
        assert 1 == len(response.headers.get_list("set-cookie"))
        assert {"count": 3} == (await c.post("/counter")).json()

        response = await c.get("/me")
        assert {"count": 3, "user": "alice"} == response.json()
        assert [] == response.headers.get_list("set-cookie")

        response = await c.post("/logout")
        assert 204 == response.status_code
        assert "session" not in c.cookies
        assert {} == (await c.get("/me")).json()


@pytest.mark.anyio
async def test_validation_error_leaves_session_alone(secret: str) -> None:
    """A 422 from FastAPI's validation never touches the session: no Set-Cookie."""
    transport = httpx.ASGITransport(app=make_app(secret))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await c.post("/counter")
        response = await c.post("/login", json={"name": "alice"})
    assert 422 == response.status_code
    assert [] == response.headers.get_list("set-cookie")


@pytest.mark.anyio
@pytest.mark.parametrize("store", STORES)
async def test_contract(secret: str, store: str) -> None:
    await check_contract(wrap(fastapi_app.app, secret, store), server_side=store != "cookie")


@pytest.mark.anyio
async def test_session_dependency_loads_a_deferred_session(secret: str) -> None:
    """With defer_load, get_session awaits the store, so the handler can read synchronously."""
    store = MemoryStore()
    app = SessionMiddleware(
        fastapi_app.app, secret_key_base=secret, store=store, defer_load=["/me", "/counter"]
    )
    async with client(app) as c:
        assert {"count": 1} == (await c.post("/counter")).json()
        assert {"count": 2} == (await c.post("/counter")).json()
        assert {"count": 2} == (await c.get("/me")).json()


@pytest.mark.anyio
async def test_session_dependency_without_middleware_names_the_fix() -> None:
    """Forgetting SessionMiddleware is a ConfigurationError that says what to wrap."""
    async with client(fastapi_app.app) as c:
        with pytest.raises(ConfigurationError, match="SessionMiddleware"):
            await c.get("/me")


@pytest.mark.anyio
async def test_example_create_app_serves_the_contract(secret: str) -> None:
    await check_contract(fastapi_app.create_app(secret), server_side=False)


@pytest.mark.anyio
async def test_dependencies_work_in_a_websocket_route(secret: str) -> None:
    """SessionDep and CSRFToken in a WebSocket route: read at the handshake, saved on accept."""
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, session: LoadedSession, token: CSRFToken) -> None:
        session["ws"] = True
        await websocket.accept()
        await websocket.send_json({"user": session.get("user"), "token": len(token)})
        await websocket.close()

    wrapped = SessionMiddleware(app, secret_key_base=secret)
    recorder = Recorder([{"type": "websocket.connect"}])
    scope = {
        "type": "websocket", "path": "/ws", "raw_path": b"/ws", "root_path": "",
        "scheme": "ws", "query_string": b"", "headers": [(b"host", b"testserver")],
        "subprotocols": [], "asgi": {"version": "3.0"},
    }  # fmt: skip
    await wrapped(scope, recorder.receive, recorder.send)
    assert ["websocket.accept", "websocket.send", "websocket.close"] == [
        m["type"] for m in recorder.sent
    ]
    assert {"user": None, "token": 86} == json.loads(recorder.sent[1]["text"])
    assert 1 == len(recorder.headers(b"set-cookie"))


def ordered_app(secret: str, *, session_added_last: bool) -> FastAPI:
    """Both middlewares through add_middleware; Starlette runs the one added last outermost."""
    app = FastAPI()

    @app.get("/csrf")
    async def csrf(token: CSRFToken) -> dict[str, str]:
        return {"token": token}

    @app.post("/form")
    async def form(session: LoadedSession) -> dict[str, int]:
        session["posts"] = session.get("posts", 0) + 1
        return {"posts": session["posts"]}

    if session_added_last:
        app.add_middleware(CSRFMiddleware)
        app.add_middleware(SessionMiddleware, secret_key_base=secret)
    else:
        app.add_middleware(SessionMiddleware, secret_key_base=secret)
        app.add_middleware(CSRFMiddleware)
    return app


@pytest.mark.anyio
async def test_add_middleware_csrf_first_then_session(secret: str) -> None:
    """The documented order: CSRFMiddleware added first, SessionMiddleware after (outermost)."""
    async with client(ordered_app(secret, session_added_last=True)) as c:
        token = (await c.get("/csrf")).json()["token"]
        assert 403 == (await c.post("/form", data={"x": "1"})).status_code
        response = await c.post("/form", data={"authenticity_token": token})
        assert {"posts": 1} == response.json()


@pytest.mark.anyio
async def test_add_middleware_in_the_wrong_order_says_which_order(secret: str) -> None:
    """CSRFMiddleware outside SessionMiddleware: the error names the add_middleware order."""
    async with client(ordered_app(secret, session_added_last=False)) as c:
        with pytest.raises(ConfigurationError) as caught:
            await c.get("/csrf")
    message = str(caught.value)
    assert "app.add_middleware(CSRFMiddleware) first" in message
    assert "then app.add_middleware(SessionMiddleware" in message
    assert "SessionMiddleware(CSRFMiddleware(app)" in message
