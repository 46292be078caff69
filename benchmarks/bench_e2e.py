"""Section 4, end to end: requests/s and p99 through uvicorn on 127.0.0.1.

Every candidate app (``e2e_app.py``) runs in its own uvicorn process at once (idle ones
cost nothing), so rounds can interleave them: in each round, in a rotating order, the load
generator hits each for a few seconds over keep-alive connections. The generator is
``wrk`` when it is on ``PATH`` (Debian's ``wrk``), else ``loadgen.py`` in a separate
process. A session app is primed with one request first, and its ``Set-Cookie`` is sent
on every request after, so every measured request reads (and writes) a real session.
Each app is primed :data:`SESSIONS` times and the requests take those sessions in turn
(wrk through a Lua script, ``loadgen.py`` one per connection), as many users would: with
one session for all 16 connections, the server stores' compare-and-set saves (issue #18)
would measure 16 writers racing on one key instead of the cost of a request.
Beside asgisession's apps: the peers doing the same read and write (Starlette's
``SessionMiddleware``, starsessions on Redis, Litestar's server-side sessions on its Redis
store, and the same Litestar app without sessions), and the raw hops of each server store
(an app making the same GET and SET itself), compared in the same rounds.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import servers
from .harness import Measure, Mode, Progress, SectionResult, rotations

SECTION = "e2e"
ROOT = Path(__file__).resolve().parent.parent
BARE = "bare app"
COOKIE_READ = "cookie store, session read"
RAW_REDIS = "raw redis GET+SET (no sessions)"
RAW_MEMCACHED = "raw memcached get+set (no sessions)"
RAW_SQLITE = "raw aiosqlite SELECT+UPSERT (no sessions)"
RAW_POSTGRES = "raw asyncpg SELECT+UPSERT (no sessions)"
#: What a PostgreSQL row needs; checked by servers.missing_postgres() (Debian keeps the
#: server's programs off PATH).
POSTGRES = ("postgres", "postgresql")
STARLETTE = "Starlette SessionMiddleware (cookie), read+write"
STARSESSIONS = "starsessions RedisStore, read+write"
LITESTAR_BARE = "Litestar app, no sessions"
LITESTAR = "Litestar server-side sessions, RedisStore, read+write"
#: (label, e2e_app name, the server it needs: (binary, Debian package) or None)
CANDIDATES: list[tuple[str, str, tuple[str, str] | None]] = [
    (BARE, "bare", None),
    (COOKIE_READ, "cookie-read", None),
    ("cookie store, read+write", "cookie-write", None),
    ("MemoryStore, read+write", "memory-write", None),
    ("SQLiteStore, read+write", "sqlite-write", None),
    ("RedisStore, read+write", "redis-write", ("redis-server", "redis-server")),
    ("MemcachedStore, read+write", "memcached-write", ("memcached", "memcached")),
    ("PostgresStore, read+write", "postgres-write", POSTGRES),
    # The floor of each server store: the app makes the same read and write itself.
    (RAW_REDIS, "raw-redis", ("redis-server", "redis-server")),
    (RAW_MEMCACHED, "raw-memcached", ("memcached", "memcached")),
    (RAW_SQLITE, "raw-sqlite", None),
    (RAW_POSTGRES, "raw-postgres", POSTGRES),
    # The peers, doing the same read and write under the same uvicorn.
    (STARLETTE, "starlette-cookie", None),
    (STARSESSIONS, "starsessions-redis", ("redis-server", "redis-server")),
    (LITESTAR_BARE, "litestar-bare", None),
    (LITESTAR, "litestar-redis", ("redis-server", "redis-server")),
]
#: (subject, baseline, target): ratios of requests/s beyond "/ bare app", same round.
COMPARISONS: list[tuple[str, str, float | None]] = [
    ("RedisStore, read+write", RAW_REDIS, 0.95),
    ("MemcachedStore, read+write", RAW_MEMCACHED, None),
    ("SQLiteStore, read+write", RAW_SQLITE, None),
    ("PostgresStore, read+write", RAW_POSTGRES, None),
    ("cookie store, read+write", STARLETTE, 1.2),
    ("RedisStore, read+write", STARSESSIONS, 1.2),
    ("RedisStore, read+write", LITESTAR, None),
    (LITESTAR, LITESTAR_BARE, None),
]
#: How many sessions each app is primed with; the load generator takes them in turn.
SESSIONS = 64
#: wrk's request(): the next session's Cookie (none for an app that sets none).
_WRK_SCRIPT = """
local cookies = {%s}
local i = 0
request = function()
  if #cookies == 0 then return wrk.format(nil, nil, {}) end
  i = i %% #cookies + 1
  return wrk.format(nil, nil, {["Cookie"] = cookies[i]})
