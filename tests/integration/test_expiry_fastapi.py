# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""'Remember me' in a real FastAPI app served by uvicorn: set_expiry and log_id.

Login without "remember me" gives a cookie that ends with the browser; with it, one that
lives 30 days; either way the choice holds on later requests, and the log id stays put.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from asgisession import Session, SessionMiddleware
from asgisession.stores.memory import MemoryStore

from ..servers import free_port, serve_command, serving

pytestmark = pytest.mark.integration

DAY = 24 * 3600


class Login(BaseModel):
    user: str
    remember: bool = False


def create_app() -> FastAPI:
    """The app uvicorn serves (``--factory``); the secret and store come from the environment."""
    secret = os.environ["SECRET_KEY_BASE"]
    app = FastAPI()
    store = MemoryStore() if os.environ["EXPIRY_STORE"] == "memory" else None
    app.add_middleware(SessionMiddleware, secret_key_base=secret, lifetime=30 * DAY, store=store)

    @app.post("/login")
    async def login(body: Login, request: Request) -> dict[str, Any]:
        session: Session = request.scope["session"]
        session.regenerate()
        session["user"] = body.user
        session.set_expiry(timedelta(days=30) if body.remember else 0)
        return {"log_id": session.log_id}

    @app.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        session: Session = request.scope["session"]
        session["visits"] = session.get("visits", 0) + 1
        return {
            "user": session.get("user"),
            "log_id": session.log_id,
            "browser_close": session.expires_at_browser_close,
            "age": session.expiry_age,
        }

    return app


def max_age(set_cookie: str) -> str | None:
    for part in set_cookie.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name == "Max-Age":
            return value
    return None


@pytest.fixture(params=["cookie", "memory"])
def served(request: pytest.FixtureRequest, secret: str, tmp_path: Path) -> Iterator[str]:
    """The base URL of :func:`create_app` under uvicorn; stopped afterwards."""
    port = free_port()
    log = tmp_path / "uvicorn.log"
    command = serve_command("uvicorn", "tests.integration.test_expiry_fastapi:create_app", port)
    env = {**os.environ, "SECRET_KEY_BASE": secret, "EXPIRY_STORE": request.param}
    with serving(command, port, "/me", log, env) as base_url:
        yield base_url


def test_remember_me(served: str) -> None:
    with httpx.Client(base_url=served, timeout=5.0) as client:
        response = client.post("/login", json={"user": "alice"})
        (set_cookie,) = response.headers.get_list("set-cookie")
        assert None is max_age(set_cookie)
        assert "Expires" not in set_cookie
        log_id = response.json()["log_id"]
        me = client.get("/me").json()
        assert {"user": "alice", "log_id": log_id, "browser_close": True} == {
            key: me[key] for key in ("user", "log_id", "browser_close")
        }
        assert 30 * DAY - 5 <= me["age"] <= 30 * DAY  # on the server: the lifetime

        response = client.post("/login", json={"user": "alice", "remember": True})
        (set_cookie,) = response.headers.get_list("set-cookie")
        assert max_age(set_cookie) in (str(30 * DAY), str(30 * DAY - 1))
        assert log_id != response.json()["log_id"]  # regenerate() gave a new identity
        for _ in range(2):  # later requests keep the choice without calling set_expiry
            response = client.get("/me")
            assert not response.json()["browser_close"]
            for later in response.headers.get_list("set-cookie"):  # the cookie store re-issues
                assert int(max_age(later) or 0) > 29 * DAY
