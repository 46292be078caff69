"""The app the reliability tests serve: a counter per session, stamped with its owner's marker.

Routes (raw ASGI, JSON bodies):

* ``/health`` and ``/static`` never touch the session: they must be served whatever the
  store does (the fault tests defer the session load of ``/health`` only).
* ``/step?marker=M`` is a read-modify-write: it reports the session as it found it
  (``seen``: its marker and count), keeps the first marker it was given, and adds one to
  the count. A client that always sends its own marker therefore sees another client's
  session as ``seen.marker`` not being its own, and a lost or repeated write as ``count``
  skipping or repeating.
* ``/read`` returns the whole session.

:func:`csrf_app_from_env` serves :func:`body_length_app` behind CSRFMiddleware, for the
slow-client tests.

:func:`app_from_env` builds the app for ``uvicorn --factory`` in a child process: the store
is named by ``$ASGISESSION_TEST_STORE`` (``cookie``, ``sqlite:<path>``, ``redis:<port>``,
``memcached:<port>``) and the secret by ``$SECRET_KEY_BASE``; the store is closed at
lifespan shutdown.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qsl

from asgisession import CSRFMiddleware, Session, SessionMiddleware
from asgisession._types import ASGIApp, Message, Receive, Scope, Send
from asgisession.stores import MemcachedStore, RedisStore, SQLiteStore, Store

LOOPBACK = "127.0.0.1"
STORE_ENV = "ASGISESSION_TEST_STORE"
#: CSRFMiddleware's keywords, as a JSON object, for :func:`csrf_app_from_env`.
CSRF_ENV = "ASGISESSION_TEST_CSRF"


async def respond(send: Send, status: int, body: Any) -> None:
    """Send ``body`` as a JSON response."""
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def counter_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The routes of the module docstring; lifespan events are acknowledged."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path in ("/health", "/static"):
        await respond(send, 200, {"ok": True})
        return
    session: Session = scope["session"]
    if path == "/read":
        await respond(send, 200, dict(session))
        return
    if path != "/step":
        await respond(send, 404, {"error": "no such route"})
        return
    params = dict(parse_qsl(scope.get("query_string", b"").decode()))
    seen = {"marker": session.get("marker"), "count": session.get("count", 0)}
    session.setdefault("marker", params.get("marker"))
    session["count"] = seen["count"] + 1
    await respond(send, 200, {"seen": seen, "marker": session["marker"], "count": session["count"]})


def store_from_spec(spec: str) -> Store | None:
    """The store named by ``spec`` (see the module docstring); ``None`` for the cookie store."""
    kind, _, arg = spec.partition(":")
    if kind == "cookie":
        return None
    if kind == "sqlite":
        return SQLiteStore(arg)
    if kind == "redis":
        return RedisStore.from_url(f"redis://{LOOPBACK}:{arg}/0")
    if kind == "memcached":
        return MemcachedStore(LOOPBACK, int(arg))
    raise ValueError(
        f"{STORE_ENV}={spec!r}: use cookie, sqlite:<path>, redis:<port> or memcached:<port>"
    )


def closing(app: ASGIApp, store: Store | None) -> ASGIApp:
    """``app``, with ``store`` closed at lifespan shutdown, before the shutdown completes."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete" and store is not None:
                await store.aclose()
            await send(message)

        await app(scope, receive, send_closing if scope["type"] == "lifespan" else send)

    return wrapped


def app_from_env() -> ASGIApp:
    """The counter app behind SessionMiddleware with the store ``$ASGISESSION_TEST_STORE`` names."""
    store = store_from_spec(os.environ.get(STORE_ENV, "cookie"))
    middleware = SessionMiddleware(
        counter_app, secret_key_base=os.environ["SECRET_KEY_BASE"], store=store
    )
    return closing(middleware, store)


async def body_length_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole request body and answers its length; lifespan events are acknowledged.

    ``/unread`` answers at once without reading the body: what the server alone costs.
    """
    if scope["type"] == "lifespan":
        await counter_app(scope, receive, send)
        return
    if scope["path"] == "/unread":
        await respond(send, 200, {"bytes": None})
        return
    length = 0
    while True:
        message = await receive()
        length += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await respond(send, 200, {"bytes": length})


def csrf_app_from_env() -> ASGIApp:
    """:func:`body_length_app` behind CSRFMiddleware (keywords from ``$ASGISESSION_TEST_CSRF``)."""
    options = json.loads(os.environ.get(CSRF_ENV, "{}"))
    return SessionMiddleware(
        CSRFMiddleware(body_length_app, **options), secret_key_base=os.environ["SECRET_KEY_BASE"]
    )
