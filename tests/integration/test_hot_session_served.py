# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""One session written by many requests at once, in a real FastAPI app served by uvicorn.

A page that fires parallel fetch calls makes its requests load one session together and
save it together. On a SQLite store (real file), sixteen such requests each set their own
key: every key is kept (the saves of one process take turns and merge), every request
answers 200, and none falls back to saving over the record (the WARNING it would log).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from asgisession import SessionMiddleware
from asgisession.stores import SQLiteStore

from ..servers import free_port, serve_command, serving

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

PARALLEL = 16


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio: the client side gathers its requests with asyncio (the server is its own)."""
    return "asyncio"


def create_app() -> FastAPI:
    """The app uvicorn serves (``--factory``); the secret and the SQLite file from the env."""
    app = FastAPI()
    app.add_middleware(
        SessionMiddleware,
        secret_key_base=os.environ["SECRET_KEY_BASE"],
        store=SQLiteStore(os.environ["HOT_SESSION_DB"]),
    )

    @app.post("/login")
    async def login(request: Request) -> dict[str, Any]:
        request.session["user"] = "alice"
        return {}

    @app.post("/own/{key}")
    async def own(key: str, request: Request) -> dict[str, Any]:
        request.session.get("user")  # loaded here, with the others in flight
        await asyncio.sleep(0.05)  # so every request has loaded before any saves
        request.session[key] = True
        return {}

    @app.get("/read")
    async def read(request: Request) -> dict[str, Any]:
        return dict(request.session)

    return app


@pytest.fixture
def served(secret: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The base URL of :func:`create_app` under uvicorn, and its log."""
    port = free_port()
    log = tmp_path / "uvicorn.log"
    command = serve_command("uvicorn", "tests.integration.test_hot_session_served:create_app", port)
    env = {
        **os.environ,
        "SECRET_KEY_BASE": secret,
        "HOT_SESSION_DB": str(tmp_path / "sessions.db"),
    }
    with serving(command, port, "/read", log, env) as base_url:
        yield base_url, log


async def test_parallel_writes_of_one_session_keep_every_key(
    served: tuple[str, Path],
) -> None:
    base_url, log = served
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        login = await client.post("/login")
        cookie = login.headers["set-cookie"].split(";", 1)[0]
        headers = {"cookie": cookie}
        answers = await asyncio.gather(
            *(client.post(f"/own/k{n:02d}", headers=headers) for n in range(PARALLEL))
        )
        assert [200] * PARALLEL == [answer.status_code for answer in answers]
        stored = (await client.get("/read", headers=headers)).json()
    assert {"user": "alice", **{f"k{n:02d}": True for n in range(PARALLEL)}} == stored
    assert "saved over it" not in log.read_text()
