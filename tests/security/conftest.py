"""Attack tests: every one runs on each store, on real servers.

``make_app`` (from tests/test_every_store.py) builds the middleware over the cookie store
and each server store.

``server_store`` yields a :class:`Served` per store: MemoryStore, SQLiteStore on a real
file, RedisStore on a real redis-server and a real three-node Redis Cluster,
MemcachedStore on a real memcached, and PostgresStore on a real PostgreSQL. Each comes
with a fresh namespace (or file, or table), ``records()``, the number of session records
the backing service itself holds (asked of the service, not of the store object), and
``dump()``, every byte the service holds for it, as an attacker with a backup or a shell
on the server would see them (PostgreSQL: every file of its data directory, WAL included).
"""

from __future__ import annotations

import asyncio
import sqlite3
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis, RedisCluster

from asgisession.backends.server import NAMESPACE
from asgisession.stores import (
    MemcachedStore,
    MemoryStore,
    PostgresStore,
    RedisStore,
    SQLiteStore,
    Store,
)
from tests.test_every_store import make_app  # noqa: F401  (a fixture, registered by import)

from ..redis_cluster import RedisClusterProcesses
from ..reliability.stores import memcached_stats
from ..servers import LOOPBACK, PostgresServer, ServerProcess

SERVER_STORES = ["memory", "sqlite", "redis", "redis-cluster", "memcached", "postgres"]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: these tests run on every server store, most of them asyncio-only."""
    return "asyncio"


@dataclass
class Served:
    """A store under attack and a probe of how many session records its service holds."""

    name: str
    store: Store
    records: Callable[[], Awaitable[int]]
    dump: Callable[[], Awaitable[bytes]]


def _raw(value: bytes | str | None) -> bytes:
    """A reply of a client that does not decode (its type says it might)."""
    return value.encode() if isinstance(value, str) else value or b""


async def _redis_dump(ports: list[int]) -> bytes:
    """Every key of every node, with its DUMP (the serialised value) and, for strings, GET."""
    parts: list[bytes] = []
    for port in ports:
        client = Redis(host=LOOPBACK, port=port)
        try:
            for key in await client.keys("*"):
                parts += [_raw(key), _raw(await client.dump(key))]
                if await client.type(key) == b"string":
                    parts.append(_raw(await client.get(key)))
        finally:
            await client.aclose()
    return b"\n".join(parts)


async def _memcached_dump(port: int) -> bytes:
    """``lru_crawler metadump all`` (every key memcached holds), then a get of each key."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(b"lru_crawler metadump all\r\n")
        lines: list[bytes] = []
        while (line := (await reader.readline()).rstrip(b"\r\n")) != b"END":
            lines.append(line)
        parts = list(lines)
        for line in lines:
            field = next(f for f in line.split() if f.startswith(b"key="))
            key = urllib.parse.unquote_to_bytes(field[4:])
            writer.write(b"get " + key + b"\r\n")
            while (reply := await reader.readline()) != b"END\r\n":
                parts.append(reply)
        return b"\n".join(parts)
    finally:
        writer.close()
        await writer.wait_closed()


async def _postgres_dump(server: PostgresServer) -> bytes:
    """Every file of the server's data directory (tables, WAL), after a CHECKPOINT."""
    connection = await asyncpg.connect(server.url)
    try:
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()
    files = sorted(p for p in server.datadir.rglob("*") if p.is_file())
    return b"".join(f.read_bytes() for f in files if not f.name.startswith("postmaster."))


def _file_dump(path: Path) -> bytes:
    """The raw bytes of an SQLite database and of its -wal and -shm files, as they exist."""
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def _redis_count(ports: list[int], pattern: str) -> int:
    total = 0
    for port in ports:
        client = Redis(host=LOOPBACK, port=port)
        try:
            total += len(await client.keys(pattern))
        finally:
            await client.aclose()
    return total


@pytest.fixture(params=SERVER_STORES)
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Served]:
    """Each server-side store in turn, empty, with its record probe."""
    name: str = request.param
    namespace = f"sec{uuid.uuid4().hex}:"
    async with AsyncExitStack() as stack:
        records: Callable[[], Awaitable[int]]
        if name == "memory":
            memory = MemoryStore(max_entries=100_000)

            async def records() -> int:
                return sum(key.startswith(NAMESPACE) for key in memory._items)

            async def dump() -> bytes:
                return repr(memory._items).encode()

            store: Store = memory
        elif name == "sqlite":
            sqlite = SQLiteStore(tmp_path / "sessions.db")
            probe = sqlite3.connect(tmp_path / "sessions.db", isolation_level=None)
            stack.callback(probe.close)

            async def records() -> int:
                sql = f"SELECT count(*) FROM {sqlite.table} WHERE key LIKE 's:%'"  # noqa: S608
                try:
                    return int(probe.execute(sql).fetchone()[0])
                except sqlite3.OperationalError:  # no table yet
                    return 0

            async def dump() -> bytes:
                return _file_dump(tmp_path / "sessions.db")

            store = sqlite
        elif name in ("redis", "redis-cluster"):
            if name == "redis":
                server: ServerProcess = request.getfixturevalue("redis_proc")
                ports = [server.port]
                url = f"redis://{LOOPBACK}:{server.port}/0"
                store = RedisStore.from_url(url, namespace=namespace)
            else:
                cluster: RedisClusterProcesses = request.getfixturevalue("redis_cluster")
                ports = cluster.ports
                client = RedisCluster(host=LOOPBACK, port=ports[0])
                stack.push_async_callback(client.aclose)
                store = RedisStore(client, namespace=namespace)

            async def records() -> int:
                return await _redis_count(ports, f"{namespace}{NAMESPACE}*")

            async def dump() -> bytes:
                return await _redis_dump(ports)

        elif name == "postgres":
            postgres: PostgresServer = request.getfixturevalue("postgres_proc")
            table = f"sec{uuid.uuid4().hex}"
            store = PostgresStore(postgres.url, table=table)

            async def records() -> int:
                connection = await asyncpg.connect(postgres.url)
                try:
                    sql = f"SELECT count(*) FROM {table} WHERE key LIKE 's:%'"  # noqa: S608
                    return int(await connection.fetchval(sql))
                except asyncpg.UndefinedTableError:  # no table yet
                    return 0
                finally:
                    await connection.close()

            async def dump() -> bytes:
                return await _postgres_dump(postgres)

        else:
            assert "memcached" == name
            memcached: ServerProcess = request.getfixturevalue("memcached_proc")
            store = MemcachedStore(port=memcached.port, namespace=namespace)
            # memcached cannot list keys: count the items it ever stored since the start.
            before = int((await memcached_stats(memcached.port))["total_items"])

            async def records() -> int:
                stats = await memcached_stats(memcached.port)
                return int(stats["total_items"]) - before

            async def dump() -> bytes:
                return await _memcached_dump(memcached.port)

        stack.push_async_callback(store.aclose)
        yield Served(name, store, records, dump)
