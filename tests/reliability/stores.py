"""Real stores for the reliability tests, each with server-side probes of size and writes.

The probes ask the backing service itself, not the store object: the SQLite file (its rows,
its bytes, ``PRAGMA data_version``), Redis (``DBSIZE`` and ``rdb_changes_since_last_save``,
the count of writes since start when nothing is persisted), memcached (``stats``) and
PostgreSQL (the table's rows, and the next transaction id, which only a write moves). A
:class:`CountingStore` around the store counts the calls the session layer makes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from asgisession.stores.base import Store
from asgisession.stores.memcached import MemcachedStore
from asgisession.stores.postgres import PostgresStore
from asgisession.stores.redis import RedisStore
from asgisession.stores.sqlite import SQLiteStore

from ..servers import LOOPBACK, PostgresServer, ServerProcess

#: Memcached ``stats`` counters that go up with every write command.
MEMCACHED_WRITE_STATS = ("cmd_set", "cmd_touch", "delete_hits", "delete_misses", "cmd_flush")


class CountingStore:
    """A store that counts every call by method name, then hands it to the real store."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    async def load(self, key: str) -> bytes | None:
        self.calls["load"] += 1
        return await self.inner.load(key)

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        self.calls["save"] += 1
        return await self.inner.save(key, data, ttl=ttl, replace=replace)

    async def delete(self, key: str) -> None:
        self.calls["delete"] += 1
        await self.inner.delete(key)

    async def touch(self, key: str, *, ttl: int) -> bool:
        self.calls["touch"] += 1
        touch = getattr(self.inner, "touch")  # noqa: B009 - every store used here has it
        result: bool = await touch(key, ttl=ttl)
        return result

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def writes(self) -> int:
        """Calls that change the store."""
        return self.calls["save"] + self.calls["delete"] + self.calls["touch"]


@dataclass
class Probed:
    """A real store and two questions put to the service behind it."""

    name: str
    store: Store
    #: How many items the service holds.
    size: Callable[[], Awaitable[int]]
    #: A counter the service moves on every write (its absolute value means nothing).
    writes: Callable[[], Awaitable[int]]
    #: Releases what the probes hold (the store is closed by its owner).
    close: Callable[[], None] = lambda: None


def sqlite_probed(path: Path) -> Probed:
    """A SQLiteStore on ``path``; probes read the file through a connection of their own.

    Its periodic sweep of expired rows is put off for a day: it is maintenance, not a
    session write, and a slow run must not have one land inside a measured stretch.
    """
    store = SQLiteStore(path, sweep_interval=86_400)
    probe = sqlite3.connect(path, isolation_level=None)

    def rows() -> int:
        try:
            sql = f"SELECT count(*) FROM {store.table}"  # noqa: S608 - a checked identifier
            (count,) = probe.execute(sql).fetchone()
        except sqlite3.OperationalError:  # no table yet
            return 0
        return int(count)

    def file_bytes() -> int:
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))

    async def size() -> int:
        return rows()

    async def writes() -> int:
        # data_version moves when another connection commits a change to the file; the
        # byte count catches a write that changes no row (a WAL frame, a grown file).
        (version,) = probe.execute("PRAGMA data_version").fetchone()
        return int(version) + file_bytes()

    return Probed("sqlite", store, size, writes, probe.close)


async def redis_command(port: int, *words: str) -> bytes:
    """One inline command on a fresh connection; the raw reply (simple or bulk string)."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(" ".join(words).encode() + b"\r\n")
        first = await reader.readline()
        if first.startswith(b"$"):
            length = int(first[1:])
            return (await reader.readexactly(length + 2))[:-2]
        return first.rstrip(b"\r\n")
    finally:
        writer.close()
        await writer.wait_closed()


def redis_probed(server: ServerProcess) -> Probed:
    """A RedisStore on a real redis-server that persists nothing."""
    store = RedisStore.from_url(f"redis://{LOOPBACK}:{server.port}/0")

    async def size() -> int:
        return int((await redis_command(server.port, "DBSIZE")).lstrip(b":"))

    async def writes() -> int:
        info = (await redis_command(server.port, "INFO", "persistence")).decode()
        field = next(line for line in info.splitlines() if line.startswith("rdb_changes_since"))
        return int(field.split(":")[1])

    return Probed("redis", store, size, writes)


async def memcached_stats(port: int, *args: str) -> dict[str, str]:
    """The ``stats`` (or ``stats <args>``) of a memcached, as strings."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(" ".join(("stats", *args)).encode() + b"\r\n")
        stats: dict[str, str] = {}
        while (line := (await reader.readline()).rstrip(b"\r\n")) != b"END":
            _, name, value = line.decode().split(" ", 2)
            stats[name] = value
        return stats
    finally:
        writer.close()
        await writer.wait_closed()


def memcached_probed(server: ServerProcess, port: int | None = None) -> Probed:
    """A MemcachedStore on a real memcached (``port``: where the store connects, if not it)."""
    store = MemcachedStore(LOOPBACK, port or server.port, pool_size=4)

    async def size() -> int:
        return int((await memcached_stats(server.port))["curr_items"])

    async def writes() -> int:
        stats = await memcached_stats(server.port)
        return sum(int(stats[name]) for name in MEMCACHED_WRITE_STATS)

    return Probed("memcached", store, size, writes)


def postgres_probed(server: PostgresServer, table: str) -> Probed:
    """A PostgresStore on a real PostgreSQL, probed through connections of their own.

    A transaction gets an id only when it writes, so the next id to be given out counts the
    writes of the whole server; the tests' server runs no autovacuum, whose ANALYZE would
    move it too. The periodic sweep is put off for a day, as for SQLite.
    """
    import asyncpg

    store = PostgresStore(server.url, table=table, sweep_interval=86_400)

    async def ask(sql: str) -> int:
        connection = await asyncpg.connect(server.url)
        try:
            return int(await connection.fetchval(sql))
        except asyncpg.UndefinedTableError:  # no table yet
            return 0
        finally:
            await connection.close()

    async def size() -> int:
        return await ask(f"SELECT count(*) FROM {table}")  # noqa: S608 - the test's own name

    async def writes() -> int:
        return await ask("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")

    return Probed("postgres", store, size, writes)
