"""A/B of the SQLite, Redis and memcached stores: a git ref's, the working tree's, the raw client.

Made for optimising the store adapters on a noisy machine, where two separate benchmark
runs disagree by more than the change being measured. All three candidates run in one
process against one server, interleaved in rounds (the order rotating each round), and
only ratios within a round are reported: their medians over the rounds. For SQLite the
"raw client" is aiosqlite with one hop per operation (``sqlite_hops.NaiveStore``), and each
candidate has a file of its own in one temporary directory.

``asgisession`` at ``--ref`` (default ``main``) is extracted with ``git archive`` into a
temporary directory and imported as ``asgisession_ref`` (the package imports itself
relatively, so the copy works under another name).

Usage: ``python -m benchmarks.ab_stores [--ref main] [--rounds 30] [--only sqlite|redis|memcached]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

from . import servers
from .bench_stores import KEYS, TTL, VALUE, KeyValue, RawMemcached, RawRedis, key

SEQUENTIAL = 200  # calls per candidate per round, timed one by one
TASKS = 50
PER_TASK = 10
OPS = ("load", "save")


def import_ref(ref: str, into: Path) -> Any:
    """``asgisession.stores`` as of git ``ref``, imported as ``asgisession_ref.stores``."""
    repo = Path(__file__).resolve().parent.parent
    git = shutil.which("git") or "git"
    archive = subprocess.run(  # noqa: S603 - argv is built here; ref is the user's own
        [git, "archive", "--format=tar", ref, "asgisession"],
        cwd=repo,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    shutil.move(into / "asgisession", into / "asgisession_ref")
    sys.path.insert(0, str(into))
    return importlib.import_module("asgisession_ref.stores")


async def sequential_p50(kv: KeyValue, op: str, offset: int) -> float:
    times: list[int] = []
    for i in range(offset, offset + SEQUENTIAL):
        start = time.perf_counter_ns()
        if op == "load":
            if await kv.load(key(i)) != VALUE:
                raise RuntimeError("a load did not return its session")
        else:
            await kv.save(key(i), VALUE, ttl=TTL)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times)


async def throughput(kv: KeyValue, op: str) -> float:
    async def task(t: int) -> None:
        for n in range(PER_TASK):
            if op == "load":
                if await kv.load(key(t * PER_TASK + n)) != VALUE:
                    raise RuntimeError("a concurrent load did not return its session")
            else:
                await kv.save(key(t * PER_TASK + n), VALUE, ttl=TTL)

    start = time.perf_counter()
    await asyncio.gather(*(task(t) for t in range(TASKS)))
    return TASKS * PER_TASK / (time.perf_counter() - start)


async def compare(kind: str, candidates: dict[str, KeyValue], rounds: int) -> None:
    for kv in candidates.values():
        for first in range(0, KEYS, TASKS):
            await asyncio.gather(
                *(kv.save(key(i), VALUE, ttl=TTL) for i in range(first, first + TASKS))
            )
    names = list(candidates)
    p50: dict[tuple[str, str], list[float]] = {(n, op): [] for n in names for op in OPS}
    ops: dict[tuple[str, str], list[float]] = {(n, op): [] for n in names for op in OPS}
    gc.disable()
    try:
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for op in OPS:
                for name in order:
                    p50[name, op].append(await sequential_p50(candidates[name], op, r * 97))
                for name in reversed(order):
                    ops[name, op].append(await throughput(candidates[name], op))
            gc.collect()
    finally:
        gc.enable()
    print(f"== {kind}: {rounds} rounds, medians of per-round ratios")
    for op in OPS:
        for a, b in (("ref", "raw"), ("tree", "raw"), ("tree", "ref")):
            lat = statistics.median(x / y for x, y in zip(p50[a, op], p50[b, op], strict=True))
            thr = statistics.median(x / y for x, y in zip(ops[a, op], ops[b, op], strict=True))
            print(f"  {op} {a}/{b}: p50 {lat:.3f}x  ops/s at {TASKS} tasks {thr:.3f}x")


async def main(ref_stores: Any, rounds: int, only: str | None) -> None:
    import aiomcache
    import redis.asyncio as aioredis

    from asgisession import stores

    with tempfile.TemporaryDirectory(prefix="asgisession-ab-") as tmp:
        if only in (None, "sqlite"):
            from .sqlite_hops import NaiveStore, open_naive

            sqlite_ref = ref_stores.SQLiteStore(Path(tmp) / "ref.db")
            sqlite_tree = stores.SQLiteStore(Path(tmp) / "tree.db")
            maker = stores.SQLiteStore(Path(tmp) / "raw.db")  # the raw client needs the table
            await maker.load("-")
            await maker.aclose()
            conn = await open_naive(Path(tmp) / "raw.db")
            try:
                group = {"ref": sqlite_ref, "tree": sqlite_tree, "raw": NaiveStore(conn)}
                await compare("sqlite", group, rounds)
            finally:
                await sqlite_ref.aclose()
                await sqlite_tree.aclose()
                await conn.close()
        if only in (None, "memcached") and not servers.missing("memcached", "memcached"):
            server = servers.memcached_server()
            try:
                ref = ref_stores.MemcachedStore(servers.LOOPBACK, server.port, namespace="ref:")
                tree = stores.MemcachedStore(servers.LOOPBACK, server.port, namespace="tree:")
                raw = aiomcache.Client(servers.LOOPBACK, server.port, pool_size=8)
                try:
                    group = {"ref": ref, "tree": tree, "raw": RawMemcached(raw)}
                    await compare("memcached", group, rounds)
                finally:
                    await ref.aclose()
                    await tree.aclose()
                    await raw.close()
            finally:
                server.stop()
        if only in (None, "redis") and not servers.missing("redis-server", "redis-server"):
            server = servers.redis_server(Path(tmp))
            clients = [aioredis.Redis(host=servers.LOOPBACK, port=server.port) for _ in "abc"]
            try:
                group = {
                    "ref": ref_stores.RedisStore(clients[0], namespace="ref:"),
                    "tree": stores.RedisStore(clients[1], namespace="tree:"),
                    "raw": RawRedis(clients[2]),
                }
                await compare("redis", group, rounds)
            finally:
                for client in clients:
                    await client.aclose()
                server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="main", help="git ref of the 'ref' store (main)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--only", choices=["sqlite", "redis", "memcached"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asgisession-ref-") as where:
        asyncio.run(main(import_ref(args.ref, Path(where)), args.rounds, args.only))
