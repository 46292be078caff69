"""asgisession in Quart: ``quart.session`` is asgisession's session.

    SECRET_KEY_BASE=... python -m uvicorn --factory examples.quart_app:create_app
    SECRET_KEY_BASE=... quart --app examples.quart_app run

Routes as in examples/raw_asgi_app.py. The middlewares wrap ``app.asgi_app``, Quart's own
hook for ASGI middleware, so ``app.test_client()`` and ``quart run`` have sessions too.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Quart, request, session

from asgisession import CSRFMiddleware, SessionMiddleware, csrf_token, secret_key_base_from_env
from asgisession.integrations.quart import QuartSession, install

routes = Blueprint("example", __name__)


@routes.get("/csrf")
async def csrf() -> dict[str, str]:
    return {"token": csrf_token(request.scope)}


@routes.post("/counter")
async def counter() -> dict[str, int]:
    session["count"] = session.get("count", 0) + 1
    return {"count": session["count"]}


@routes.post("/login")
async def login() -> dict[str, Any]:
    user = (await request.get_json())["user"]
    assert isinstance(session, QuartSession)  # for the type checker: Quart types its mixin
    session.regenerate()  # a new identity at login
    session["user"] = user
    return {k: v for k, v in session.items() if not k.startswith("_")}


@routes.post("/logout")
async def logout() -> dict[str, Any]:
    assert isinstance(session, QuartSession)
    session.reset()
    return {}


@routes.get("/me")
async def me() -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.startswith("_")}


def bare_app() -> Quart:
    """The Quart app with asgisession's session interface, no middleware yet."""
    app = Quart(__name__)
    install(app)  # app.session_interface = AsgiSessionInterface()
    app.register_blueprint(routes)
    return app


def create_app(secret_key_base: str | None = None) -> Quart:
    """The app with its sessions and CSRF protection; ``quart run`` calls it."""
    app = bare_app()
    secret = secret_key_base or secret_key_base_from_env()
    app.asgi_app = SessionMiddleware(  # type: ignore[assignment]
        CSRFMiddleware(app.asgi_app), secret_key_base=secret
    )
    return app
