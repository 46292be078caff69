"""One hot session: N requests at once writing ONE session, on every versioned store.

A page that fires several fetch calls in parallel makes its requests write one session at
the same moment; the server stores save with a compare-and-set and, when it is refused,
read again, merge and retry (:mod:`asgisession.backends._merge`). This measures what that
costs: N writers (2, 4, 8, 16) each send requests back to back, all with the same cookie,
in-process through the real middleware (far less noisy than a server and a load generator
on two cores), for a few seconds per point, on MemoryStore, SQLiteStore and a real
redis-server and memcached on loopback (:mod:`benchmarks.servers`).

Each request loads the session, awaits once (as an app that awaits anything does, and the
moment its parallel requests get in), and adds one to a counter:

- ``shared``: every writer adds to ``n``. Concurrent increments of one key collide by
  design (``on_conflict="this_request"`` keeps this request's value), so some are lost:
  counted, not a failure.
- ``own``: writer *i* adds to its own key ``wi``; the merge must keep every increment, so
  anything lost here is a bug (or a "saved over it" fallback).
- ``burst``: as ``own``, but the writers start each request together and wait until all
  have answered, as the parallel fetch calls of one page view do, again and again.

Per point: requests/s, p50/p99/max latency, saves tried per request (``save_if`` calls),
merges per request (reads of the record beyond the request's first, each for a merge
before a try), fallbacks (the warning after the last try: saved over it), non-200
answers (SessionConflict under ``--on-conflict error``), and increments lost. With
``--ref REF``, the asgisession of git ``REF`` runs too, interleaved with the working
tree's point by point (which goes first alternates), each with its own stores, so a
before/after comes from one sitting. Figures are medians over ``--rounds`` rounds.

With ``--processes P``, the writers are spread over P store clients and middlewares, each
standing for a worker process of its own (saves of one process queue up; of different
processes they race), MemoryStore excepted (one store, so one process).

It runs past 300 lines because it is one script on its own (it must not import the tests):
the app, the ASGI call, the stores, the counting and the table.

Usage: ``python -m benchmarks.hot_session [--ref main] [--rounds 3] [--seconds 2]
[--stores memory,sqlite,redis,memcached] [--writers 2,4,8,16] [--processes 1]
[--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from . import servers
from .ab_stores import import_ref
from .codec import SECRET
from .harness import percentile

STORES = ("memory", "sqlite", "redis", "memcached")
WRITERS = (2, 4, 8, 16)
WORKLOADS = ("shared", "own", "burst")
FIGURES = ("rps", "p50_ms", "p99_ms", "max_ms", "tries", "merges", "fallbacks", "errors", "lost")
Message = dict[str, Any]


class Counts(logging.Handler):
    """``save_if`` and ``load_versioned`` calls (wrapped on the store), fallback warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.tries = self.loads = self.fallbacks = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "saved over it" in record.getMessage():
            self.fallbacks += 1

    def wrap(self, store: Any) -> None:
        save_if, load_versioned = store.save_if, store.load_versioned

        async def counted_save(*args: Any, **kwargs: Any) -> bool:
            self.tries += 1
            done: bool = await save_if(*args, **kwargs)
            return done

        async def counted_load(*args: Any, **kwargs: Any) -> Any:
            self.loads += 1
            return await load_versioned(*args, **kwargs)

        store.save_if, store.load_versioned = counted_save, counted_load


class Burst:
    """The writers of the ``burst`` workload start each request together, as the fetch
    calls of one page do: each waits here until all have finished their previous one."""

    def __init__(self, parties: int) -> None:
        self.parties, self.arrived = parties, 0
        self.go, self.verdict = asyncio.Event(), [True]

    async def wait(self, deadline: float) -> bool:
        """Whether to go on: decided once per round, by the last to arrive, for all."""
        go, verdict = self.go, self.verdict
        self.arrived += 1
        if self.arrived == self.parties:
            verdict[0] = time.perf_counter() < deadline
            self.arrived, self.go, self.verdict = 0, asyncio.Event(), [True]
            go.set()
        else:
            await go.wait()
        return verdict[0]


def make_app(workload: str) -> Callable[..., Any]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        session = scope["session"]
        await session.load()
        key = "n" if workload == "shared" else scope["query_string"].decode()
        if key:
            seen = session.get(key, 0)
            await asyncio.sleep(0)
            session[key] = seen + 1
        body = json.dumps(dict(session)).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def call(app: Any, cookie: bytes | None, query: str = "") -> tuple[int, Message, list[Any]]:
    """One GET through ``app``: its status, body (JSON) and headers."""
    headers = [(b"host", b"example.test")] + ([(b"cookie", cookie)] if cookie else [])
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/", "raw_path": b"/", "root_path": "",
        "query_string": query.encode(), "headers": headers, "state": {},
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
    }  # fmt: skip
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    raw = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], json.loads(raw) if start["status"] == 200 else {}, start["headers"]


@asynccontextmanager
async def open_store(
    package: Any, kind: str, db: Path, ports: dict[str, int]
) -> AsyncIterator[Any]:
    stores = package.stores
    if kind == "memory":
        store = stores.MemoryStore()
    elif kind == "sqlite":
        store = stores.SQLiteStore(db)
    elif kind == "redis":
        import redis.asyncio as aioredis

        store = stores.RedisStore(aioredis.Redis(host=servers.LOOPBACK, port=ports["redis"]))
    else:
        store = stores.MemcachedStore(servers.LOOPBACK, ports["memcached"])
    try:
        yield store
    finally:
        await store.aclose()


