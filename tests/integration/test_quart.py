# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""A real Quart app: quart.session is asgisession's through AsgiSessionInterface."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from quart import Quart, session, websocket

from asgisession import SessionMiddleware
from asgisession._types import Message
from asgisession.integrations.quart import QuartSession, install
from examples import quart_app

from ..asgi_helpers import Recorder, client
from .contract import STORES, check_contract, wrap

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: Quart runs on asyncio (Quart-Trio is a separate package)."""
    return "asyncio"


def current() -> QuartSession:
    """quart.session, typed as the adapter's class (Quart types it as its mixin)."""
    assert isinstance(session, QuartSession)  # the proxy forwards isinstance
    return session


def ws_app() -> Quart:
    """A Quart app with one WebSocket route that reads and writes the session."""
    app = Quart(__name__)
    install(app)

    @app.websocket("/ws")
    async def ws() -> None:
        user = session.get("user", "")  # during the handshake, before accept
        session["seen_by_ws"] = True
        await websocket.accept()
        await websocket.send(user)

    return app


@pytest.mark.anyio
@pytest.mark.parametrize("store", STORES)
async def test_contract(secret: str, store: str) -> None:
    await check_contract(wrap(quart_app.app, secret, store), server_side=store != "cookie")


@pytest.mark.anyio
async def test_example_create_app_serves_the_contract(secret: str) -> None:
    await check_contract(quart_app.create_app(secret), server_side=False)


@pytest.mark.anyio
async def test_session_interface_reports_changes_and_newness(secret: str) -> None:
    """modified, new and permanent answer from asgisession's session."""
    app = Quart(__name__)
    install(app)
    seen: dict[str, Any] = {}

    @app.get("/flags")
    async def flags() -> dict[str, bool]:
        s = current()
        seen["before"] = (s.new, s.modified, s.permanent)
        s["x"] = 1
        s.permanent = False
        seen["after"] = (s.modified, s.permanent, "x" in s, len(s))
        return {}

    async with client(SessionMiddleware(app, secret_key_base=secret)) as c:
        response = await c.get("/flags")
    assert "session" in response.cookies
    assert (True, False, True) == seen["before"]
    assert (True, True, True, 1) == seen["after"]


@pytest.mark.anyio
async def test_websocket_reads_the_session_and_writes_on_accept(secret: str) -> None:
    """A Quart WebSocket handler sees the login's session; its write rides on the accept."""
    async with client(quart_app.create_app(secret)) as c:
        token = (await c.get("/csrf")).json()["token"]
        await c.post("/login", json={"user": "alice"}, headers={"x-csrf-token": token})
        cookie = c.cookies["session"]

    recorder = Recorder([{"type": "websocket.connect"}])
    done = anyio.Event()

    async def receive() -> Message:
        if recorder.incoming:
            return await recorder.receive()
        await done.wait()  # the client hangs up once it has the handler's message
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        await recorder.send(message)
        if message["type"] in ("websocket.send", "websocket.close"):
            done.set()

    scope = {
        "type": "websocket", "path": "/ws", "raw_path": b"/ws", "root_path": "",
        "scheme": "ws", "query_string": b"", "headers": [
            (b"host", b"testserver"), (b"cookie", f"session={cookie}".encode()),
        ], "subprotocols": [], "asgi": {"version": "3.0"}, "http_version": "1.1",
        "client": ("127.0.0.1", 1), "server": ("testserver", 80), "extensions": {},
    }  # fmt: skip
    with anyio.fail_after(10):
        await SessionMiddleware(ws_app(), secret_key_base=secret)(scope, receive, send)
    types = [m["type"] for m in recorder.sent]
    assert "websocket.accept" == types[0]
    assert "alice" == recorder.sent[1].get("text")
    assert recorder.headers(b"set-cookie")
