# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""examples/starlette_app.py served for real by uvicorn, hypercorn and granian.

Each server runs as a subprocess on a free loopback port (started and stopped by the
fixture); a real HTTP client checks that the session survives requests, and a real
WebSocket client that the handshake reads it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from ..servers import LOOPBACK, ServerProcess, free_port, serve_command

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FACTORY = "examples.starlette_app:create_app"


def command(server: str, port: int) -> list[str]:
    """How each server is told to serve the example's factory on 127.0.0.1:port."""
    return serve_command(server, FACTORY, port)


#: Whether the server sends the headers of ``websocket.accept`` (ASGI spec 2.1) in its
#: handshake response. Granian 2.8 drops them, so a session written during a WebSocket
#: handshake is not saved there (docs/frameworks.md says so).
SENDS_ACCEPT_HEADERS = {"uvicorn": True, "hypercorn": True, "granian": False}


@pytest.fixture(params=sorted(SENDS_ACCEPT_HEADERS))
def server(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def served(server: str, secret: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """host:port of the example under one real server; stopped afterwards."""
    monkeypatch.setenv("SECRET_KEY_BASE", secret)
    port = free_port()
    process = ServerProcess(command(server, port), port, cwd=ROOT).start()
    try:
        yield f"{LOOPBACK}:{port}"
    finally:
        process.stop()


def test_session_survives_requests_and_reaches_the_websocket(server: str, served: str) -> None:
    with httpx.Client(base_url=f"http://{served}", timeout=10.0) as c:
        assert {} == c.get("/me").json()
        token = c.get("/csrf").json()["token"]
        assert 403 == c.post("/counter").status_code
        for expected in (1, 2, 3):
            assert {"count": expected} == c.post("/counter", headers={"x-csrf-token": token}).json()
        assert {"count": 3} == c.get("/me").json()

        response = c.post("/login", json={"user": "alice"}, headers={"x-csrf-token": token})
        assert {"count": 3, "user": "alice"} == response.json()
        assert {"count": 3, "user": "alice"} == c.get("/me").json()
        cookie = c.cookies["session"]

    with connect(f"ws://{served}/ws", additional_headers={"Cookie": f"session={cookie}"},
                 open_timeout=10) as ws:  # fmt: skip
        assert {"count": 3, "user": "alice", "ws_connects": 1} == json.loads(ws.recv(timeout=10))
        assert ws.response is not None
        set_cookie = ws.response.headers.get_all("Set-Cookie")
    if not SENDS_ACCEPT_HEADERS[server]:
        assert [] == set_cookie, f"{server} now sends accept headers: update SENDS_ACCEPT_HEADERS"
        return
    assert 1 == len(set_cookie), "the write before accept must ride on the handshake response"
    parsed: SimpleCookie = SimpleCookie()
    parsed.load(set_cookie[0])

    with httpx.Client(base_url=f"http://{served}", timeout=10.0) as c:
        response = c.get("/me", headers={"cookie": f"session={parsed['session'].value}"})
    assert {"count": 3, "user": "alice", "ws_connects": 1} == response.json()


@pytest.mark.parametrize("example", ["raw_asgi", "fastapi", "litestar", "quart", "django"])
def test_every_example_under_uvicorn(
    example: str, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each framework's example, served for real: the session survives requests and login."""
    monkeypatch.setenv("SECRET_KEY_BASE", secret)
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", f"examples.{example}_app:create_app",
            "--host", LOOPBACK, "--port", str(port)]  # fmt: skip
    process = ServerProcess(argv, port, cwd=ROOT).start()
    try:
        with httpx.Client(base_url=f"http://{LOOPBACK}:{port}", timeout=10.0) as c:
            token = c.get("/csrf").json()["token"]
            for expected in (1, 2):
                response = c.post("/counter", headers={"x-csrf-token": token})
                assert {"count": expected} == response.json()
            response = c.post("/login", json={"user": "alice"}, headers={"x-csrf-token": token})
            assert {"count": 2, "user": "alice"} == response.json()
            assert {"count": 2, "user": "alice"} == c.get("/me").json()
    finally:
        process.stop()
