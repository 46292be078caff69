# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""The conformance matrix: every row, in every framework, on every store it concerns.

A row is one documented behaviour, written once against the routes of
:mod:`.matrix_apps` and run through each framework with its own error handling in the
loop, over real stores (SQLite files, redis-server and memcached processes). Add a row by
writing an ``async def row(stack)`` and listing it in :data:`ROWS` with the stores it
concerns. The served tests at the end run rows under real servers, rotating uvicorn,
hypercorn and granian across the frameworks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from asgisession.stores import from_url
from asgisession.stores.base import Store

from ..servers import (
    LOOPBACK,
    ServerProcess,
    free_port,
    memcached_server,
    redis_server,
    serve_command,
)
from .matrix_apps import FRAMEWORKS, create_app, error_page

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: the rows run over SQLite, Redis and memcached (asyncio-only clients)."""
    return "asyncio"


ROOT = Path(__file__).resolve().parents[2]
STORES = ("cookie", "sqlite", "redis", "memcached")
SERVER_STORES = STORES[1:]
#: How long a store call may take here: an outage is noticed this fast.
STORE_TIMEOUT = 0.5


# -- stores and their outages ----------------------------------------------------------------


@dataclass
class StoreKit:
    """A store by URL (``None``: the cookie store) and how to take it down."""

    name: str
    url: str | None = None
    server: ServerProcess | None = None

    def build(self) -> Store | None:
        return from_url(self.url) if self.url else None

    def outage(self) -> AbstractContextManager[None]:
        """Redis and memcached: the server stopped. SQLite: another connection holds the
        file's exclusive lock (as a migration or a backup tool might)."""
        if self.server is not None:
            return self._stopped(self.server)
        assert self.url is not None
        assert self.url.startswith("sqlite:///")
        return self._locked(self.url.removeprefix("sqlite:///").split("?")[0])

    @staticmethod
    @contextmanager
    def _stopped(server: ServerProcess) -> Iterator[None]:
        server.stop()
        yield

    @staticmethod
    @contextmanager
    def _locked(path: str) -> Iterator[None]:
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("PRAGMA locking_mode=EXCLUSIVE")
            holder.execute("BEGIN EXCLUSIVE")
            yield
        finally:
            holder.close()


@pytest.fixture
def kits(tmp_path: Path) -> Iterator[Callable[[str], StoreKit]]:
    """Makes the kit of a store, starting its server on first use; stops them afterwards."""
    servers: list[ServerProcess] = []

    def kit(name: str) -> StoreKit:
        query = f"?timeout={STORE_TIMEOUT}"
        if name == "cookie":
            return StoreKit(name)
        if name == "sqlite":
            return StoreKit(name, f"sqlite:///{tmp_path / 'sessions.db'}{query}")
        server = redis_server(tmp_path) if name == "redis" else memcached_server()
        servers.append(server)
        scheme = "redis" if name == "redis" else "memcached"
        return StoreKit(name, f"{scheme}://{LOOPBACK}:{server.port}{query}", server)

    yield kit
    for server in servers:
        server.stop()


@dataclass
class Stack:
    """One cell of the matrix: a framework over a store, as a client drives it."""

    framework: str
    kit: StoreKit
    secret: str
    options: dict[str, Any] = field(default_factory=dict)

    @asynccontextmanager
    async def client(self, cookie: str | None = None, **options: Any) -> AsyncIterator[Any]:
        """A client of a freshly built app (new store object, same data); ``cookie`` is the
        session cookie it starts with."""
        store = self.kit.build()
        app = create_app(
            self.framework, self.secret, store, **{"on_commit_error": error_page, **options}
        )
        transport = httpx.ASGITransport(app=app)
        cookies = {"session": cookie} if cookie else None
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver", cookies=cookies
            ) as c:
                yield c
        finally:
            if store is not None:
                await store.aclose()


# -- the rows ----------------------------------------------------------------------------------


async def start_session(stack: Stack) -> str:
    async with stack.client() as c:
        response = await c.get("/count")
        assert {"count": 1} == response.json(), response.text
        cookie: str = c.cookies["session"]
        return cookie


async def store_outage_is_503(stack: Stack) -> None:
    """The store down and a request that uses its session: 503 + Retry-After, no cookie."""
    cookie = await start_session(stack)
    with stack.kit.outage():
        async with stack.client(cookie) as c:
            for path in ("/me", "/count"):
                response = await c.get(path)
                assert 503 == response.status_code, (path, response.text)
                assert "5" == response.headers["retry-after"]
                assert "set-cookie" not in response.headers
                assert "session store" in response.text


