"""asgisession in Starlette: ``request.session`` is asgisession's session.

    SECRET_KEY_BASE=... python -m uvicorn --factory examples.starlette_app:create_app

Routes as in examples/raw_asgi_app.py, WebSocket /ws included.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from asgisession import (
    CSRFMiddleware,
    Session,
    SessionMiddleware,
    csrf_token,
    secret_key_base_from_env,
)


def public(request: Request) -> JSONResponse:
    data = {k: v for k, v in request.session.items() if not k.startswith("_")}
    return JSONResponse(data)


async def csrf(request: Request) -> JSONResponse:
    return JSONResponse({"token": csrf_token(request.scope)})


async def counter(request: Request) -> JSONResponse:
    request.session["count"] = request.session.get("count", 0) + 1
    return JSONResponse({"count": request.session["count"]})


async def login(request: Request) -> JSONResponse:
    user = (await request.json())["user"]
    session: Session = request.scope["session"]  # Starlette types request.session as a dict
    session.regenerate()  # a new identity at login
    session["user"] = user
    return public(request)


async def logout(request: Request) -> JSONResponse:
    session: Session = request.scope["session"]
    session.reset()
    return JSONResponse({})


async def me(request: Request) -> JSONResponse:
    return public(request)


async def ws(websocket: WebSocket) -> None:
    """Greets a logged-in user; the session is read during the handshake, before accept."""
    session = websocket.session
    if "user" not in session:
        await websocket.close(code=1008)  # refused: the server answers the handshake 403
        return
    session["ws_connects"] = session.get("ws_connects", 0) + 1  # saved with the accept
    await websocket.accept()
    await websocket.send_json({k: v for k, v in session.items() if not k.startswith("_")})
    await websocket.close()


routes = [
    Route("/csrf", csrf),
    Route("/counter", counter, methods=["POST"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/me", me),
    WebSocketRoute("/ws", ws),
]
app = Starlette(routes=routes)


def create_app(secret_key_base: str | None = None) -> Starlette:
    secret = secret_key_base or secret_key_base_from_env()
    # Starlette's middleware list runs outermost first: SessionMiddleware must wrap CSRF.
    middleware = [
        Middleware(SessionMiddleware, secret_key_base=secret),
        Middleware(CSRFMiddleware),
    ]
    return Starlette(routes=routes, middleware=middleware)
