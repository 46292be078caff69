"""asgisession in a raw ASGI app: the session is ``scope["session"]``.

    SECRET_KEY_BASE=... python -m uvicorn --factory examples.raw_asgi_app:create_app

The routes (the same in every framework example): GET /csrf, POST /counter, POST /login
(JSON ``{"user": ...}``), POST /logout, GET /me. POSTs need the token from /csrf in an
``X-CSRF-Token`` header. WebSocket /ws greets a logged-in user.
"""

from __future__ import annotations

import json
from typing import Any

from asgisession import (
    CSRFMiddleware,
    Session,
    SessionMiddleware,
    csrf_token,
    secret_key_base_from_env,
)
from asgisession._types import Receive, Scope, Send


async def send_json(send: Send, data: Any, status: int = 200) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(data).encode()})


async def read_json(receive: Receive) -> Any:
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return json.loads(body)


def public(session: Session) -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.startswith("_")}


async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """Greets a logged-in user; the session is read during the handshake, before accept."""
    session: Session = scope["session"]
    await receive()  # websocket.connect
    if "user" not in session:
        await send({"type": "websocket.close", "code": 1008})  # refused: the server sends 403
        return
    session["ws_connects"] = session.get("ws_connects", 0) + 1  # saved with the accept
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(public(session))})
    await send({"type": "websocket.close", "code": 1000})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket" and scope["path"] == "/ws":
        await websocket(scope, receive, send)
        return
    if scope["type"] != "http":
        return
    session: Session = scope["session"]
    route = (scope["method"], scope["path"])
    if route == ("GET", "/csrf"):
        await send_json(send, {"token": csrf_token(scope)})
    elif route == ("POST", "/counter"):
        session["count"] = session.get("count", 0) + 1
        await send_json(send, {"count": session["count"]})
    elif route == ("POST", "/login"):
        user = (await read_json(receive))["user"]
        session.regenerate()  # a new identity at login
        session["user"] = user
        await send_json(send, public(session))
    elif route == ("POST", "/logout"):
        session.reset()
        await send_json(send, {})
    elif route == ("GET", "/me"):
        await send_json(send, public(session))
    else:
        await send_json(send, {"error": "not found"}, status=404)


def create_app(secret_key_base: str | None = None) -> SessionMiddleware:
    secret = secret_key_base or secret_key_base_from_env()
    return SessionMiddleware(CSRFMiddleware(app), secret_key_base=secret)
