# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""asgisession.testing with each test client: httpx, Starlette's TestClient, Quart, Django.

A cookie made by ``make_cookie`` is sent by the real client to the real app under the
real SessionMiddleware, and ``read_session`` reads back what the app set. Server stores
are real (a SQLite file, a real redis-server); a record made for a cookie is checked in
the store.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from asgisession import RejectReason, Session, SessionMiddleware, Sessions
from asgisession.stores import RedisStore, SQLiteStore, Store
from asgisession.testing import (
    make_cookie,
    make_cookie_sync,
    read_session,
    read_session_sync,
    set_cookie_values,
)

from ..servers import LOOPBACK, ServerProcess
from .contract import tampered

pytestmark = pytest.mark.integration

with warnings.catch_warnings():
    # Starlette 1.10 warns that its TestClient wants httpx2; on httpx it works as before.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: Quart, the SQLite and the Redis stores run on asyncio."""
    return "asyncio"


async def me(request: Request) -> JSONResponse:
    return JSONResponse(dict(request.session))


async def bump(request: Request) -> JSONResponse:
    request.session["n"] = request.session.get("n", 0) + 1
    return JSONResponse(dict(request.session))


async def logout(request: Request) -> JSONResponse:
    session: Session = request.session  # type: ignore[assignment]
    session.reset()
    return JSONResponse({})


def starlette_app(**options: Any) -> SessionMiddleware:
    routes = [Route("/me", me), Route("/bump", bump), Route("/logout", logout)]
    return SessionMiddleware(Starlette(routes=routes), **options)


@pytest.fixture(params=["cookie", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store | None]:
    if request.param == "cookie":
        yield None
        return
    made: Store
    if request.param == "sqlite":
        made = SQLiteStore(tmp_path / "sessions.db")
    else:
        server: ServerProcess = request.getfixturevalue("redis_proc")
        url = f"redis://{LOOPBACK}:{server.port}/0"
        made = RedisStore.from_url(url, namespace=f"t{uuid.uuid4().hex}:")
    async with made:
        yield made


# -- httpx --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_httpx(secret: str, store: Store | None) -> None:
    app = starlette_app(secret_key_base=secret, store=store)
    sessions = Sessions.from_middleware(app)
    cookie = await make_cookie(sessions, {"user_id": "42", "n": 1})
    if store is not None:
        info = sessions.info(await sessions.load(cookie=cookie))
        assert info.store_key is not None
        assert await store.load(info.store_key) is not None  # the record is written

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/bump", headers={"Cookie": f"session={cookie}"})
        assert {"user_id": "42", "n": 2} == response.json()
        session = await read_session(sessions, response)
        if store is None:
            assert session is not None
            assert {"user_id": "42", "n": 2} == dict(session)
        else:
            assert session is None  # a server-side id is not re-issued on a write
            assert 2 == (await sessions.load(cookie=cookie))["n"]

        response = await client.get("/logout", headers={"Cookie": f"session={cookie}"})
        ended = await read_session(sessions, response)
        assert ended is not None
        assert {} == dict(ended)
        assert [""] == set_cookie_values(response, "session")

        response = await client.get("/bump", headers={"Cookie": f"session={tampered(cookie)}"})
        assert {"n": 1} == response.json()  # the app got an empty session


@pytest.mark.anyio
async def test_read_session_reports_a_refused_cookie(secret: str, other_secret: str) -> None:
    mine, theirs = Sessions(secret_key_base=secret), Sessions(secret_key_base=other_secret)
    cookie = await make_cookie(theirs, {"a": 1})
    session = await read_session(mine, [f"session={cookie}; Path=/; HttpOnly"])
    assert session is not None
    assert {} == dict(session)
    assert RejectReason.UNKNOWN_KEY == session.rejection
    assert await read_session(mine, ["other=1; Path=/"]) is None
    with pytest.raises(ValueError, match="empty session"):
        await make_cookie(mine, {})


# -- Starlette's TestClient (synchronous) -------------------------------------------------


@pytest.mark.parametrize("backend", ["cookie", "sqlite"])
def test_starlette_testclient(secret: str, tmp_path: Path, backend: str) -> None:
    store = SQLiteStore(tmp_path / "sync.db") if backend == "sqlite" else None
    app = starlette_app(secret_key_base=secret, store=store)
    sessions = Sessions.from_middleware(app)
    cookie = make_cookie_sync(sessions, {"n": 1})
    with TestClient(app) as client:
        response = client.get("/bump", headers={"Cookie": f"session={cookie}"})
        assert {"n": 2} == response.json()
        if store is None:
            session = read_session_sync(sessions, response)
            assert session is not None
            assert {"n": 2} == dict(session)
        response = client.get("/logout", headers={"Cookie": f"session={cookie}"})
        ended = read_session_sync(sessions, response)
        assert ended is not None
        assert {} == dict(ended)


def test_starlette_testclient_with_redis(secret: str, redis_proc: ServerProcess) -> None:
    """Redis binds its connections to one loop: the helpers run on the client's own."""
    url = f"redis://{LOOPBACK}:{redis_proc.port}/0"
    store = RedisStore.from_url(url, namespace=f"t{uuid.uuid4().hex}:")
    app = starlette_app(secret_key_base=secret, store=store)
    sessions = Sessions.from_middleware(app)
    with TestClient(app) as client:
        client.portal.call(store.ping)  # its connections now belong to the client's loop
        cookie = client.portal.call(make_cookie, sessions, {"n": 1})
        response = client.get("/bump", headers={"Cookie": f"session={cookie}"})
        assert {"n": 2} == response.json()
        response = client.get("/logout", headers={"Cookie": f"session={cookie}"})
        session = client.portal.call(read_session, sessions, response)
        assert session is not None
        assert {} == dict(session)
        client.portal.call(store.aclose)


# -- Quart's test client ------------------------------------------------------------------


def quart_app(**options: Any) -> Quart:
    app = Quart(__name__)

    @app.get("/bump")
    async def quart_bump() -> dict[str, Any]:
        session: Session = request.scope["session"]  # type: ignore[typeddict-item]
        session["n"] = session.get("n", 0) + 1
        return dict(session)

    app.asgi_app = SessionMiddleware(app.asgi_app, **options)  # type: ignore[assignment]
    return app


@pytest.mark.anyio
async def test_quart_test_client(secret: str, store: Store | None) -> None:
    app = quart_app(secret_key_base=secret, store=store)
    assert isinstance(app.asgi_app, SessionMiddleware)
    sessions = Sessions.from_middleware(app.asgi_app)
    cookie = await make_cookie(sessions, {"n": 1})
    client = app.test_client()
    response = await client.get("/bump", headers={"Cookie": f"session={cookie}"})
    assert {"n": 2} == await response.get_json()
    if store is None:
        session = await read_session(sessions, response)
        assert session is not None
        assert {"n": 2} == dict(session)
    else:
        assert 2 == (await sessions.load(cookie=cookie))["n"]
