"""What the ASGI-level tests share: a hand-moved clock, a scope, a recording server, a client."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from asgisession._types import ASGIApp, Message, Receive, Scope, Send


class Clock:
    """A clock the test moves by hand (the middleware's ``clock=``)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def http_scope(
    *cookie_headers: str | bytes,
    path: str = "/",
    scheme: str = "http",
    scope_type: str = "http",
) -> Scope:
    """A hand-made ``http`` (or ``websocket``) scope with one ``Cookie`` header per argument."""
    headers = [(b"host", b"testserver")] + [
        (b"cookie", c.encode("latin-1") if isinstance(c, str) else c) for c in cookie_headers
    ]
    return {
        "type": scope_type,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }


class Recorder:
    """A hand-rolled ASGI server side: feeds ``receive`` and records what is sent."""

    def __init__(self, incoming: Sequence[Message] = ()) -> None:
        self.incoming = list(incoming) or [{"type": "http.request", "body": b""}]
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.incoming:
            return self.incoming.pop(0)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def headers(self, name: bytes, index: int = 0) -> list[bytes]:
        """The values of header ``name`` in sent message ``index``."""
        pairs: list[tuple[bytes, bytes]] = self.sent[index].get("headers", [])
        return [value for key, value in pairs if key.lower() == name]

    def body_json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


def client(app: ASGIApp, base_url: str = "http://testserver") -> httpx.AsyncClient:
    """An httpx client that talks to ``app`` in-process (no lifespan), with a cookie jar."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


def ws_app(write: bool) -> ASGIApp:
    """A WebSocket app that reads ``session["user"]`` in the handshake (and writes if asked)."""

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        assert "websocket.connect" == (await receive())["type"]
        session = scope["session"]
        user = session.get("user")
        if write:
            session["seen"] = True
        await send({"type": "websocket.accept", "headers": [(b"x-app", b"1")]})
        await send({"type": "websocket.send", "text": str(user)})
        await send({"type": "websocket.close", "code": 1000})

    return inner