end
"""
#: The apps that set no session cookie.
NO_SESSIONS = frozenset((BARE, RAW_REDIS, RAW_MEMCACHED, RAW_SQLITE, RAW_POSTGRES, LITESTAR_BARE))
#: Targets of "/ bare app" ratios (issue #17).
BARE_TARGETS = {COOKIE_READ: 0.9, "MemoryStore, read+write": 0.85}


@dataclass(frozen=True)
class Sizes:
    rounds: int
    seconds: float  # per candidate per round
    connections: int

    @classmethod
    def of(cls, mode: Mode) -> Sizes:
        return cls(1, 0.6, 8) if mode.quick else cls(5, 3.0, 16)


def backing_kind(app: str) -> str:
    """The store an ``e2e_app`` app talks to (``"redis"`` for ``raw-redis``,
    ``starsessions-redis``, ``redis-write``, ...), or ``""`` for none."""
    parts = app.split("-")
    return next(
        (kind for kind in ("redis", "memcached", "sqlite", "postgres") if kind in parts), ""
    )


def _missing(needs: tuple[str, str]) -> str | None:
    return servers.missing_postgres() if needs == POSTGRES else servers.missing(*needs)


def prime(port: int) -> str | None:
    """One request; the ``name=value`` of its Set-Cookie (``None`` when it sets none)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"priming request answered {response.status}")
        cookie = response.getheader("set-cookie")
    finally:
        conn.close()
    return None if cookie is None else cookie.split(";", 1)[0]


_WRK_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1e6}


