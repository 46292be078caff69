"""Instructions per request inside a real uvicorn server: is the end-to-end gap more work?

``e2e_gap.py`` finds the server spending more CPU time per session read than the same
read costs in-process. This tells whether that is more *instructions* (more work done in
the server) or the same instructions running slower (caches and branch predictors cold
after the server's own code ran between two requests). It starts uvicorn (one worker; h11
on asyncio unless ``--http`` and ``--loop`` say otherwise) under ``valgrind
--tool=callgrind`` with an app of ``e2e_app.py``, sends ``--requests``
keep-alive requests from this process (not counted: another process), stops the server
with SIGINT and reads the instruction total; the same with no requests; the difference
divided by the count is the server's instructions per request. Apps on Redis or memcached
(``redis-write``, ``raw-redis``, ``starsessions-redis``, ``memcached-write``, ...) get a
real server of their own (not counted: another process), as do PostgreSQL apps, and
``sqlite-write`` and ``raw-sqlite`` a file.

Usage: ``python -m benchmarks.e2e_callgrind [--requests 2000] [--apps bare,cookie-read]
[--http h11|httptools] [--loop asyncio|uvloop]``
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from . import servers
from .bench_e2e import ROOT, backing_kind, prime


def _backing(app: str, where: Path) -> servers.Server | None:
    """The store server ``app`` talks to (a fresh one per measurement), if any."""
    kind = backing_kind(app)
    if kind == "redis":
        return servers.redis_server(where)
    if kind == "memcached":
        return servers.memcached_server()
    if kind == "postgres":
        return servers.postgres_server()
    return None


def total(app: str, requests: int, parser: str = "h11", loop: str = "asyncio") -> int:
    """Instructions of a uvicorn process serving ``app`` that answered ``requests`` requests."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    port = servers.free_port()
    env = {**os.environ, "ASGISESSION_BENCH_APP": app, "PYTHONHASHSEED": "0"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="asgisession-e2e-callgrind-") as where:
        backing = _backing(app, Path(where))
        if backing is not None:
            env["ASGISESSION_BENCH_PORT"] = str(backing.port)
            env["ASGISESSION_BENCH_PG"] = servers.postgres_url(backing.port)
        env["ASGISESSION_BENCH_DB"] = str(Path(where) / "e2e.db")
        argv = [
            valgrind, "--tool=callgrind", f"--callgrind-out-file={where}/out",
            sys.executable, "-m", "uvicorn", "benchmarks.e2e_app:factory", "--factory",
            "--host", servers.LOOPBACK, "--port", str(port), "--log-level", "warning",
            "--no-access-log", "--http", parser, "--loop", loop,
        ]  # fmt: skip
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
        process = subprocess.Popen(  # noqa: S603 - argv is built here
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            servers.wait_for_port(port, process, timeout=120)
            cookie = prime(port)  # every app gets this one request: it cancels out
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {"Cookie": cookie} if cookie else {}
            for _ in range(requests):
                conn.request("GET", "/", headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"{app}: answered {response.status}")
            conn.close()
        finally:
            os.kill(process.pid, signal.SIGINT)
            process.wait(timeout=120)
            if backing is not None:
                backing.stop()
        log.seek(0)
        output = log.read().decode(errors="replace")
        log.close()
    match = re.search(r"Collected\s*:\s*(\d+)", output)
    if match is None:
        raise SystemExit(f"{app}: no instruction count in valgrind's output:\n{output[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--apps", default="bare,cookie-read,cookie-write")
    parser.add_argument("--http", choices=("h11", "httptools"), default="h11")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    per: dict[str, float] = {}
    for app in args.apps.split(","):
        counted = total(app, args.requests, args.http, args.loop) - total(
            app, 0, args.http, args.loop
        )
        per[app] = counted / args.requests
        print(f"{app:<16} {per[app]:>10,.0f} instructions per request", flush=True)
    if "bare" in per:
        for app, count in per.items():
            if app != "bare":
                print(f"{app:<16} {count - per['bare']:>10,.0f} over the bare app")


if __name__ == "__main__":
    main()
