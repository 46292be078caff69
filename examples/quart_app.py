"""asgisession in Quart: ``quart.session`` is asgisession's session.

    SECRET_KEY_BASE=... python -m uvicorn --factory examples.quart_app:create_app

Routes as in examples/raw_asgi_app.py.
"""

from __future__ import annotations

from typing import Any

from quart import Quart, request, session

from asgisession import CSRFMiddleware, SessionMiddleware, csrf_token, secret_key_base_from_env
from asgisession.integrations.quart import QuartSession, install

app = Quart(__name__)
install(app)  # app.session_interface = AsgiSessionInterface()


@app.get("/csrf")
async def csrf() -> dict[str, str]:
    return {"token": csrf_token(request.scope)}


@app.post("/counter")
async def counter() -> dict[str, int]:
    session["count"] = session.get("count", 0) + 1
    return {"count": session["count"]}


@app.post("/login")
async def login() -> dict[str, Any]:
    user = (await request.get_json())["user"]
    assert isinstance(session, QuartSession)  # for the type checker: Quart types its mixin
    session.regenerate()  # a new identity at login
    session["user"] = user
    return {k: v for k, v in session.items() if not k.startswith("_")}


@app.post("/logout")
async def logout() -> dict[str, Any]:
    assert isinstance(session, QuartSession)
    session.reset()
    return {}


@app.get("/me")
async def me() -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.startswith("_")}


def create_app(secret_key_base: str | None = None) -> SessionMiddleware:
    secret = secret_key_base or secret_key_base_from_env()
    return SessionMiddleware(CSRFMiddleware(app), secret_key_base=secret)
