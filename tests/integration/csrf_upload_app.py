"""A raw ASGI app behind CSRFMiddleware for the served upload tests (test_csrf_uploads.py).

``GET /token`` starts a session and answers its masked token; ``POST /upload`` reads the
body as a stream and answers its length and SHA-256, so the test can tell the app got every
byte without the app holding them.
"""

from __future__ import annotations

import hashlib
import json
import os

from asgisession import CSRFMiddleware, SessionMiddleware, csrf_token
from asgisession._types import ASGIApp, Receive, Scope, Send

#: Bytes CSRFMiddleware reads looking for the token: enough for a 100 MB file sent before it.
MAX_BODY = 128 * 1024 * 1024


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/token":
        body = json.dumps({"token": csrf_token(scope)}).encode()
    else:
        digest = hashlib.sha256()
        length = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            digest.update(chunk)
            length += len(chunk)
            if not message.get("more_body", False):
                break
        body = json.dumps({"length": length, "sha256": digest.hexdigest()}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app() -> ASGIApp:
    return SessionMiddleware(
        CSRFMiddleware(app, max_body_size=MAX_BODY),
        secret_key_base=os.environ["SECRET_KEY_BASE"],
    )
