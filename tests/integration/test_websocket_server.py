# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""examples/websocket_server.py for real, next to a served web app on one Redis store.

Both run as their own processes (uvicorn serves tests/integration/shared_store_app.py;
the example runs as a script); the test is a browser that logs in over HTTP and connects
with the cookie it got, then logs out everywhere and times how soon the open connection
is closed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ..servers import LOOPBACK, ServerProcess, free_port, stop_process, wait_for_port
from .contract import tampered

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "websocket_server.py"
CHECK_EVERY = 0.2
WEB_APP = "tests.integration.shared_store_app:create_app"
#: How soon after "log out everywhere" the connection must be closed.
CLOSE_WITHIN = 3.0


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: the websockets client and the Redis store run on asyncio."""
    return "asyncio"


@contextmanager
def running(argv: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    """Run ``argv`` until the block ends; ready once something listens on ``port``."""
    with log.open("w+b") as output:
        process = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(port, process, output, timeout=20)
            yield
        finally:
            stop_process(process)


@pytest.fixture
def servers(redis_proc: ServerProcess, secret: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The web app's base URL and the WebSocket server's URL, on one Redis namespace."""
    store_url = f"redis://{LOOPBACK}:{redis_proc.port}/0?namespace=ws{uuid.uuid4().hex}:"
    env = {"SECRET_KEY_BASE": secret, "SESSION_STORE_URL": store_url}
    web_port, ws_port = free_port(), free_port()
    web = [sys.executable, "-m", "uvicorn", "--factory", WEB_APP, "--host", LOOPBACK,
           "--port", str(web_port)]  # fmt: skip
    ws = [sys.executable, str(EXAMPLE), "--host", LOOPBACK, "--port", str(ws_port),
          "--check-every", str(CHECK_EVERY)]  # fmt: skip
    with (
        running(web, env, web_port, tmp_path / "web.log"),
        running(ws, env, ws_port, tmp_path / "ws.log"),
    ):
        yield f"http://{LOOPBACK}:{web_port}", f"ws://{LOOPBACK}:{ws_port}"


async def log_in(web: str, user: str) -> str:
    async with httpx.AsyncClient(base_url=web) as http:
        response = await http.get(f"/login?user={user}")
        assert {"user_id": user} == response.json()
        return response.cookies["session"]


async def greeting(ws: ClientConnection) -> object:
    with anyio.fail_after(5):
        return json.loads(await ws.recv())


async def refused(url: str, headers: dict[str, str]) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url, additional_headers=headers):
            pass
    response = caught.value.response
    return response.status_code, response.body.decode()


async def test_connections_follow_the_web_apps_sessions(servers: tuple[str, str]) -> None:
    web, ws_url = servers
    alice = await log_in(web, "alice")
    bob = await log_in(web, "bob")

    async with (
        connect(ws_url, additional_headers={"Cookie": f"theme=dark; session={alice}"}) as first,
        connect(ws_url, additional_headers={"Cookie": f"session={alice}"}) as second,
        connect(ws_url, additional_headers={"Cookie": f"session={bob}"}) as other,
    ):
        assert {"user": "alice"} == await greeting(first)
        assert {"user": "alice"} == await greeting(second)
        assert {"user": "bob"} == await greeting(other)

        assert (401, "no valid session: no session cookie\n") == await refused(ws_url, {})
        status, body = await refused(ws_url, {"Cookie": f"session={tampered(alice)}"})
        assert 401 == status
        assert "no valid session: bad_tag" in body

        async with httpx.AsyncClient(base_url=web) as http:
            started = time.monotonic()
            response = await http.get("/logout-everywhere", headers={"cookie": f"session={alice}"})
            assert {} == response.json()
        for connection in (first, second):
            with anyio.fail_after(CLOSE_WITHIN):
                with pytest.raises(ConnectionClosed):
                    await connection.recv()
            assert connection.close_code == 1008
            assert connection.close_reason == "session ended"
        closed_after = time.monotonic() - started
        print(f"both connections closed {closed_after:.2f} s after the logout")
        assert closed_after < CLOSE_WITHIN

        await other.send("still here")  # another user's connection stays open
        assert {"user": "bob", "echo": "still here"} == await greeting(other)

    status, body = await refused(ws_url, {"Cookie": f"session={alice}"})
    assert 401 == status
    assert "no valid session: not_found" in body
