"""A web app whose sessions other processes share: served by the tests, by uvicorn.

``create_app()`` reads ``SECRET_KEY_BASE`` and ``SESSION_STORE_URL`` (no URL: the cookie
store). Routes (GET, JSON; this is a test fixture, not an example of a safe logout):

- ``/login?user=ID``: regenerate and log in; ``/me``: the session's data;
- ``/bump``: ``session["n"] += 1``;
- ``/logout-everywhere``: ``revoke_user`` for the logged-in user, then reset.
"""

from __future__ import annotations

import json
import os
from typing import Any

from asgisession import Session, SessionMiddleware, revoke_user, stores
from asgisession._types import Receive, Scope, Send


def create_app() -> Any:
    url = os.environ.get("SESSION_STORE_URL")
    store = stores.from_url(url) if url else None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            if store is not None:
                await store.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        session: Session = scope["session"]
        await session.load()
        path = scope["path"]
        if path == "/login":
            session.regenerate()
            session["user_id"] = scope["query_string"].decode().removeprefix("user=")
        elif path == "/bump":
            session["n"] = session.get("n", 0) + 1
        elif path == "/logout-everywhere":
            user = session.get("user_id")
            if user is not None and store is not None:
                await revoke_user(store, user)
            session.reset()
        body = json.dumps(dict(session)).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return SessionMiddleware(
        app,
        secret_key_base=os.environ["SECRET_KEY_BASE"],
        store=store,
        user_key="user_id" if store is not None else None,
        secure=False,
    )
