"""asgisession in FastAPI, with the session and a CSRF token as dependencies.

    SECRET_KEY_BASE=... python -m uvicorn --factory examples.fastapi_app:create_app

Routes as in examples/raw_asgi_app.py.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from asgisession import CSRFMiddleware, SessionMiddleware, secret_key_base_from_env
from asgisession.integrations.fastapi import CSRFToken, SessionDep


class Login(BaseModel):
    user: str


app = FastAPI()


@app.get("/csrf")
async def csrf(token: CSRFToken) -> dict[str, str]:
    return {"token": token}


@app.post("/counter")
async def counter(session: SessionDep) -> dict[str, int]:
    count: int = session.get("count", 0) + 1
    session["count"] = count
    return {"count": count}


@app.post("/login")
async def login(body: Login, session: SessionDep) -> dict[str, Any]:
    session.regenerate()  # a new identity at login
    session["user"] = body.user
    return {k: v for k, v in session.items() if not k.startswith("_")}


@app.post("/logout")
async def logout(session: SessionDep) -> dict[str, Any]:
    session.reset()
    return {}


@app.get("/me")
def me(session: SessionDep) -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.startswith("_")}


def create_app(secret_key_base: str | None = None) -> SessionMiddleware:
    secret = secret_key_base or secret_key_base_from_env()
    return SessionMiddleware(CSRFMiddleware(app), secret_key_base=secret)
