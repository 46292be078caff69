# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""A real Quart app: quart.session is asgisession's through AsgiSessionInterface."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import pytest
from quart import Quart, session, websocket

from asgisession import SessionMiddleware
from asgisession._types import ASGIApp, Message
from asgisession.integrations.quart import QuartSession, install
from examples import quart_app

from ..asgi_helpers import Recorder, client
from ..servers import LOOPBACK, free_port, serving
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
    await check_contract(wrap(quart_app.bare_app(), secret, store), server_side=store != "cookie")


@pytest.mark.anyio
async def test_example_create_app_serves_the_contract(secret: str) -> None:
    app = cast(ASGIApp, quart_app.create_app(secret))  # Quart types its scopes strictly
    await check_contract(app, server_side=False)


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
    async with client(cast(ASGIApp, quart_app.create_app(secret))) as c:
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


@pytest.mark.anyio
async def test_quart_test_client_has_sessions_and_csrf(secret: str) -> None:
    """app.asgi_app wrapped, as documented: Quart's own test client logs in and posts forms."""
    test_client = quart_app.create_app(secret).test_client()
    assert 403 == (await test_client.post("/counter")).status_code
    token = (await (await test_client.get("/csrf")).get_json())["token"]
    response = await test_client.post(
        "/login", json={"user": "alice"}, headers={"X-CSRF-Token": token}
    )
    assert {"user": "alice"} == await response.get_json()
    assert {"user": "alice"} == await (await test_client.get("/me")).get_json()
    token = (await (await test_client.get("/csrf")).get_json())["token"]  # new after login
    response = await test_client.post("/counter", form={"authenticity_token": token})
    assert {"count": 1} == await response.get_json()
    assert {"count": 1, "user": "alice"} == await (await test_client.get("/me")).get_json()


def test_quart_run_serves_sessions(secret: str, tmp_path: Path) -> None:
    """``quart --app examples.quart_app run`` finds create_app and serves it with sessions."""
    port = free_port()
    log = tmp_path / "quart.log"
    command = [sys.executable, "-m", "quart", "--app", "examples.quart_app", "run"]
    command += ["--host", LOOPBACK, "--port", str(port)]
    env = {**os.environ, "SECRET_KEY_BASE": secret}
    with (
        serving(command, port, "/me", log, env) as base_url,
        httpx.Client(base_url=base_url, timeout=5.0) as c,
    ):
        token = c.get("/csrf").json()["token"]
        response = c.post("/login", json={"user": "bob"}, headers={"x-csrf-token": token})
        assert {"user": "bob"} == response.json()
        assert {"user": "bob"} == c.get("/me").json()
