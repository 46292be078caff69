"""The Python side of the Rails interop tests: the routes of ``server.rb``, in ASGI.

``GET /login?uid=N`` logs in and flashes, answering a masked CSRF token; ``GET /whoami``
shows the session and the flash; ``POST /update`` is CSRF-protected; ``GET /jar`` sets
Rails-format signed and encrypted cookies, ``GET /jar/read`` reads them back.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from asgisession import CSRFMiddleware, SessionMiddleware, cookies, csrf_token, flash
from asgisession._types import ASGIApp, Receive, Scope, Send
from asgisession.crypto import CookieFormat

COOKIE_NAME = "_app_session"


async def routes(scope: Scope, receive: Receive, send: Send) -> None:
    """The app itself; SessionMiddleware and CSRFMiddleware wrap it in :func:`peer`."""
    path = scope["path"]
    params = dict(parse_qsl(scope.get("query_string", b"").decode()))
    session = scope["session"]
    body: Any
    if path == "/login":
        session["user_id"] = int(params["uid"])
        flash(scope)["notice"] = f"Signed in as {params['uid']}"
        body = {"authenticity_token": csrf_token(scope)}
    elif path == "/whoami":
        body = {
            "user_id": session.get("user_id"),
            "session": dict(session),
            "flash": dict(flash(scope)),
            "rejection": None if session.rejection is None else session.rejection.value,
        }
    elif path == "/update":
        body = {"ok": True, "user_id": session.get("user_id")}
    elif path == "/jar":
        jar = cookies(scope)
        jar.signed.set("remember_me", {"user_id": 7})
        jar.encrypted.set("discount", 45)
        body = {"ok": True}
    elif path == "/jar/read":
        jar = cookies(scope)
        body = {
            "remember_me": jar.signed.get("remember_me"),
            "discount": jar.encrypted.get("discount"),
        }
    else:
        body = {"error": "not found"}
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def peer(secret_key_base: str, cookie_format: CookieFormat | str, **options: Any) -> ASGIApp:
    """The Python service sharing the session cookie ``_app_session`` with Rails."""
    return SessionMiddleware(
        CSRFMiddleware(routes),
        secret_key_base=secret_key_base,
        cookie_name=COOKIE_NAME,
        cookie_format=cookie_format,  # type: ignore[arg-type]
        **options,
    )