def _wrk_latency(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    return float(match.group(1)) * _WRK_UNITS[match.group(2)] if match else float("nan")


def find_wrk(mode: Mode) -> str | None:
    """The wrk binary to use, or ``None`` for ``loadgen.py``."""
    if mode.loadgen == "python":
        return None
    wrk = shutil.which("wrk")
    if wrk is None and mode.loadgen == "wrk":
        raise SystemExit("--loadgen wrk: wrk not found; install Debian's wrk (apt-get install wrk)")
    return wrk


def wrk_script(cookies: list[str], directory: Path) -> Path:
    """A wrk Lua script sending ``cookies`` in turn, one per request (none: no Cookie)."""
    path = directory / f"wrk-{len(list(directory.glob('wrk-*.lua')))}.lua"
    path.write_text(_WRK_SCRIPT % ", ".join(json.dumps(cookie) for cookie in cookies))
    return path


def load(
    port: int, cookies: list[str], sizes: Sizes, wrk: str | None, script: Path | None = None
) -> dict[str, float]:
    """Run the load generator once against ``port``; requests/s and latency in µs.

    Every request carries the next of ``cookies`` (wrk: ``script``, made by
    :func:`wrk_script` from them; loadgen.py: one per connection).
    """
    if wrk is not None:
        argv = [
            wrk, "-t1", f"-c{sizes.connections}", f"-d{max(1, round(sizes.seconds))}s",
            "--latency", f"http://127.0.0.1:{port}/",
        ]  # fmt: skip
        if script is not None:
            argv[1:1] = ["-s", str(script)]
        out = subprocess.run(  # noqa: S603 - argv is built here
            argv, capture_output=True, text=True, check=True, timeout=60
        ).stdout
        rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        return {
            "requests_per_s": float(rate.group(1)) if rate else float("nan"),
            "p50_us": _wrk_latency(out, "50"),
            "p90_us": _wrk_latency(out, "90"),
            "p99_us": _wrk_latency(out, "99"),
            "errors": float(bad.group(1)) if bad else 0.0,
        }
    argv = [
        sys.executable, "-m", "benchmarks.loadgen", "--port", str(port),
        "--connections", str(sizes.connections), "--duration", str(sizes.seconds),
    ]  # fmt: skip
    for cookie in cookies:
        argv += ["--cookie", cookie]
    out = subprocess.run(  # noqa: S603 - argv is built here
        argv, capture_output=True, text=True, check=True, timeout=60, cwd=ROOT
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def run(mode: Mode, progress: Progress) -> SectionResult:
    result = SectionResult(SECTION)
    sizes = Sizes.of(mode)
    wrk = find_wrk(mode)
    generator = "wrk" if wrk else "benchmarks/loadgen.py (asyncio)"
    result.info["load generator"] = f"{generator}, {sizes.connections} keep-alive connections"
    if mode.http == "httptools" and importlib.util.find_spec("httptools") is None:
        raise SystemExit("--http httptools: httptools is not installed (pip install httptools)")
    if mode.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise SystemExit("--loop uvloop: uvloop is not installed (pip install uvloop)")
    result.info["server"] = (
        f"uvicorn --http {mode.http} --loop {mode.loop}, 1 worker, 127.0.0.1, --no-access-log"
    )
    progress.begin(SECTION, f"starting servers ({generator})")
    started: list[servers.Server] = []
    backing: dict[str, servers.Server] = {}  # the stores' servers, stopped after the apps
    ports: dict[str, int] = {}
    cookies: dict[str, list[str]] = {}
    scripts: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="asgisession-bench-") as tmp:
        try:
            live = []
            for label, app, needs in CANDIDATES:
                if needs is not None and (why := _missing(needs)):
                    result.skipped.append(f"{label}: {why}")
                    progress.note(f"e2e: skipping {label}: {why}")
                    continue
                env = {
                    **os.environ,
                    "ASGISESSION_BENCH_APP": app,
                    "PYTHONPATH": os.pathsep.join(
                        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
                    ),
                }
                kind = backing_kind(app)
                if kind in ("redis", "memcached", "postgres") and kind not in backing:
                    backing[kind] = {
                        "redis": lambda: servers.redis_server(Path(tmp)),
                        "memcached": servers.memcached_server,
                        "postgres": servers.postgres_server,
                    }[kind]()
                if kind in ("redis", "memcached"):
                    env["ASGISESSION_BENCH_PORT"] = str(backing[kind].port)
                elif kind == "postgres":
                    env["ASGISESSION_BENCH_PG"] = servers.postgres_url(backing[kind].port)
                elif kind == "sqlite":
                    env["ASGISESSION_BENCH_DB"] = str(Path(tmp) / "e2e.db")
                port = servers.free_port()
                argv = [
                    sys.executable, "-m", "uvicorn", "benchmarks.e2e_app:factory", "--factory",
                    "--host", servers.LOOPBACK, "--port", str(port), "--log-level", "warning",
                    "--no-access-log", "--http", mode.http, "--loop", mode.loop,
                ]  # fmt: skip
                started.append(
                    servers.start(f"uvicorn {app}", argv, port, cwd=ROOT, env=env, wait=False)
                )
                ports[label] = port
                live.append(label)
            for server in started:  # they start in parallel; wait for all of them here
                servers.ready(server)
            sessions = SESSIONS if not mode.quick else 4
            for label in live:
                primed = [prime(ports[label]) for _ in range(sessions)]
                cookies[label] = [cookie for cookie in primed if cookie is not None]
                if label not in NO_SESSIONS and (len(cookies[label]) != sessions):
                    raise RuntimeError(f"{label}: a priming request set no session cookie")
                scripts[label] = wrk_script(cookies[label], Path(tmp))
            result.info["sessions"] = f"{sessions} per app, taken in turn by the requests"
            rates = {label: Measure(SECTION, "requests/s", label, "req/s") for label in live}
            p99s = {label: Measure(SECTION, "p99 latency", label, "us (p99)") for label in live}
            if not mode.quick:  # warm-up: first connections, lazy imports, caches
                for label in live:
                    load(
                        ports[label], cookies[label], Sizes(1, 1.0, sizes.connections), wrk,
                        scripts[label],
                    )  # fmt: skip
            for round_index in range(sizes.rounds):
                for label in rotations(live, round_index):
                    progress.tick(f"round {round_index + 1}/{sizes.rounds}: {label}")
                    figures = load(ports[label], cookies[label], sizes, wrk, scripts[label])
                    if figures.get("errors"):
                        raise RuntimeError(f"{label}: {figures['errors']} requests failed")
                    rates[label].samples.append(figures["requests_per_s"])
                    p99s[label].samples.append(figures["p99_us"])
            result.measures += list(rates.values()) + list(p99s.values())
            bare = rates[BARE]
            for label in live[1:]:
                result.ratio(
                    f"{label}: req/s / bare app", rates[label], bare, target=BARE_TARGETS.get(label)
                )
            for subject, baseline, target in COMPARISONS:
                if subject in rates and baseline in rates:
                    result.ratio(
                        f"{subject}: req/s / {baseline}",
                        rates[subject],
                        rates[baseline],
                        target=target,
                    )
        finally:
            for server in [*reversed(started), *backing.values()]:
                server.stop()
    return result
