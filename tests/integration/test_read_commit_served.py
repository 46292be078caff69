# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""A request that only reads its session, in a real FastAPI app served by uvicorn.

It sends no Set-Cookie (the cookie store marks the session settled and skips the commit),
yet a cookie sealed by an older secret is re-issued under the newest on a read, and an
idle timeout is refreshed by a read once it is due.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from asgisession import SessionMiddleware

from ..servers import free_port, serve_command, serving

pytestmark = pytest.mark.integration


def create_app() -> FastAPI:
    """The app uvicorn serves (``--factory``); secrets, newest first, from the environment."""
    app = FastAPI()
    app.add_middleware(
        SessionMiddleware,
        secret_key_base=os.environ["READ_SECRETS"].split(","),
        idle_timeout=60,
        refresh_after=int(os.environ["READ_REFRESH_AFTER"]),
    )

    @app.post("/login")
    async def login(request: Request) -> dict[str, Any]:
        request.session["user"] = "alice"
        return {}

    @app.get("/who")
    async def who(request: Request) -> dict[str, Any]:
        return {"user": request.session.get("user")}

    return app


Serve = Callable[..., Any]


@pytest.fixture
def serve(tmp_path: Path) -> Callable[[list[str], int], Any]:
    """``serve(secrets, refresh_after)``: a context manager giving the served base URL."""

    @contextmanager
    def served(secrets: list[str], refresh_after: int) -> Iterator[str]:
        port = free_port()
        log = tmp_path / f"uvicorn-{port}.log"
        command = serve_command(
            "uvicorn", "tests.integration.test_read_commit_served:create_app", port
        )
        env = {
            **os.environ,
            "READ_SECRETS": ",".join(secrets),
            "READ_REFRESH_AFTER": str(refresh_after),
        }
        with serving(command, port, "/who", log, env) as base_url:
            yield base_url

    return served


def test_a_read_sends_no_cookie(serve: Serve, secret: str) -> None:
    with serve([secret], 30) as url, httpx.Client(base_url=url, timeout=5.0) as client:
        assert 1 == len(client.post("/login").headers.get_list("set-cookie"))
        response = client.get("/who")
    assert {"user": "alice"} == response.json()
    assert [] == response.headers.get_list("set-cookie")
    assert "Cookie" == response.headers["vary"]


def test_a_read_reissues_a_cookie_of_an_older_secret(
    serve: Serve, secret: str, other_secret: str
) -> None:
    with serve([other_secret], 30) as url, httpx.Client(base_url=url, timeout=5.0) as client:
        client.post("/login")
        old = client.cookies["session"]
    with serve([secret, other_secret], 30) as url, httpx.Client(base_url=url) as client:
        response = client.get("/who", headers={"cookie": f"session={old}"})
        assert {"user": "alice"} == response.json()
        (set_cookie,) = response.headers.get_list("set-cookie")
        new = set_cookie.split(";", 1)[0].removeprefix("session=")
        assert old != new
        again = client.get("/who", headers={"cookie": f"session={new}"})
        assert {"user": "alice"} == again.json()
        assert [] == again.headers.get_list("set-cookie")  # under the newest: settled


def test_a_read_refreshes_an_idle_timeout_once_due(serve: Serve, secret: str) -> None:
    with serve([secret], 1) as url, httpx.Client(base_url=url, timeout=5.0) as client:
        client.post("/login")
        time.sleep(2.1)  # the cookie's issue time is in whole seconds
        response = client.get("/who")
    assert {"user": "alice"} == response.json()
    assert 1 == len(response.headers.get_list("set-cookie"))
