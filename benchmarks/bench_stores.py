"""Section 3, stores: each asgisession store against its raw client doing the same operation.

For a 1 KB session under 1000 live keys:

latency
    ``load`` and ``save`` one at a time (each call timed alone); a round's figure is the
    median of its calls, and p50/p90/p99 over every call of the run are reported too.
throughput
    50 concurrent tasks each making a few calls; operations per second for the whole lot.

Pairs: ``SQLiteStore`` against aiosqlite with one hop per operation (``SELECT`` /
``INSERT ... ON CONFLICT``, one ``execute`` each, as ``sqlite_hops.py`` does it) and against
``sqlite3`` in the event loop's thread (the floor: no hop at all, but it blocks the loop);
``RedisStore`` against ``redis.asyncio`` ``GET`` / ``SET EX``; ``MemcachedStore`` against
``aiomcache`` ``get`` / ``set``; ``PostgresStore`` against an asyncpg pool of the same
size sending the same two statements (``SELECT`` and ``INSERT ... ON CONFLICT``, prepared
and cached by asyncpg for both); ``MemoryStore`` against a plain dict. redis-server,
memcached and PostgreSQL are started on free loopback ports and stopped by pid; a missing
binary skips its rows with a message. Saves use ``replace=False`` (an upsert), the same
operation the raw clients make.

Each group also has its store with records sealed at rest, as the server backend writes
them (``RecordSeal``: AES-256-GCM bound to the key; ``seal_records=False`` turns it off):
the row "... sealed" costs the seal on each save and the opening on each load, and its
ratio to the plain store is the price of sealing. The row "... sealed+cas" is what the
server backend does since 0.3: loads with ``load_versioned`` and saves with ``save_if``
over the version its load of the key read (a compare-and-set: Redis a Lua script,
memcached ``gets``/``cas``, SQLite ``UPDATE ... WHERE data = ?``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import servers
from .harness import (
    Measure,
    Mode,
    Progress,
    SectionResult,
    gc_paused,
    percentile,
    quartiles,
    rotations,
)
from .sqlite_hops import UPSERT, NaiveStore, open_naive

SECTION = "stores"
KEYS = 1000
VALUE = b"x" * 1024
TTL = 3600
CONCURRENCY = 50


@dataclass(frozen=True)
class Sizes:
    rounds: int
    sequential: int  # calls per candidate per round, for each of load and save
    per_task: int  # calls per task in the concurrent runs

    @classmethod
    def of(cls, mode: Mode) -> Sizes:
        return cls(3, 100, 4) if mode.quick else cls(10, 400, 20)


class KeyValue(Protocol):
    async def load(self, key: str) -> bytes | None: ...

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool: ...


def key(i: int) -> str:
    return f"bench:{i % KEYS:06d}"


class DictStore:
    """The floor for MemoryStore: a dict behind two coroutines."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def load(self, key: str) -> bytes | None:
        return self.data.get(key)

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        self.data[key] = data
        return True


