"""Raw ASGI calls through the real middleware, with the session cookie set by hand.

The attacks need exact control of which cookie each request carries and of when
concurrent requests reach their session, which a client's cookie jar would hide.
"""

from __future__ import annotations

import json
from typing import Any

from asgisession._types import ASGIApp, Message

from ..asgi_helpers import Recorder, http_scope

COOKIE = "session"


async def call(
    app: ASGIApp,
    path: str,
    cookie: str | None = None,
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Recorder:
    """One request to ``path`` carrying session cookie value ``cookie`` (if any)."""
    scope = http_scope(*([f"{COOKIE}={cookie}"] if cookie else []), path=path.split("?")[0])
    scope["method"] = method
    scope["query_string"] = path.partition("?")[2].encode()
    scope["headers"] += headers or []
    recorder = Recorder([{"type": "http.request", "body": body}])
    await app(scope, recorder.receive, recorder.send)
    return recorder


def set_cookie(recorder: Recorder) -> str | None:
    """The session cookie's value this response set ("" for a deletion), or None if none."""
    for header in recorder.headers(b"set-cookie"):
        name, _, rest = header.decode("latin-1").partition("=")
        if name == COOKIE:
            return rest.split(";", 1)[0]
    return None


def status(recorder: Recorder) -> int:
    start: Message = recorder.sent[0]
    code: int = start["status"]
    return code


def body(recorder: Recorder) -> Any:
    return json.loads(b"".join(m.get("body", b"") for m in recorder.sent[1:]))
