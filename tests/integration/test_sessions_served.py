# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""Sessions and a served SessionMiddleware read each other's cookies, on three stores.

uvicorn serves tests/integration/shared_store_app.py in its own process with the cookie
store, a SQLite file, or a real Redis; this process opens the same store with the same
settings through ``asgisession.Sessions``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from asgisession import Sessions, stores

from ..servers import LOOPBACK, ServerProcess, free_port
from .test_websocket_server import WEB_APP, running

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: the SQLite and Redis stores answer through asyncio."""
    return "asyncio"


@pytest.fixture(params=["cookie", "sqlite", "redis"])
async def served(
    request: pytest.FixtureRequest, secret: str, tmp_path: Path
) -> AsyncIterator[tuple[str, Sessions]]:
    """The served app's base URL, and Sessions with its settings over the same store."""
    url = ""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sessions.db'}"
    elif request.param == "redis":
        server: ServerProcess = request.getfixturevalue("redis_proc")
        url = f"redis://{LOOPBACK}:{server.port}/0?namespace=s{uuid.uuid4().hex}:"
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", WEB_APP, "--host", LOOPBACK,
            "--port", str(port)]  # fmt: skip
    env = {"SECRET_KEY_BASE": secret, "SESSION_STORE_URL": url}
    with running(argv, env, port, tmp_path / "web.log"):
        if not url:
            yield f"http://{LOOPBACK}:{port}", Sessions(secret_key_base=secret, secure=False)
            return
        async with stores.from_url(url) as store:
            sessions = Sessions(secret_key_base=secret, store=store, user_key="user_id")
            yield f"http://{LOOPBACK}:{port}", sessions


async def test_each_reads_the_others_cookie(served: tuple[str, Sessions]) -> None:
    web, sessions = served
    session = await sessions.load()
    session["user_id"] = "7"
    session["n"] = 41
    set_cookie = await sessions.commit(session)
    assert set_cookie is not None
    made_here = set_cookie.split(";")[0].removeprefix("session=")

    async with httpx.AsyncClient(base_url=web) as http:
        headers = {"cookie": f"session={made_here}"}
        assert {"user_id": "7", "n": 41} == (await http.get("/me", headers=headers)).json()
        assert {"user_id": "7", "n": 42} == (await http.get("/bump", headers=headers)).json()
    async with httpx.AsyncClient(base_url=web) as http:  # another browser
        response = await http.get("/login?user=8")
        made_there = response.cookies["session"]

    if sessions.store is not None:  # a server-side id stays: the bump is in the store
        assert {"user_id": "7", "n": 42} == dict(await sessions.load(cookie=made_here))
    opened = await sessions.load(cookie_header=f"session={made_there}")
    assert {"user_id": "8"} == dict(opened)
    assert sessions.info(opened).rejection is None
