"""The matrix's served cells: one framework over one store, served by a real server.

:class:`Cells` starts each cell's store (a redis-server or memcached process, a SQLite file,
or none for the cookie store) and its app (``matrix_apps:served`` under uvicorn, hypercorn
or granian, by :func:`server_for`) in subprocesses on free loopback ports, and stops them by
pid. :class:`StoreKit` takes a store down for the outage cases and brings it back.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..servers import (
    LOOPBACK,
    ServerProcess,
    free_port,
    memcached_server,
    redis_server,
    serve_command,
)
from .matrix_apps import FRAMEWORKS, VARIANT_HEADER

ROOT = Path(__file__).resolve().parents[2]
STORES = ("cookie", "sqlite", "redis", "memcached")
SERVER_STORES = STORES[1:]
SERVERS = ("uvicorn", "hypercorn", "granian")
FACTORY = "tests.integration.matrix_apps:served"
#: How long a store call may take in the served app: an outage is noticed this fast.
STORE_TIMEOUT = 0.5


def server_for(framework: str, store: str) -> str:
    """The server of a cell: the rotation meets every server in each framework's four cells
    and in each store's six."""
    return SERVERS[(FRAMEWORKS.index(framework) + STORES.index(store)) % len(SERVERS)]


# -- stores and their outages ----------------------------------------------------------------


@dataclass
class StoreKit:
    """A store by URL (``None``: the cookie store) and how to take it down."""

    name: str
    url: str | None = None
    server: ServerProcess | None = None

    def outage(self) -> AbstractContextManager[None]:
        """Redis and memcached: the server stopped (and started again after). SQLite: another
        process holds the file's locks (see :meth:`_locked`)."""
        if self.server is not None:
            return self._stopped(self.server)
        assert self.url is not None
        assert self.url.startswith("sqlite:///")
        return self._locked(self.url.removeprefix("sqlite:///").split("?")[0])

    @staticmethod
    @contextmanager
    def _stopped(server: ServerProcess) -> Iterator[None]:
        server.stop()
        try:
            yield
        finally:
            server.start()

    @staticmethod
    @contextmanager
    def _locked(path: str) -> Iterator[None]:
        # The served app holds the file open in WAL mode, where readers never wait for a
        # writer and no second connection can take the file's exclusive lock. What stops
        # readers too is a process holding the WAL index's own locks (the POSIX locks SQLite
        # takes on bytes 120-127 of the -shm file), as one stuck in recovery would.
        fd = os.open(f"{path}-shm", os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 8, 120)
            yield
        finally:
            os.close(fd)


def store_kit(name: str, workdir: Path) -> StoreKit:
    """The kit of a store, its server started (the caller stops it)."""
    query = f"?timeout={STORE_TIMEOUT}"
    if name == "cookie":
        return StoreKit(name)
    if name == "sqlite":
        return StoreKit(name, f"sqlite:///{workdir / 'sessions.db'}{query}")
    server = redis_server(workdir) if name == "redis" else memcached_server()
    scheme = "redis" if name == "redis" else "memcached"
    return StoreKit(name, f"{scheme}://{LOOPBACK}:{server.port}{query}", server)


# -- a served cell ---------------------------------------------------------------------------


@dataclass
class Cell:
    """One framework over one store, served: the cases drive it over HTTP."""

    framework: str
    kit: StoreKit
    base_url: str

    @property
    def server_side(self) -> bool:
        return self.kit.url is not None

    def client(self, variant: str = "", cookie: str | None = None) -> httpx.Client:
        """A client of the served app; ``variant`` picks the middleware configuration
        (matrix_apps.Variants), ``cookie`` is the session cookie it starts with."""
        headers = {VARIANT_HEADER.decode(): variant} if variant else {}
        cookies = {"session": cookie} if cookie else None
        return httpx.Client(base_url=self.base_url, headers=headers, cookies=cookies, timeout=20)

    def me_with(self, cookie: str) -> httpx.Response:
        """``GET /me`` with exactly this session cookie, from a client with no jar of its own."""
        with httpx.Client(base_url=self.base_url, timeout=20) as bare:
            return bare.get("/me", headers={"cookie": f"session={cookie}"})


@dataclass
class Served:
    """A cell's running processes: its app server and (server stores) its store's."""

    cell: Cell
    process: ServerProcess

    def stop(self) -> None:
        try:
            self.process.stop()
        finally:
            if self.cell.kit.server is not None:
                self.cell.kit.server.stop()


class Cells:
    """Serves the cells one at a time, in the order the cases run (grouped by cell), and
    starts the next cell's servers in a thread while this cell's cases run: a served app
    takes seconds to import its framework, and the cases spend much of their time waiting."""

    def __init__(self, order: list[tuple[str, str]], workdir: Callable[[str], Path]) -> None:
        self.order = order
        self.workdir = workdir
        self.starter = ThreadPoolExecutor(max_workers=1)
        self.starting: dict[tuple[str, str], Future[Served]] = {}
        self.current: tuple[tuple[str, str], Served] | None = None

    def get(self, framework: str, store: str) -> Cell:
        key = (framework, store)
        if self.current is None or self.current[0] != key:
            self.stop_current()
            starting = self.starting.pop(key, None) or self.starter.submit(self.serve, *key)
            self.current = (key, starting.result())
            later = self.order[self.order.index(key) + 1 :] if key in self.order else []
            if later and later[0] not in self.starting:
                self.starting[later[0]] = self.starter.submit(self.serve, *later[0])
        return self.current[1].cell

    def stop_current(self) -> None:
        current, self.current = self.current, None
        if current is not None:
            current[1].stop()

    def close(self) -> None:
        self.stop_current()
        self.starter.shutdown(wait=True)
        for future in self.starting.values():
            if future.exception() is None:
                future.result().stop()

    def serve(self, framework: str, store: str) -> Served:
        kit = store_kit(store, self.workdir(f"{framework}-{store}"))
        port = free_port()
        env = {
            "SECRET_KEY_BASE": secrets.token_hex(32),
            "MATRIX_FRAMEWORK": framework,
            "MATRIX_STORE": kit.url or "",
        }
        command = serve_command(server_for(framework, store), FACTORY, port)
        # env(1) sets the app's environment and execs the server (same pid), so no thread
        # changes this process's os.environ.
        argv = ["env", *(f"{name}={value}" for name, value in env.items()), *command]
        try:
            process = ServerProcess(argv, port, cwd=ROOT).start()
        except BaseException:
            if kit.server is not None:
                kit.server.stop()
            raise
        return Served(Cell(framework, kit, f"http://{LOOPBACK}:{port}"), process)
