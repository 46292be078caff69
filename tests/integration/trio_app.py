"""A small Starlette app for tests/integration/test_trio.py, served by hypercorn's trio worker.

    SECRET_KEY_BASE=... TRIO_APP_STORE=memory \
        python -m hypercorn --worker-class trio "tests.integration.trio_app:create_app()"

Routes: GET /form (the CSRF token, the flash, and whether Trio runs the request), POST /login
(a form with ``user`` and ``authenticity_token``: logs in and sets a flash), GET /me. With
``TRIO_APP_STORE=memory`` the session lives in a MemoryStore, otherwise in the cookie.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

import trio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from asgisession import (
    CSRFMiddleware,
    Session,
    SessionMiddleware,
    csrf_token,
    flash,
    secret_key_base_from_env,
)
from asgisession.stores.memory import MemoryStore


def state(request: Request) -> dict[str, Any]:
    """What a test checks: the user, this request's flash, and the event loop serving it."""
    return {
        "user": request.session.get("user"),
        "flash": dict(flash(request.scope)),
        "trio": trio.lowlevel.in_trio_run(),
    }


async def form(request: Request) -> JSONResponse:
    return JSONResponse({**state(request), "token": csrf_token(request.scope)})


async def login(request: Request) -> JSONResponse:
    # The body was read (and replayed) by CSRFMiddleware first; read it again here.
    fields = parse_qs((await request.body()).decode())
    session: Session = request.scope["session"]
    session.regenerate()
    session["user"] = fields["user"][0]
    flash(request.scope)["notice"] = f"welcome, {session['user']}"
    return JSONResponse({"user": session["user"]})


async def me(request: Request) -> JSONResponse:
    return JSONResponse(state(request))


def create_app() -> Starlette:
    store = MemoryStore() if os.environ.get("TRIO_APP_STORE") == "memory" else None
    middleware = [
        Middleware(SessionMiddleware, secret_key_base=secret_key_base_from_env(), store=store),
        Middleware(CSRFMiddleware),
    ]
    routes = [
        Route("/form", form),
        Route("/login", login, methods=["POST"]),
        Route("/me", me),
    ]
    return Starlette(routes=routes, middleware=middleware)
