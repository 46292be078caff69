# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""Load: 200 concurrent clients against uvicorn, one session each, with every store.

The counter app (:mod:`tests.reliability.app`) runs under uvicorn in a child process on
127.0.0.1 with the cookie store, SQLite on a file, a real redis-server and a real memcached,
each with its default settings (store timeout 2 s, memcached pool of 50). 200 clients, each an
``httpx.AsyncClient`` with its own cookie jar and connection, send ``ROUNDS`` read-modify-write
requests one after another (``$ASGISESSION_LOAD_ROUNDS``, 5 by default), all clients at
once, then read their session back.

Afterwards: no 5xx (no status but 200 at all), every client saw its counter go 1, 2, ...,
ROUNDS with no step lost or repeated, and no response ever showed another client's marker.
Requests per second and latency percentiles are printed and written to
``build/reliability/load-<store>.json`` (or ``$ASGISESSION_RESULTS_DIR``), for
docs/reliability.md. They are measured, not asserted.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import platform
import ssl
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ..servers import ServerProcess
from .app import STORE_ENV
from .serving import cpu_seconds, percentile, uvicorn_process, write_results

pytestmark = pytest.mark.integration

CLIENTS = 200
#: Steps per client: 5 in the default suite; the figures in docs/reliability.md used 10.
ROUNDS = int(os.environ.get("ASGISESSION_LOAD_ROUNDS", "5"))
REQUEST_TIMEOUT = 60.0
STORES = ["cookie", "sqlite", "redis", "memcached"]


@dataclass
class Tally:
    """What the clients saw, gathered so that one failure does not hide the others."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    foreign_markers: list[str] = field(default_factory=list)
    counter_errors: list[str] = field(default_factory=list)
    cookies: set[str] = field(default_factory=set)

    def status(self, code: int) -> None:
        self.statuses[code] = self.statuses.get(code, 0) + 1


async def one_client(
    base_url: str, tally: Tally, start: asyncio.Event, tls: ssl.SSLContext
) -> None:
    """``ROUNDS`` read-modify-write steps on this client's own session, then a read."""
    marker = f"client-{uuid.uuid4().hex}"
    limits = httpx.Limits(max_connections=1)
    # One TLS context for all (unused over http): building 200 of them takes seconds.
    async with httpx.AsyncClient(
        base_url=base_url, timeout=REQUEST_TIMEOUT, limits=limits, verify=tls
    ) as client:
        await start.wait()
        for step in range(1, ROUNDS + 1):
            began = time.perf_counter()
            response = await client.get("/step", params={"marker": marker})
            tally.latencies.append(time.perf_counter() - began)
            tally.status(response.status_code)
            if response.status_code != 200:
                continue
            body = response.json()
            for seen in (body["seen"]["marker"], body["marker"]):
                if seen not in (None, marker):
                    tally.foreign_markers.append(seen)
            if (body["seen"]["count"], body["count"]) != (step - 1, step):
                tally.counter_errors.append(f"{marker} step {step}: {body}")
        final = await client.get("/read")
        tally.status(final.status_code)
        if final.status_code == 200 and {"marker": marker, "count": ROUNDS} != final.json():
            tally.counter_errors.append(f"{marker} final read: {final.json()}")
        tally.cookies.add(client.cookies.get("session") or "")


def store_spec(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if name == "sqlite":
        return f"sqlite:{tmp_path / 'sessions.db'}"
    if name in ("redis", "memcached"):
        server: ServerProcess = request.getfixturevalue(f"{name}_proc")
        return f"{name}:{server.port}"
    return name


@pytest.mark.parametrize("store", STORES)
def test_200_clients_keep_their_own_sessions(
    store: str, request: pytest.FixtureRequest, tmp_path: Path, secret: str
) -> None:
    """No 5xx, no lost or repeated counter step, no foreign marker; rate and p99 recorded."""
    env = {STORE_ENV: store_spec(store, request, tmp_path), "SECRET_KEY_BASE": secret}
    tally = Tally()
    load_before = os.getloadavg()[0]
    factory = "tests.reliability.app:app_from_env"
    with uvicorn_process(factory, env, tmp_path / "uvicorn.log") as (base_url, server):
        server_cpu_before = cpu_seconds(server.pid)
        client_cpu_before = time.process_time()

        async def run() -> float:
            start, tls = asyncio.Event(), ssl.create_default_context()
            clients = [
                asyncio.create_task(one_client(base_url, tally, start, tls)) for _ in range(CLIENTS)
            ]
            await asyncio.sleep(0.2)  # every client created before the first request
            began = time.perf_counter()
            start.set()
            await asyncio.gather(*clients)
            return time.perf_counter() - began

        seconds = asyncio.run(run())
        client_cpu = time.process_time() - client_cpu_before
        server_cpu_after = cpu_seconds(server.pid)

    requests = sum(tally.statuses.values())
    results = {
        "store": store,
        "clients": CLIENTS,
        "rounds": ROUNDS,
        "requests": requests,
        "seconds": round(seconds, 3),
        "requests_per_second": round(requests / seconds, 1),
        "p50_ms": round(percentile(tally.latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(tally.latencies, 0.99) * 1000, 1),
        "max_ms": round(max(tally.latencies) * 1000, 1),
        # CPU per request: where the time went, less dependent on the machine's other work.
        "client_cpu_ms_per_request": round(client_cpu / requests * 1000, 2),
        "server_cpu_ms_per_request": (
            None
            if server_cpu_before is None or server_cpu_after is None
            else round((server_cpu_after - server_cpu_before) / requests * 1000, 2)
        ),
        "statuses": {str(code): count for code, count in sorted(tally.statuses.items())},
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        # Other work on the machine shares the CPUs with the server and the clients.
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
    }
    path = write_results(f"load-{store}", results)
    print(  # the figures are the point of this test
        f"\nload {store}: {requests} requests in {seconds:.2f} s = "
        f"{results['requests_per_second']} req/s, p50 {results['p50_ms']} ms, "
        f"p99 {results['p99_ms']} ms, CPU ms/request: server "
        f"{results['server_cpu_ms_per_request']}, clients {results['client_cpu_ms_per_request']} "
        f"(written to {path})"
    )
    assert {200: CLIENTS * (ROUNDS + 1)} == tally.statuses
    assert [] == tally.counter_errors
    assert [] == tally.foreign_markers
    assert CLIENTS == len(tally.cookies - {""})  # a session cookie of its own each
