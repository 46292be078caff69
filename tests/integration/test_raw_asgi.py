# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""A raw ASGI app (no framework) reading and writing scope["session"]."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgisession import Session, csrf_token
from asgisession._types import Receive, Scope, Send

from .contract import STORES, check_contract, public, wrap

pytestmark = pytest.mark.integration


async def send_json(send: Send, data: Any, status: int = 200) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_json(receive: Receive) -> Any:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return json.loads(body)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Routes by method and path; the session is scope["session"]."""
    assert "http" == scope["type"]
    session: Session = scope["session"]
    route = (scope["method"], scope["path"])
    if route == ("GET", "/csrf"):
        await send_json(send, {"token": csrf_token(scope)})
    elif route == ("POST", "/counter"):
        session["count"] = session.get("count", 0) + 1
        await send_json(send, {"count": session["count"]})
    elif route == ("POST", "/login"):
        user = (await read_json(receive))["user"]
        session.regenerate()
        session["user"] = user
        await send_json(send, public(session))
    elif route == ("POST", "/logout"):
        session.reset()
        await send_json(send, {})
    elif route == ("GET", "/me"):
        await send_json(send, public(session))
    else:
        await send_json(send, {"error": "not found"}, status=404)


@pytest.mark.anyio
@pytest.mark.parametrize("store", STORES)
async def test_contract(secret: str, store: str) -> None:
    await check_contract(wrap(app, secret, store), server_side=store != "cookie")
