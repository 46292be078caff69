"""Serving an app for real over loopback TCP: uvicorn in a child process, or in this event loop.

The load tests use a child process, so the server and the 200 clients do not share one
interpreter; the fault tests serve in the test's own loop, so they can look at that loop's
tasks and put a :class:`~tests.faultproxy.FaultProxy` in the same loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from asgisession._types import ASGIApp

from ..servers import LOOPBACK, free_port, stop_process, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 20.0
RESULTS_ENV = "ASGISESSION_RESULTS_DIR"


@contextmanager
def uvicorn_process(
    factory: str, env: Mapping[str, str], log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve ``factory`` (``module:function``) with uvicorn in a child process.

    Yields its URL and the process (for :func:`cpu_seconds`).
    """
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", LOOPBACK]
    command += ["--port", str(port), "--no-access-log", "--log-level", "warning", "--ws", "none"]
    # Longer than any pause of a client on a loaded machine: an idle connection closed by
    # the server just as the client reuses it would fail the request (a harness race).
    command += ["--timeout-keep-alive", "120"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            base_url = f"http://{LOOPBACK}:{port}"
            wait_until_serving(f"{base_url}/health", process, log, seconds=STARTUP_SECONDS)
            yield base_url, process
        finally:
            stop_process(process)


@asynccontextmanager
async def served_in_loop(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in the running event loop; yield its URL, then shut down."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", ws="none", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    # capture_signals() would take over SIGINT/SIGTERM from pytest while serving.
    server.capture_signals = _no_signals  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                pytest.fail("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextmanager
def _no_signals() -> Iterator[None]:
    yield


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process ``pid`` has used, from /proc; ``None`` elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields 14 and 15 of proc(5), utime and stime, counted from after the ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def write_results(name: str, results: dict[str, Any]) -> Path:
    """Write ``results`` as ``<name>.json`` under ``$ASGISESSION_RESULTS_DIR`` (default build/)."""
    directory = Path(os.environ.get(RESULTS_ENV) or ROOT / "build" / "reliability")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return path
