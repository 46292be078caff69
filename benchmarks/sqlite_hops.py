"""What a thread hop costs next to a SQLite point read, and what SQLiteStore's coalescing buys.

Run it with ``python benchmarks/sqlite_hops.py [--quick] [--rounds N] [--concurrency N]`` in
an environment where asgisession and aiosqlite are installed. It prints two tables.

Hop vs read
    aiosqlite runs sqlite3 on a worker thread, so every ``await`` on it is a hop there and
    back. Timed one call at a time, each: a bare ``await conn.execute("SELECT 1")`` (a hop
    that carries no work), ``await conn.execute_fetchall(LOAD)`` (a hop carrying a point
    read of a 1 KB session), and that same point read on a plain ``sqlite3`` connection in
    the calling thread (the work alone; the median of batches of 100 reads, divided by 100).
Concurrent sessions
    ``--concurrency`` tasks (50) at once, each doing ``ops`` calls in a row. Two stores on two
    files with the same schema, pragmas and SQL: ``SQLiteStore`` (all calls queued while a
    batch is in flight go in the next hop, in one transaction) and ``NaiveStore`` below (one
    aiosqlite call, so one hop and one autocommit transaction, per operation: the adapter
    you would write first). Workloads: ``load``; ``save`` (``replace=True`` over live keys);
    ``load+save`` (a request's load then write-back); and ``1 task`` (one ``load`` then
    ``save`` at a time, as many calls as the others make, to show what coalescing costs when
    there is nothing to coalesce).

Method: the candidates of a table take turns within a round, the starting one rotating each
round, for ``--rounds`` rounds after one warm-up round. The figure is the median over rounds;
a ratio is the median of the per-round ratios, each between two runs of the same round, so
drift in machine speed cancels out. The garbage collector is paused while timing. Results
are checked (each load returns the bytes its key holds, each replace reports a write)
before anything is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosqlite

from asgisession.stores.sqlite import SQLiteStore

TABLE = "asgisession_sessions"
KEYS = 1000
VALUE = b"x" * 1024  # a 1 KB session
TTL = 3600
LOAD = f"SELECT data FROM {TABLE} WHERE key = ? AND expires_at > ?"  # noqa: S608
REPLACE = f"UPDATE {TABLE} SET data = ?, expires_at = ? WHERE key = ? AND expires_at > ?"  # noqa: S608
UPSERT = (
    f"INSERT INTO {TABLE} (key, data, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) "  # noqa: S608
    "DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at"
)


@dataclass(frozen=True)
class Mode:
    rounds: int
    hop_samples: int  # single calls timed per candidate per round
    ops_per_task: int  # calls each concurrent task makes per run


FULL = Mode(rounds=21, hop_samples=400, ops_per_task=20)
QUICK = Mode(rounds=7, hop_samples=100, ops_per_task=6)


class KeyValueStore(Protocol):
    async def load(self, key: str) -> bytes | None: ...

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool: ...


class NaiveStore:
    """One public aiosqlite call per operation: one hop, one autocommit transaction each."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def load(self, key: str) -> bytes | None:
        rows = list(await self.conn.execute_fetchall(LOAD, (key, time.time())))
        return None if not rows else bytes(rows[0][0])

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        now = time.time()
        if replace:
            cursor = await self.conn.execute(REPLACE, (data, now + ttl, key, now))
            return cursor.rowcount == 1
        await self.conn.execute(UPSERT, (key, data, now + ttl))
        return True


async def open_naive(path: Path) -> aiosqlite.Connection:
    """A connection set up as SQLiteStore sets up its own."""
    conn = await aiosqlite.connect(path, timeout=5.0, isolation_level=None)
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = NORMAL")
    return conn


async def make_database(path: Path) -> SQLiteStore:
    """A store with the schema and KEYS live 1 KB sessions, still open."""
    store = SQLiteStore(path)
    await asyncio.gather(*(store.save(key(i), VALUE, ttl=TTL) for i in range(KEYS)))
    return store


def key(i: int) -> str:
    return f"s:{i % KEYS:064x}"


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def quartiles(samples: list[float]) -> tuple[float, float, float]:
    if len(samples) < 2:
        return samples[0], samples[0], samples[0]
    q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q2, q3


# -- hop vs read ----------------------------------------------------------------------------


async def hop_vs_read(path: Path, mode: Mode) -> list[tuple[str, float, float, float]]:
    """Median microseconds per call of a bare hop, a hop with a read, and the read alone."""
    conn = await open_naive(path)
    now = time.time()
    samples: dict[str, list[float]] = {"hop": [], "hop+read": [], "read": []}
    try:
        with closing(sqlite3.connect(path)) as db:
            if db.execute(LOAD, (key(7), now)).fetchone()[0] != VALUE:
                raise SystemExit("the in-thread point read does not find its session")
            rows = list(await conn.execute_fetchall(LOAD, (key(7), now)))
            if bytes(rows[0][0]) != VALUE:
                raise SystemExit("the point read through a hop does not find its session")

            async def bare_hop(i: int) -> None:
                await conn.execute("SELECT 1")

            async def hop_read(i: int) -> None:
                await conn.execute_fetchall(LOAD, (key(i), now))

            async def read_100(i: int) -> None:
                for j in range(i, i + 100):
                    db.execute(LOAD, (key(j), now)).fetchone()

            candidates: list[tuple[str, Callable[[int], Awaitable[None]], int]] = [
                ("hop", bare_hop, 1),
                ("hop+read", hop_read, 1),
                ("read", read_100, 100),
            ]
            for round_ in range(mode.rounds + 1):
                shift = round_ % len(candidates)
                for name, fn, per in candidates[shift:] + candidates[:shift]:
                    times: list[float] = []
                    with gc_paused():
                        for i in range(mode.hop_samples):
                            start = time.perf_counter_ns()
                            await fn(i)
                            times.append((time.perf_counter_ns() - start) / per / 1000)
                    if round_:  # round 0 warms up
                        samples[name].append(statistics.median(times))
    finally:
        await conn.close()
    return [(name, *quartiles(values)) for name, values in samples.items()]


