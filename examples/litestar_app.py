"""asgisession in Litestar: ``request.session`` is asgisession's session.

    SECRET_KEY_BASE=... python -m uvicorn --factory examples.litestar_app:create_app

Routes as in examples/raw_asgi_app.py. ``SessionSync`` makes Litestar's own
``request.set_session()`` and ``request.clear_session()`` reach the cookie.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, get, post
from litestar.di import NamedDependency, Provide

from asgisession import (
    CSRFMiddleware,
    Session,
    SessionMiddleware,
    csrf_token,
    secret_key_base_from_env,
)
from asgisession.integrations.litestar import SessionSync, provide_session

AnyRequest = Request[Any, Any, Any]


@get("/csrf")
async def csrf(request: AnyRequest) -> dict[str, str]:
    return {"token": csrf_token(request.scope)}


@post("/counter", status_code=200)
async def counter(request: AnyRequest) -> dict[str, int]:
    count: int = request.session.get("count", 0) + 1
    request.session["count"] = count
    return {"count": count}


@post("/login", status_code=200)
async def login(request: AnyRequest, session: NamedDependency[Session]) -> dict[str, Any]:
    user = (await request.json())["user"]
    session.regenerate()  # a new identity at login
    session["user"] = user
    return {k: v for k, v in session.items() if not k.startswith("_")}


@post("/logout", status_code=200)
async def logout(request: AnyRequest) -> dict[str, Any]:
    request.clear_session()  # SessionSync turns this into session.reset()
    return {}


@get("/me")
async def me(request: AnyRequest) -> dict[str, Any]:
    return {k: v for k, v in request.session.items() if not k.startswith("_")}


app = Litestar(
    route_handlers=[csrf, counter, login, logout, me],
    dependencies={"session": Provide(provide_session)},
)


def create_app(secret_key_base: str | None = None) -> SessionMiddleware:
    secret = secret_key_base or secret_key_base_from_env()
    return SessionMiddleware(CSRFMiddleware(SessionSync(app)), secret_key_base=secret)
