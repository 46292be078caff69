"""Where a session's end-to-end cost under uvicorn goes: server CPU, headers, GC, the generator.

``bench_e2e.py`` reports requests/s as a ratio to a bare app; this breaks the difference
down. Every app below runs in its own uvicorn process (one worker, 127.0.0.1, h11 as the
bench group installs it) at once, and ``wrk -t1`` visits them in rotating order, round
after round. For each run it records requests/s, the CPU seconds the server process used
(``/proc/<pid>/stat``) and the CPU seconds wrk used (``getrusage`` of the child), both
per request. The rows:

bare app / + request Cookie
    the bare app, without and with the session's ``Cookie`` header on every request
    (what parsing it costs the server).
bare + Vary / bare + write headers
    the bare app answering with the headers a session read adds (``Vary: Cookie``), or a
    write adds (``Vary``, a ``Set-Cookie`` as long as the real one, ``Cache-Control``).
cookie read / cookie read+write (and each with GC off)
    the cookie store's session read, and read+write, as in ``bench_e2e.py``; the GC-off
    twins run the same server with the garbage collector disabled.

In the same rounds, the same apps' requests are also timed in-process (the hand-made
requests of ``bench_middleware.py``, 2000 per batch, the collector paused): the server's
extra CPU per request set against what the middleware itself costs.

If the server is the bottleneck (it uses one core while wrk has the other), requests/s
is the inverse of the server's CPU per request, and the differences in that column add
up to the gap. Usage: ``python -m benchmarks.e2e_gap [--rounds 5] [--seconds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from . import servers
from .bench_e2e import ROOT, prime
from .harness import rotations

#: (label, e2e_app name, garbage collector on, sends the session cookie)
ROWS = [
    ("bare app", "bare", True, False),
    ("bare app + request Cookie", "bare", True, True),
    ("bare + Vary", "bare-vary", True, True),
    ("bare + write headers", "bare-setcookie", True, True),
    ("cookie read", "cookie-read", True, True),
    ("cookie read, GC off", "cookie-read", False, True),
    ("cookie read+write", "cookie-write", True, True),
    ("cookie read+write, GC off", "cookie-write", False, True),
]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def run_wrk(wrk: str, port: int, cookie: str | None, seconds: int, connections: int) -> float:
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"]
    if cookie:
        argv[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(  # noqa: S603 - argv is built here
        argv, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"port {port}: some requests failed:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else float("nan")


def in_process() -> dict[str, Callable[[], float]]:
    """µs per request in-process of the bare app, and of the cookie store's read and write."""
    from asgisession import SessionMiddleware

    from .bench_middleware import HEADERS, bare_app, batch, call, cookie_header, session_app
    from .codec import SECRET

    loop = asyncio.new_event_loop()
    seed = loop.run_until_complete(
        call(SessionMiddleware(session_app("seed"), secret_key_base=SECRET), HEADERS)
    )
    with_cookie = [*HEADERS, (b"cookie", cookie_header(seed))]
    runs = {
        "bare app": batch(bare_app, HEADERS),
        "cookie read": batch(
            SessionMiddleware(session_app("read"), secret_key_base=SECRET), with_cookie
        ),
        "cookie read+write": batch(
            SessionMiddleware(session_app("write"), secret_key_base=SECRET), with_cookie
        ),
    }

    def timer(run: Callable[[int], Any]) -> Callable[[], float]:
        def once() -> float:
            gc.disable()
            try:
                start = time.perf_counter_ns()
                loop.run_until_complete(run(2000))
                return (time.perf_counter_ns() - start) / 2000 / 1000
            finally:
                gc.enable()

        return once

    return {label: timer(run) for label, run in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3, help="per row per round")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("needs wrk on PATH (Debian: apt-get install wrk)")
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    started: dict[str, servers.Server] = {}
    cookies: dict[str, str | None] = {}
    try:

        def serve(label: str, app: str, gc_on: bool, set_cookie: str = "") -> servers.Server:
            env = {**os.environ, "ASGISESSION_BENCH_APP": app, "PYTHONPATH": pythonpath}
            env["ASGISESSION_BENCH_GC"] = "on" if gc_on else "off"
            env["ASGISESSION_BENCH_SETCOOKIE"] = set_cookie
            port = servers.free_port()
            argv = [
                sys.executable, "-m", "uvicorn", "benchmarks.e2e_app:factory", "--factory",
                "--host", servers.LOOPBACK, "--port", str(port), "--log-level", "warning",
                "--no-access-log",
            ]  # fmt: skip
            return servers.start(label, argv, port, cwd=ROOT, env=env)

        # The session apps first: their cookies (and a real Set-Cookie) feed the bare rows.
        real_set_cookie = ""
        for label, app, gc_on, _ in ROWS:
            if app.startswith("cookie"):
                started[label] = serve(label, app, gc_on)
                cookies[label] = prime(started[label].port)
        read_cookie = cookies["cookie read"]
        write_server = started["cookie read+write"]
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", write_server.port, timeout=10)
        conn.request("GET", "/", headers={"Cookie": cookies["cookie read+write"] or ""})
        response = conn.getresponse()
        response.read()
        real_set_cookie = response.getheader("set-cookie") or ""
        conn.close()
        for label, app, gc_on, with_cookie in ROWS:
            if not app.startswith("cookie"):
                started[label] = serve(label, app, gc_on, real_set_cookie)
                cookies[label] = read_cookie if with_cookie else None
        labels = [label for label, *_ in ROWS]
        rate: dict[str, list[float]] = {label: [] for label in labels}
        ratio: dict[str, list[float]] = {label: [] for label in labels}
        server_us: dict[str, list[float]] = {label: [] for label in labels}
        wrk_us: dict[str, list[float]] = {label: [] for label in labels}
        busy: dict[str, list[float]] = {label: [] for label in labels}
        for label in labels:  # warm-up
            run_wrk(wrk, started[label].port, cookies[label], 1, args.connections)
        timers = in_process()
        local: dict[str, list[float]] = {label: [] for label in timers}
        load_before = os.getloadavg()
        for round_index in range(args.rounds):
            bare_local = timers["bare app"]()
            for label, timer in timers.items():
                local[label].append(timer() - bare_local)
            this_round: dict[str, float] = {}
            for label in rotations(labels, round_index):
                pid = started[label].process.pid
                cpu_before = cpu_seconds(pid)
                children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
                wall = time.perf_counter()
                rps = run_wrk(wrk, started[label].port, cookies[label], args.seconds,
                              args.connections)  # fmt: skip
                wall = time.perf_counter() - wall
                children = resource.getrusage(resource.RUSAGE_CHILDREN)
                server_cpu = cpu_seconds(pid) - cpu_before
                wrk_cpu = (children.ru_utime - children_before.ru_utime) + (
                    children.ru_stime - children_before.ru_stime
                )
                requests = rps * args.seconds
                this_round[label] = rps
                rate[label].append(rps)
                server_us[label].append(server_cpu / requests * 1e6)
                wrk_us[label].append(wrk_cpu / requests * 1e6)
                busy[label].append(server_cpu / wall)
                print(f"  round {round_index + 1} {label}: {rps:,.0f} req/s", file=sys.stderr)
            for label in labels:
                ratio[label].append(this_round[label] / this_round["bare app"])
        load_after = os.getloadavg()
    finally:
        for server in started.values():
            server.stop()
    print(
        f"{args.rounds} rounds x {args.seconds} s per row, wrk -t1 -c{args.connections}; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; medians"
    )
    print(
        f"{'row':<28} {'req/s':>8} {'/ bare':>7} {'server us/req':>14} {'- bare':>7} "
        f"{'server cores':>13} {'wrk us/req':>11}"
    )
    print(
        "in-process, same rounds, overhead over the bare app (us/req): "
        + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in local.items() if k != "bare app")
    )
    bare_us = statistics.median(server_us["bare app"])
    for label in labels:
        us = statistics.median(server_us[label])
        print(
            f"{label:<28} {statistics.median(rate[label]):>8,.0f} "
            f"{statistics.median(ratio[label]):>6.3f}x {us:>14.1f} {us - bare_us:>7.1f} "
            f"{statistics.median(busy[label]):>13.2f} {statistics.median(wrk_us[label]):>11.1f}"
        )


if __name__ == "__main__":
    main()
