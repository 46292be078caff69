"""The app on the asgisession side of a migration, and a request carrying one cookie.

``Target`` wraps an app that records what ``scope["session"]`` held (the values
themselves, so tests compare types too) and optionally writes ``add`` into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from asgisession import SessionMiddleware
from asgisession._types import Receive, Scope, Send
from asgisession.crypto import CookieFormat
from asgisession.serializer import JSON, Serializer
from asgisession.stores.base import Store


@dataclass
class Recorder:
    """An ASGI app that records each request's session data and may write to it."""

    seen: list[dict[str, Any]] = field(default_factory=list)
    add: dict[str, Any] = field(default_factory=dict)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = scope["session"]
        await session.load()
        self.seen.append(dict(session))
        session.update(self.add)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@dataclass
class Reply:
    status: int
    #: The Set-Cookie headers: cookie name to the whole header.
    set_cookies: dict[str, str]

    def value(self, name: str) -> str:
        """The value a Set-Cookie header gave ``name``."""
        return self.set_cookies[name].split(";", 1)[0].split("=", 1)[1]


def target(
    recorder: Recorder,
    secret: str,
    store: Store | None,
    cookie_format: CookieFormat | str = "encrypted",
    *,
    cookie_name: str = "session",
    serializer: Serializer = JSON,
    now: float | None = None,
) -> SessionMiddleware:
    """asgisession around ``recorder``, reading ``cookie_format``."""
    options: dict[str, Any] = {}
    if now is not None:
        options["clock"] = lambda: now
    return SessionMiddleware(
        recorder,
        secret_key_base=secret,
        store=store,
        cookie_format=cookie_format,  # type: ignore[arg-type]
        cookie_name=cookie_name,
        serializer=serializer,
        **options,
    )


async def send_cookie(app: SessionMiddleware, name: str, value: str | None) -> Reply:
    """One GET with the cookie ``name=value`` (none when ``value`` is None), as a browser."""
    headers = {"cookie": f"{name}={value}"} if value is not None else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await client.get("/", headers=headers)
    set_cookies = {}
    for header in response.headers.get_list("set-cookie"):
        set_cookies[header.split("=", 1)[0]] = header
    return Reply(response.status_code, set_cookies)