async def store_outage_anonymous(stack: Stack) -> None:
    """on_store_error="anonymous": an empty session, served, never written."""
    cookie = await start_session(stack)
    with stack.kit.outage():
        async with stack.client(cookie, on_store_error="anonymous") as c:
            response = await c.get("/count")
            assert 200 == response.status_code, response.text
            assert {"count": 1} == response.json()
            assert "set-cookie" not in response.headers


async def kept_cookie_after(stack: Stack, path: str, error: str) -> None:
    """``path`` fails to commit: the hook's page, no Set-Cookie, the old session intact."""
    cookie = await start_session(stack)
    async with stack.client(cookie) as c:
        response = await c.get(path)
        assert 400 == response.status_code, response.text
        assert f"<p>{error}</p>" in response.text
        assert "set-cookie" not in response.headers
        assert {"count": 1} == (await c.get("/me")).json()


async def overflow_through_hook(stack: Stack) -> None:
    await kept_cookie_after(stack, "/big", "CookieOverflow")


async def non_json_through_hook(stack: Stack) -> None:
    await kept_cookie_after(stack, "/bad", "SerializationError")


@dataclass(frozen=True)
class Row:
    name: str
    run: Callable[[Stack], Awaitable[None]]
    stores: tuple[str, ...] = STORES


ROWS = (
    Row("store-outage-503", store_outage_is_503, SERVER_STORES),
    Row("store-outage-anonymous", store_outage_anonymous, SERVER_STORES),
    Row("overflow-hook", overflow_through_hook, ("cookie",)),
    Row("non-json-hook", non_json_through_hook),
)
CELLS = [
    pytest.param(row, framework, store, id=f"{row.name}-{framework}-{store}")
    for row in ROWS
    for framework in FRAMEWORKS
    for store in row.stores
]


@pytest.mark.anyio
@pytest.mark.parametrize(("row", "framework", "store"), CELLS)
async def test_matrix(
    row: Row, framework: str, store: str, secret: str, kits: Callable[[str], StoreKit]
) -> None:
    await row.run(Stack(framework, kits(store), secret))


# -- served by real servers ------------------------------------------------------------------

FACTORY = "tests.integration.matrix_apps:served"


def command(server: str, port: int) -> list[str]:
    return serve_command(server, FACTORY, port)


#: Each framework under one server; each server under two frameworks, with the hook and
#: without it, and under both server stores.
SERVED = [
    ("raw", "uvicorn", "redis", "page"),
    ("starlette", "hypercorn", "memcached", "page"),
    ("fastapi", "granian", "redis", "page"),
    ("litestar", "uvicorn", "memcached", ""),
    ("quart", "hypercorn", "redis", ""),
    ("django", "granian", "memcached", ""),
]


@pytest.mark.parametrize(("framework", "server", "store", "hook"), SERVED)
def test_served(
    framework: str,
    server: str,
    store: str,
    hook: str,
    secret: str,
    kits: Callable[[str], StoreKit],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rows through a real server: what the middleware chose is what the client gets."""
    kit = kits(store)
    assert kit.url is not None
    monkeypatch.setenv("SECRET_KEY_BASE", secret)
    monkeypatch.setenv("MATRIX_FRAMEWORK", framework)
    monkeypatch.setenv("MATRIX_STORE", kit.url)
    monkeypatch.setenv("MATRIX_HOOK", hook)
    port = free_port()
    process = ServerProcess(command(server, port), port, cwd=ROOT).start()
    try:
        with httpx.Client(base_url=f"http://{LOOPBACK}:{port}", timeout=10.0) as c:
            assert {"count": 1} == c.get("/count").json()
            assert {"count": 2} == c.get("/count").json()
            response = c.get("/bad")
            if hook:
                assert 400 == response.status_code
                assert "<p>SerializationError</p>" in response.text
            else:  # the default: raised into the app's send, the framework's own 500
                assert 500 == response.status_code
            assert "set-cookie" not in response.headers
            assert {"count": 2} == c.get("/me").json()
            with kit.outage():
                response = c.get("/me")
            assert 503 == response.status_code, response.text
            assert "5" == response.headers["retry-after"]
            assert "set-cookie" not in response.headers
    finally:
        process.stop()


def test_every_row_runs_somewhere() -> None:
    """A row listed with no store would silently test nothing."""
    assert all(row.stores for row in ROWS)
    assert {cell.values[0] for cell in CELLS} == set(ROWS)