# -- concurrent sessions --------------------------------------------------------------------


async def run_workload(
    store: KeyValueStore, workload: str, concurrency: int, ops_per_task: int
) -> float:
    """Operations per second for one run of ``workload``; checks every result."""

    tasks, calls = (
        (1, concurrency * ops_per_task) if workload == "1 task" else (concurrency, ops_per_task)
    )

    async def task(t: int) -> int:
        done = 0
        for n in range(calls):
            k = key(t * calls + n)
            if workload in ("load", "load+save", "1 task"):
                if await store.load(k) != VALUE:
                    raise SystemExit(f"{workload}: a load did not return its session")
                done += 1
            if workload in ("save", "load+save", "1 task"):
                if not await store.save(k, VALUE, ttl=TTL, replace=True):
                    raise SystemExit(f"{workload}: a replace found no live session")
                done += 1
        return done

    with gc_paused():
        start = time.perf_counter()
        ops = sum(await asyncio.gather(*(task(t) for t in range(tasks))))
        elapsed = time.perf_counter() - start
    return ops / elapsed


@dataclass
class Row:
    workload: str
    coalesced: list[float]
    naive: list[float]
    ratios: list[float]
    hops_per_op: float


async def concurrent_sessions(
    coalesced_path: Path, naive_path: Path, mode: Mode, concurrency: int
) -> list[Row]:
    store = SQLiteStore(coalesced_path)
    conn = await open_naive(naive_path)
    naive = NaiveStore(conn)
    rows: list[Row] = []
    try:
        for workload in ("load", "save", "load+save", "1 task"):
            ops = mode.ops_per_task * concurrency
            row = Row(workload, [], [], [], 0.0)
            hops = ops_done = 0
            for round_ in range(mode.rounds + 1):
                order: list[tuple[str, KeyValueStore]] = [("coalesced", store), ("naive", naive)]
                if round_ % 2:
                    order.reverse()
                result: dict[str, float] = {}
                for name, candidate in order:
                    before = store._hops
                    result[name] = await run_workload(
                        candidate, workload, concurrency, mode.ops_per_task
                    )
                    if name == "coalesced" and round_:
                        hops += store._hops - before
                        ops_done += ops * (2 if workload in ("load+save", "1 task") else 1)
                if round_:  # round 0 warms up
                    row.coalesced.append(result["coalesced"])
                    row.naive.append(result["naive"])
                    row.ratios.append(result["coalesced"] / result["naive"])
            row.hops_per_op = hops / ops_done
            rows.append(row)
    finally:
        await store.aclose()
        await conn.close()
    return rows


# -- report ---------------------------------------------------------------------------------


def report(
    hops: list[tuple[str, float, float, float]], rows: list[Row], mode: Mode, concurrency: int
) -> None:
    print(
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"aiosqlite {aiosqlite.__version__}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{mode.rounds} rounds"
    )
    print()
    print(f"{'one call':<28}{'p25 µs':>10}{'median µs':>12}{'p75 µs':>10}")
    for name, q1, q2, q3 in hops:
        label = {
            "hop": 'await execute("SELECT 1")',
            "hop+read": "await execute_fetchall(LOAD)",
            "read": "sqlite3 point read in-thread",
        }[name]
        print(f"{label:<28}{q1:>10.1f}{q2:>12.1f}{q3:>10.1f}")
    medians = {name: q2 for name, _, q2, _ in hops}
    print(f"a bare hop costs {medians['hop'] / medians['read']:.1f}x an in-thread point read")
    print()
    print(
        f"{concurrency} concurrent tasks x {mode.ops_per_task} calls "
        "(ops/s, median over rounds [p25-p75])"
    )
    header = f"{'workload':<11}{'coalesced':>26}{'one hop per op':>26}{'ratio':>8}{'hops/op':>9}"
    print(header)
    for row in rows:
        c1, c2, c3 = quartiles(row.coalesced)
        n1, n2, n3 = quartiles(row.naive)
        coalesced = f"{c2:,.0f} [{c1:,.0f}-{c3:,.0f}]"
        naive = f"{n2:,.0f} [{n1:,.0f}-{n3:,.0f}]"
        ratio = statistics.median(row.ratios)
        print(f"{row.workload:<11}{coalesced:>26}{naive:>26}{ratio:>7.2f}x{row.hops_per_op:>9.3f}")
    print("ratio: median of per-round coalesced/naive; hops/op: SQLiteStore's, naive is 1.000")


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and samples")
    parser.add_argument("--rounds", type=int, help="timed rounds (after one warm-up round)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent tasks")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    if args.rounds:
        mode = Mode(args.rounds, mode.hop_samples, mode.ops_per_task)
    with tempfile.TemporaryDirectory(prefix="asgisession-bench-") as tmp:
        coalesced_path, naive_path = Path(tmp) / "coalesced.db", Path(tmp) / "naive.db"
        for path in (coalesced_path, naive_path):
            await (await make_database(path)).aclose()
        hops = await hop_vs_read(naive_path, mode)
        rows = await concurrent_sessions(coalesced_path, naive_path, mode, args.concurrency)
    report(hops, rows, mode, args.concurrency)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
