# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""WebSockets: the session is read during the handshake; changes ride only on the accept.

Run against examples/raw_asgi_app.py and examples/starlette_app.py (WebSocket /ws), and
small raw ASGI apps for the edges.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.cookies import SimpleCookie

import anyio
import pytest

from asgisession import SessionMiddleware, csrf_token
from asgisession._types import ASGIApp, Message, Receive, Scope, Send
from examples import raw_asgi_app, starlette_app

from ..asgi_helpers import client
from .contract import tampered

pytestmark = pytest.mark.integration

EXAMPLES: dict[str, Callable[[str], ASGIApp]] = {
    "raw_asgi": raw_asgi_app.create_app,
    "starlette": starlette_app.create_app,
}


async def handshake(app: ASGIApp, cookie: str | None) -> list[Message]:
    """Connect to /ws with this session cookie; what the app sent, until it closed."""
    headers = [(b"host", b"testserver")]
    if cookie is not None:
        headers.append((b"cookie", f"session={cookie}".encode()))
    scope: Scope = {
        "type": "websocket", "path": "/ws", "raw_path": b"/ws", "root_path": "",
        "scheme": "ws", "query_string": b"", "headers": headers, "subprotocols": [],
        "asgi": {"version": "3.0"}, "http_version": "1.1", "client": ("127.0.0.1", 1),
        "server": ("testserver", 80), "extensions": {},
    }  # fmt: skip
    sent: list[Message] = []
    connected = False
    closed = anyio.Event()

    async def receive() -> Message:
        nonlocal connected
        if not connected:
            connected = True
            return {"type": "websocket.connect"}
        await closed.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "websocket.close":
            closed.set()

    with anyio.fail_after(10):
        await app(scope, receive, send)
    return sent


def set_cookies(message: Message) -> list[str]:
    return [v.decode("latin-1") for k, v in message.get("headers", []) if k == b"set-cookie"]


def session_cookie(message: Message) -> str:
    (header,) = set_cookies(message)
    parsed: SimpleCookie = SimpleCookie()
    parsed.load(header)
    return parsed["session"].value


async def logged_in_cookie(app: ASGIApp, user: str = "alice") -> str:
    async with client(app) as c:
        token = (await c.get("/csrf")).json()["token"]
        response = await c.post("/login", json={"user": user}, headers={"x-csrf-token": token})
        assert 200 == response.status_code
        return c.cookies["session"]


@pytest.mark.anyio
@pytest.mark.parametrize("example", sorted(EXAMPLES))
async def test_handshake_reads_the_session_and_accept_carries_the_write(
    secret: str, example: str
) -> None:
    app = EXAMPLES[example](secret)
    cookie = await logged_in_cookie(app)

    sent = await handshake(app, cookie)
    assert ["websocket.accept", "websocket.send", "websocket.close"] == [m["type"] for m in sent]
    assert {"user": "alice", "ws_connects": 1} == json.loads(sent[1]["text"])
    new_cookie = session_cookie(sent[0])  # the write before accept, on the accept

    async with client(app) as c:
        response = await c.get("/me", headers={"cookie": f"session={new_cookie}"})
    assert {"user": "alice", "ws_connects": 1} == response.json()


@pytest.mark.anyio
@pytest.mark.parametrize("example", sorted(EXAMPLES))
async def test_refused_handshake_sets_no_cookie(secret: str, example: str) -> None:
    """No session, or a tampered cookie (an empty session): refused, and nothing written."""
    app = EXAMPLES[example](secret)
    cookie = await logged_in_cookie(app)
    for sent_cookie in (None, tampered(cookie)):
        sent = await handshake(app, sent_cookie)
        assert ["websocket.close"] == [m["type"] for m in sent]
        assert 1008 == sent[0]["code"]
        assert [] == set_cookies(sent[0])


async def late_writer(scope: Scope, receive: Receive, send: Send) -> None:
    """Writes once before accept and once after: only the first can reach the cookie."""
    await receive()
    scope["session"]["before"] = True
    await send({"type": "websocket.accept"})
    scope["session"]["after"] = True
    await send({"type": "websocket.send", "text": csrf_token(scope)})
    await send({"type": "websocket.close", "code": 1000})


@pytest.mark.anyio
async def test_changes_after_accept_are_not_saved(secret: str) -> None:
    sent = await handshake(SessionMiddleware(late_writer, secret_key_base=secret), None)
    assert ["websocket.accept", "websocket.send", "websocket.close"] == [m["type"] for m in sent]
    cookie = session_cookie(sent[0])
    assert all(set_cookies(m) == [] for m in sent[1:])

    async with client(raw_asgi_app.create_app(secret)) as c:
        response = await c.get("/me", headers={"cookie": f"session={cookie}"})
    assert {"before": True} == response.json()


async def token_at_handshake(scope: Scope, receive: Receive, send: Send) -> None:
    """Hands out a CSRF token before accept, so its secret is saved with the accept."""
    await receive()
    token = csrf_token(scope)
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": token})
    await send({"type": "websocket.close", "code": 1000})


@pytest.mark.anyio
async def test_csrf_token_from_a_handshake_passes_an_http_post(secret: str) -> None:
    sent = await handshake(SessionMiddleware(token_at_handshake, secret_key_base=secret), None)
    cookie, token = session_cookie(sent[0]), sent[1]["text"]

    async with client(raw_asgi_app.create_app(secret)) as c:
        headers = {"cookie": f"session={cookie}"}
        assert 403 == (await c.post("/counter", headers=headers)).status_code
        response = await c.post("/counter", headers={**headers, "x-csrf-token": token})
    assert {"count": 1} == response.json()