async def point(
    package: Any, stores: list[Any], workload: str, writers: int, seconds: float, on_conflict: str
) -> dict[str, float]:
    """N writers on one session for ``seconds``: the figures of :data:`FIGURES`.

    Writer *i* goes through the middleware of ``stores[i % len(stores)]``: each store object
    (a client of its own) stands for one worker process.
    """
    counts = Counts()
    apps = [
        package.SessionMiddleware(
            make_app(workload), secret_key_base=SECRET, store=store, on_conflict=on_conflict
        )
        for store in stores
    ]
    app = apps[0]
    status, _, headers = await call(app, None, "start")
    cookie = next(v.split(b";")[0] for k, v in headers if k == b"set-cookie")
    assert status == 200
    for store in stores:
        counts.wrap(store)
    latencies: list[float] = []
    done = [0] * writers
    errors = 0
    deadline = time.perf_counter() + seconds

    burst = Burst(writers)

    async def writer(i: int) -> None:
        nonlocal errors
        while workload == "burst" or time.perf_counter() < deadline:
            if workload == "burst" and not await burst.wait(deadline):
                return
            start = time.perf_counter()
            query = "" if workload == "shared" else f"w{i}"
            status, _, _ = await call(apps[i % len(apps)], cookie, query)
            latencies.append(time.perf_counter() - start)
            if status == 200:
                done[i] += 1
            else:
                errors += 1

    logger = logging.getLogger("asgisession")
    logger.addHandler(counts)
    began = time.perf_counter()
    try:
        await asyncio.gather(*(writer(i) for i in range(writers)))
    finally:
        logger.removeHandler(counts)
    elapsed = time.perf_counter() - began
    loads = counts.loads  # before the final read
    _, final, _ = await call(app, cookie)
    if workload == "shared":
        lost = sum(done) - final.get("n", 0)
    else:
        lost = sum(done[i] - final.get(f"w{i}", 0) for i in range(writers))
    latencies.sort()
    requests = len(latencies)
    return {
        "rps": requests / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": latencies[-1] * 1000,
        "tries": counts.tries / requests,
        # Every request reads its session once; each read beyond that is for a merge.
        "merges": (loads - requests) / requests,
        "fallbacks": counts.fallbacks,
        "errors": errors,
        "lost": lost,
    }


async def run(args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    import asgisession
    import asgisession.stores

    sides: dict[str, Any] = {"tree": asgisession}
    workdir = Path(tempfile.mkdtemp(prefix="asgisession-hot-"))
    if args.ref:
        import_ref(args.ref, workdir / "ref")
        sides["ref"] = sys.modules["asgisession_ref"]
    for name, package in sides.items():
        print(f"# {name}: {package.__file__}", file=sys.stderr)
    started: list[servers.Server] = []
    ports: dict[str, int] = {}
    try:
        for kind in args.stores:
            if kind == "redis" and not servers.missing("redis-server", "redis-server"):
                started.append(servers.redis_server(workdir))
                ports["redis"] = started[-1].port
            if kind == "memcached" and not servers.missing("memcached", "memcached"):
                started.append(servers.memcached_server())
                ports["memcached"] = started[-1].port
        kinds = [k for k in args.stores if k in ("memory", "sqlite") or k in ports]
        results: dict[str, list[dict[str, float]]] = {}
        for round_index in range(args.rounds):
            for kind in kinds:
                for workload in args.workloads:
                    for writers in args.writers:
                        order = list(sides.items())
                        if (round_index + writers) % 2:
                            order.reverse()
                        for name, package in order:
                            db = workdir / f"{name}-{time.monotonic_ns()}.db"
                            async with AsyncExitStack() as stack:
                                stores = [
                                    await stack.enter_async_context(
                                        open_store(package, kind, db, ports)
                                    )
                                    for _ in range(1 if kind == "memory" else args.processes)
                                ]
                                figures = await point(
                                    package, stores, workload, writers, args.seconds,
                                    args.on_conflict,
                                )  # fmt: skip
                            label = f"{kind}|{workload}|{writers}|{name}"
                            results.setdefault(label, []).append(figures)
                            print(label, _row(figures), file=sys.stderr, flush=True)
        return results
    finally:
        for server in started:
            server.stop()


def _row(figures: dict[str, float]) -> str:
    return " ".join(f"{k}={figures[k]:.4g}" for k in FIGURES)


def table(results: dict[str, list[dict[str, float]]]) -> str:
    lines = [
        "| store | workload | N | side | " + " | ".join(FIGURES) + " |",
        "| --- " * (4 + len(FIGURES)) + "|",
    ]
    for label, rounds in results.items():
        medians = [statistics.median(r[k] for r in rounds) for k in FIGURES]
        cells = [f"{m:.0f}" if k in ("rps", "fallbacks", "errors", "lost") else
                 f"{m:.2f}" for k, m in zip(FIGURES, medians, strict=True)]  # fmt: skip
        lines.append("| " + " | ".join(label.split("|") + cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", help="also run the asgisession of this git ref")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--stores", type=lambda s: s.split(","), default=list(STORES))
    parser.add_argument("--workloads", type=lambda s: s.split(","), default=list(WORKLOADS))
    parser.add_argument(
        "--writers", type=lambda s: [int(n) for n in s.split(",")], default=list(WRITERS)
    )
    parser.add_argument(
        "--processes", type=int, default=1,
        help="store clients the writers are spread over, each standing for a worker process "
        "(MemoryStore always has one)",
    )  # fmt: skip
    parser.add_argument("--on-conflict", default="this_request", choices=["this_request", "error"])
    parser.add_argument("--json", type=Path, help="write every round's figures here")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