class InThreadSQLite:
    """sqlite3 called in the event loop's thread: no hop, and no other task runs meanwhile."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")

    async def load(self, key: str) -> bytes | None:
        row = self.conn.execute(
            "SELECT data FROM asgisession_sessions WHERE key = ? AND expires_at > ?",
            (key, time.time()),
        ).fetchone()
        return None if row is None else bytes(row[0])

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        self.conn.execute(UPSERT, (key, data, time.time() + ttl))
        return True


class RawRedis:
    def __init__(self, client: object) -> None:
        self.client = client

    async def load(self, key: str) -> bytes | None:
        value: bytes | None = await self.client.get("raw:" + key)  # type: ignore[attr-defined]
        return value

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        return bool(await self.client.set("raw:" + key, data, ex=ttl))  # type: ignore[attr-defined]


class RawMemcached:
    def __init__(self, client: object) -> None:
        self.client = client

    async def load(self, key: str) -> bytes | None:
        value: bytes | None = await self.client.get(b"raw:" + key.encode())  # type: ignore[attr-defined]
        return value

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        return bool(await self.client.set(b"raw:" + key.encode(), data, exptime=ttl))  # type: ignore[attr-defined]


class RawPostgres:
    """asyncpg's pool shortcuts (acquire, one statement, release) with the store's SQL."""

    def __init__(self, pool: object, table: str) -> None:
        from asgisession.stores._postgres_statements import Statements

        self.pool = pool
        self.sql = Statements(table)

    async def load(self, key: str) -> bytes | None:
        value: bytes | None = await self.pool.fetchval(self.sql.load, key)  # type: ignore[attr-defined]
        return value

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        await self.pool.execute(self.sql.upsert, key, data, ttl)  # type: ignore[attr-defined]
        return True


class Sealed:
    """A store whose records are sealed and opened as the server backend does it.

    ``versioned``: loads remember each key's version, and a save over a key whose version
    is known is a ``save_if``; else loads and saves are plain. The benchmark saves keys it
    has just loaded; a store whose version is the record itself knows the next version
    after a save, memcached's (a CAS unique) needs a load, so a few of its concurrent
    saves in a round (keys the sequential run saved just before) are plain ones.
    """

    def __init__(self, store: KeyValue, *, versioned: bool) -> None:
        from asgisession.backends._records import RecordSeal
        from asgisession.crypto import Keyring
        from asgisession.stores.base import SupportsVersioned

        self.store = store
        self.versioned = store if versioned and isinstance(store, SupportsVersioned) else None
        self.prefix = "cas:" if versioned else "sealed:"
        self.versions: dict[str, bytes | int] = {}
        self.seal = RecordSeal(Keyring("b" * 32 + "0123456789abcdef" * 2))
        self.session_id = b"\x00" * 32

    async def load(self, key: str) -> bytes | None:
        full = self.prefix + key
        if self.versioned is not None:
            found = await self.versioned.load_versioned(full)
            if found is None:
                return None
            record, self.versions[full] = found
        else:
            loaded = await self.store.load(full)
            if loaded is None:
                return None
            record = loaded
        return self.seal.open(full, self.session_id, record)[0]

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        full = self.prefix + key
        record = self.seal.write(full, self.session_id, data)
        version = self.versions.pop(full, None)
        if self.versioned is not None and version is not None:
            if not await self.versioned.save_if(full, record, ttl=ttl, version=version):
                raise RuntimeError("a compare-and-set save found its key changed")
            if isinstance(version, bytes):  # the record is its own version
                self.versions[full] = record
            return True
        return await self.store.save(full, record, ttl=ttl, replace=replace)


def with_sealed(group: dict[str, KeyValue]) -> dict[str, KeyValue]:
    """The group, and its store (the first) sealing its records, then also versioned, last.

    The versioned row only for a store that compares before it writes.
    """
    from asgisession.stores.base import SupportsVersioned

    ours, store = next(iter(group.items()))
    sealed: dict[str, KeyValue] = {f"{ours} sealed": Sealed(store, versioned=False)}
    if isinstance(store, SupportsVersioned):
        sealed[f"{ours} sealed+cas"] = Sealed(store, versioned=True)
    return {**group, **sealed}


# -- the groups of candidates ---------------------------------------------------------------

Group = dict[str, KeyValue]  # the first is asgisession's store, the others its baselines


@asynccontextmanager
async def sqlite_group(workdir: Path) -> AsyncIterator[Group]:
    from asgisession.stores import SQLiteStore

    store = SQLiteStore(workdir / "store.db")
    # The raw clients need the table: a store makes the schema (on first use), then closes.
    for name in ("naive.db", "thread.db"):
        schema_maker = SQLiteStore(workdir / name)
        await schema_maker.load("-")
        await schema_maker.aclose()
    conn = await open_naive(workdir / "naive.db")
    in_thread = InThreadSQLite(workdir / "thread.db")
    try:
        yield with_sealed(
            {
                "asgisession SQLiteStore": store,
                "raw aiosqlite (one hop per op)": NaiveStore(conn),
                "raw sqlite3 in-thread": in_thread,
            }
        )
    finally:
        await store.aclose()
        await conn.close()
        in_thread.conn.close()


@asynccontextmanager
async def redis_group(workdir: Path) -> AsyncIterator[Group]:
    import redis.asyncio as aioredis

    from asgisession.stores import RedisStore

    server = servers.redis_server(workdir)
    store_client = aioredis.Redis(host=servers.LOOPBACK, port=server.port)
    raw_client = aioredis.Redis(host=servers.LOOPBACK, port=server.port)
    try:
        yield with_sealed(
            {
                "asgisession RedisStore": RedisStore(store_client),
                "raw redis.asyncio": RawRedis(raw_client),
            }
        )
    finally:
        await store_client.aclose()
        await raw_client.aclose()
        server.stop()


@asynccontextmanager
async def memcached_group(workdir: Path) -> AsyncIterator[Group]:
    import aiomcache

    from asgisession.stores import MemcachedStore

    server = servers.memcached_server()
    store = MemcachedStore(servers.LOOPBACK, server.port)
    raw_client = aiomcache.Client(servers.LOOPBACK, server.port, pool_size=8)
    try:
        yield with_sealed(
            {"asgisession MemcachedStore": store, "raw aiomcache": RawMemcached(raw_client)}
        )
    finally:
        await store.aclose()
        await raw_client.close()
        server.stop()


@asynccontextmanager
async def postgres_group(workdir: Path) -> AsyncIterator[Group]:
    import asyncpg

    from asgisession.stores import PostgresStore

    server = servers.postgres_server()
    url = servers.postgres_url(server.port)
    store = PostgresStore(url, table="bench_store")
    schema_maker = PostgresStore(url, table="bench_raw")  # the raw client needs the table
    try:
        await schema_maker.ping()
        await schema_maker.aclose()
        pool = await asyncpg.create_pool(url, min_size=store.min_size, max_size=store.max_size)
        try:
            yield with_sealed(
                {
                    "asgisession PostgresStore": store,
                    "raw asyncpg pool": RawPostgres(pool, "bench_raw"),
                }
            )
        finally:
            await store.aclose()
            await pool.close()
    finally:
        server.stop()


@asynccontextmanager
async def memory_group(workdir: Path) -> AsyncIterator[Group]:
    from asgisession.stores import MemoryStore

    store = MemoryStore()
    try:
        yield with_sealed({"asgisession MemoryStore": store, "raw dict": DictStore()})
    finally:
        await store.aclose()


GROUPS: dict[
    str, tuple[Callable[[Path], AbstractAsyncContextManager[Group]], tuple[str, str] | None]
] = {
    "sqlite": (sqlite_group, None),
    "redis": (redis_group, ("redis-server", "redis-server")),
    "memcached": (memcached_group, ("memcached", "memcached")),
    "postgres": (postgres_group, None),  # checked by servers.missing_postgres()
    "memory": (memory_group, None),
}


# -- timing ---------------------------------------------------------------------------------


async def sequential(kv: KeyValue, op: str, calls: int, offset: int) -> list[float]:
    """Microseconds of each of ``calls`` single operations, one after another."""
    times: list[float] = []
    with gc_paused():
        for i in range(offset, offset + calls):
            start = time.perf_counter_ns()
            if op == "load":
                if await kv.load(key(i)) != VALUE:
                    raise RuntimeError("a load did not return its session")
            else:
                await kv.save(key(i), VALUE, ttl=TTL)
            times.append((time.perf_counter_ns() - start) / 1000)
    return times


async def concurrent(kv: KeyValue, op: str, per_task: int) -> float:
    """Operations per second for ``CONCURRENCY`` tasks making ``per_task`` calls each."""

    async def task(t: int) -> None:
        for n in range(per_task):
            k = key(t * per_task + n)
            if op == "load":
                if await kv.load(k) != VALUE:
                    raise RuntimeError("a concurrent load did not return its session")
            else:
                await kv.save(k, VALUE, ttl=TTL)

    with gc_paused():
        start = time.perf_counter()
        await asyncio.gather(*(task(t) for t in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
    return CONCURRENCY * per_task / elapsed


async def measure_group(
    result: SectionResult, kind: str, group: Group, sizes: Sizes, progress: Progress
) -> None:
    for kv in group.values():
        for first in range(0, KEYS, CONCURRENCY):  # no more at once than the timed runs make
            await asyncio.gather(
                *(kv.save(key(i), VALUE, ttl=TTL) for i in range(first, first + CONCURRENCY))
            )
        await sequential(kv, "load", 50, 0)  # warm-up, and the check that loads find it
    names = list(group)
    latencies: dict[tuple[str, str], list[float]] = {
        (n, op): [] for n in names for op in ("load", "save")
    }
    measures: dict[tuple[str, str, str], Measure] = {}
    for name in names:
        for op in ("load", "save"):
            measures[name, op, "lat"] = Measure(SECTION, f"{kind} {op} latency", name, "us/op")
            measures[name, op, "ops"] = Measure(
                SECTION, f"{kind} {op} x{CONCURRENCY} tasks", name, "ops/s"
            )
    for round_index in range(sizes.rounds):
        for op in ("load", "save"):
            for name in rotations(names, round_index):
                times = await sequential(group[name], op, sizes.sequential, round_index * 97)
                latencies[name, op] += times
                measures[name, op, "lat"].samples.append(quartiles(times)[1])
            for name in rotations(names, round_index + 1):
                ops = await concurrent(group[name], op, sizes.per_task)
                measures[name, op, "ops"].samples.append(ops)
        progress.tick(f"{kind}: round {round_index + 1}/{sizes.rounds}")
    for (name, op), times in latencies.items():
        times.sort()
        measures[name, op, "lat"].extra.update(
            p50=percentile(times, 0.50),
            p90=percentile(times, 0.90),
            p99=percentile(times, 0.99),
            calls=len(times),
        )
    # Order: for each op, latency then throughput, each candidate in the group's order.
    for op in ("load", "save"):
        for what in ("lat", "ops"):
            result.measures += [measures[name, op, what] for name in names]
    ours, *raws = names
    variants = {name.rpartition(" ")[2]: name for name in raws if name.startswith(f"{ours} ")}
    raws = [name for name in raws if name not in variants.values()]
    for op in ("load", "save"):
        for what, unit in (("lat", "p50"), ("ops", f"x{CONCURRENCY}")):
            for label, name in variants.items():
                result.ratio(
                    f"{kind} {op} {unit}: {label} / plain" + (" (ops/s)" * (what == "ops")),
                    measures[name, op, what],
                    measures[ours, op, what],
                    target=None,  # the price of sealing (and comparing), reported, not a bar
                )
        for raw in raws:
            # The targets are against real clients; a dict or an in-thread
            # sqlite3 is a floor to read the rest against, not a bar to meet.
            floor = "in-thread" in raw or kind == "memory"
            result.ratio(
                f"{kind} {op} p50: {ours} / {raw}",
                measures[ours, op, "lat"],
                measures[raw, op, "lat"],
                target=None if floor else 1.1,
            )
            result.ratio(
                f"{kind} {op} x{CONCURRENCY}: {ours} / {raw} (ops/s)",
                measures[ours, op, "ops"],
                measures[raw, op, "ops"],
                target=None if floor else (2.0 if kind == "sqlite" and op == "save" else 0.9),
            )


async def run(mode: Mode, progress: Progress) -> SectionResult:
    result = SectionResult(SECTION)
    sizes = Sizes.of(mode)
    result.info["value"] = f"{len(VALUE)} B under {KEYS} keys, {CONCURRENCY} concurrent tasks"
    progress.begin(SECTION, f"{len(GROUPS)} stores x {sizes.rounds} rounds")
    with tempfile.TemporaryDirectory(prefix="asgisession-bench-") as tmp:
        for kind, (factory, binary) in GROUPS.items():
            why = servers.missing(*binary) if binary is not None else None
            if kind == "postgres":
                why = servers.missing_postgres()
            if why:
                result.skipped.append(f"{kind}: {why}")
                progress.note(f"stores: skipping {kind}: {why}")
                continue
            workdir = Path(tmp) / kind
            workdir.mkdir()
            async with factory(workdir) as group:
                await measure_group(result, kind, group, sizes, progress)
    return result
