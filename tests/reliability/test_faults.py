# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""Faults, produced for real, between a served app and its Redis, memcached or PostgreSQL.

The counter app (:mod:`tests.reliability.app`) runs behind SessionMiddleware under uvicorn
in this test's event loop, on a loopback port, and reaches a real redis-server, memcached or
PostgreSQL through a :class:`~tests.faultproxy.FaultProxy`. Eight clients
(``httpx.AsyncClient``, each with its own cookie jar) build up a session each; then one
fault is switched on:

* ``cut``: every connection to the store is reset, and new ones too;
* ``blackhole``: the store's connections stall, both ways (bytes held, not lost);
* ``delay``: every reply from the store arrives ``DELAY`` seconds late (past the timeout);
* ``reset``: each reply is cut in half and its connection reset;
* ``stop``: the real server process is stopped, then started again on the same port.

During the fault every client asks for its session at once, and the test checks that:

1. each request that needs the session follows the outage policy (``503`` with
   ``Retry-After`` by default; an empty, unsaved session with ``on_store_error="anonymous"``)
   within ``TIMEOUT`` plus ``MARGIN`` seconds;
2. requests that do not need the session are served: ``/static`` (loaded, unused) after
   the timeout, ``/health`` (``defer_load``) at once;
3. the event loop stays responsive: a ``/health`` sent while the others wait is answered
   within ``RESPONSIVE`` seconds, before the waiting ones (for the stalling faults);

and after the fault is healed, without restarting anything:

4. every client's next request succeeds, with its own marker and its counter exactly where
   it was (nothing lost, nothing written twice; after ``stop`` the data of Redis and
   memcached, which persist nothing here, is gone, so each client starts afresh, never with
   another's session, while PostgreSQL's is on disk and each counter goes on). These
   requests run for as long as late replies can still arrive (``delay``, ``blackhole``),
   so a connection left holding a stale reply would hand it to one of them;
5. no task is left behind: the loop's tasks are those from before the fault (the proxy's
   own tasks aside).

Timing bounds are generous ("answered within"), for a loaded two-core CI machine; the
figures they guard are in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest

from asgisession import SessionMiddleware
from asgisession.stores import MemcachedStore, PostgresStore, RedisStore, Store

from ..faultproxy import FaultProxy
from ..servers import LOOPBACK, PostgresServer, ServerProcess
from .app import counter_app
from .serving import served_in_loop, write_results

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: the fault proxy runs on asyncio streams, before Redis, memcached and
    PostgreSQL, whose clients are asyncio's too."""
    return "asyncio"


#: Each store's own timeout (the one timer on a store call), in seconds. Not much less: on a loaded
#: two-core machine a healthy store call can take a few hundred milliseconds.
TIMEOUT = 1.0
#: What a request that needs the session may take beyond TIMEOUT during a fault.
MARGIN = 1.0
#: How late the ``delay`` fault delivers each reply: well past TIMEOUT.
DELAY = 2.0
#: Within this, a request that does not load the session is answered during a fault.
RESPONSIVE = 1.0
CLIENTS = 8
FAULTS = ["cut", "blackhole", "delay", "reset", "stop"]
Policy = Literal["unavailable", "anonymous"]


@dataclass
class Rig:
    """The served app, its store, the proxy in front of the store and the real server."""

    base_url: str
    proxy: FaultProxy
    server: ServerProcess | PostgresServer
    store: Store

    def start_fault(self, fault: str) -> None:
        if fault == "cut":
            self.proxy.cut()
        elif fault == "blackhole":
            self.proxy.blackhole()
        elif fault == "delay":
            self.proxy.delay(DELAY)
        elif fault == "reset":
            self.proxy.reset_mid_reply()
        else:
            assert "stop" == fault
            self.server.stop()

    def heal(self, fault: str) -> None:
        if fault == "stop":
            self.server.start()
        else:
            self.proxy.heal()


@asynccontextmanager
async def rig(
    kind: str, server: ServerProcess | PostgresServer, secret: str, policy: Policy
) -> AsyncIterator[Rig]:
    """Serve the counter app with ``kind``'s store reached through a fault proxy."""
    async with AsyncExitStack() as stack:
        proxy = await stack.enter_async_context(FaultProxy(server.port))
        namespace = f"f{uuid.uuid4().hex}:"
        store: Store
        if kind == "redis":
            url = f"redis://{LOOPBACK}:{proxy.port}/0"
            store = RedisStore.from_url(url, namespace=namespace, timeout=TIMEOUT)
        elif kind == "postgres":
            url = f"postgresql://postgres@{LOOPBACK}:{proxy.port}/postgres"
            store = PostgresStore(url, table=f"f{uuid.uuid4().hex}", timeout=TIMEOUT)
        else:
            store = MemcachedStore(port=proxy.port, namespace=namespace, timeout=TIMEOUT)
        stack.push_async_callback(store.aclose)
        app = SessionMiddleware(
            counter_app, secret_key_base=secret, store=store, on_store_error=policy,
            defer_load=["/health"],
        )  # fmt: skip
        base_url = await stack.enter_async_context(served_in_loop(app))
        yield Rig(base_url, proxy, server, store)


@dataclass
class Timed:
    response: httpx.Response
    seconds: float
    done_at: float


async def timed(client: httpx.AsyncClient, path: str, **params: str) -> Timed:
    began = time.monotonic()
    response = await client.get(path, params=params)
    now = time.monotonic()
    return Timed(response, now - began, now)


def check_step(timed_step: Timed, marker: str, before: int, after: int, phase: str) -> None:
    """A /step answered 200, with this client's marker and the counter from before to after."""
    response = timed_step.response
    assert 200 == response.status_code, f"{phase}: {response.text}"
    body: dict[str, Any] = response.json()
    assert {"marker": marker, "count": before} == body["seen"] or (
        0 == before and {"marker": None, "count": 0} == body["seen"]
    )
    assert (marker, after) == (body["marker"], body["count"])


async def leftover_tasks(baseline: set[asyncio.Task[Any]], proxy: FaultProxy) -> set[str]:
    """Tasks started since ``baseline`` that are still running after a short grace period."""
    deadline = time.monotonic() + 2.0
    while True:
        extra = {
            task
            for task in asyncio.all_tasks()
            if task not in baseline and task not in proxy.tasks and not task.done()
        }
        if not extra or time.monotonic() > deadline:
            return {repr(task.get_coro()) for task in extra}
        await asyncio.sleep(0.05)


async def run_fault(
    kind: str, fault: str, policy: Policy, server: ServerProcess | PostgresServer, secret: str
) -> None:
    """The scenario of the module docstring, for one store, fault and policy."""
    async with rig(kind, server, secret, policy) as served, AsyncExitStack() as clients_stack:
        tls = ssl.create_default_context()  # unused over http; one is cheaper than nine

        def new_client() -> httpx.AsyncClient:
            client = httpx.AsyncClient(base_url=served.base_url, timeout=30.0, verify=tls)
            clients_stack.push_async_callback(client.aclose)
            return client

        clients = [new_client() for _ in range(CLIENTS)]
        markers = [f"m-{n}-{uuid.uuid4().hex}" for n in range(CLIENTS)]
        pairs = list(zip(clients, markers, strict=True))
        bystander = new_client()  # no session: a load balancer's health check
        for round_ in (1, 2):
            steps = await asyncio.gather(
                *(timed(client, "/step", marker=marker) for client, marker in pairs)
            )
            for step, marker in zip(steps, markers, strict=True):
                check_step(step, marker, round_ - 1, round_, "before the fault")
        baseline = set(asyncio.all_tasks())

        # -- the fault ---------------------------------------------------------------------
        served.start_fault(fault)
        began = time.monotonic()
        waiting = [
            asyncio.create_task(timed(client, "/step", marker=marker)) for client, marker in pairs
        ]
        static = asyncio.create_task(timed(clients[0], "/static"))
        await asyncio.sleep(0.05)  # the session requests are in flight
        health = await timed(bystander, "/health")
        health_with_cookie = await timed(clients[1], "/health")
        steps = await asyncio.gather(*waiting)
        loaded_unused = await static

        assert 200 == health.response.status_code
        assert health.seconds < RESPONSIVE
        assert 200 == health_with_cookie.response.status_code
        assert health_with_cookie.seconds < RESPONSIVE
        if fault in ("blackhole", "delay"):  # the stalled requests were still waiting
            assert health_with_cookie.done_at < min(step.done_at for step in steps)
        assert 200 == loaded_unused.response.status_code
        assert loaded_unused.seconds < TIMEOUT + MARGIN
        for step in steps:
            assert step.seconds < TIMEOUT + MARGIN, step.seconds
            if policy == "unavailable":
                assert 503 == step.response.status_code
                assert "5" == step.response.headers["retry-after"]
                assert "set-cookie" not in step.response.headers
            else:  # an empty session, never written: the cookie stays as it was
                assert 200 == step.response.status_code
                assert {"marker": None, "count": 0} == step.response.json()["seen"]
                assert "set-cookie" not in step.response.headers
        newcomer = await timed(new_client(), "/step", marker="newcomer")
        assert 503 == newcomer.response.status_code  # its new session cannot be saved
        assert newcomer.seconds < TIMEOUT + MARGIN
        figures = {
            "store": kind, "fault": fault, "policy": policy, "store_timeout_s": TIMEOUT,
            "session_requests_max_s": round(max(step.seconds for step in steps), 3),
            "static_s": round(loaded_unused.seconds, 3),
            "health_s": round(max(health.seconds, health_with_cookie.seconds), 3),
            "newcomer_s": round(newcomer.seconds, 3),
        }  # fmt: skip

        # -- healed: the same app, store and clients serve again ----------------------------
        served.heal(fault)
        healed_at = time.monotonic()
        # Until late replies can no longer arrive (held ones flow on at once on heal).
        late = began + DELAY if fault == "delay" else healed_at
        until = max(healed_at, late) + 0.3
        # A stopped Redis or memcached forgot everything; PostgreSQL keeps it on disk.
        kept = fault != "stop" or kind == "postgres"
        count = 2 if kept else 0
        while True:
            steps = await asyncio.gather(
                *(
                    timed(client, "/step", marker=marker)
                    for client, marker in zip(clients, markers, strict=True)
                )
            )
            for step, marker in zip(steps, markers, strict=True):
                check_step(step, marker, count, count + 1, "after the heal")
            count += 1
            if time.monotonic() >= until:
                break
            await asyncio.sleep(0.1)
        assert 200 == (await timed(new_client(), "/step", marker="late")).response.status_code

        await clients_stack.aclose()
        assert set() == await leftover_tasks(baseline, served.proxy)
        figures["recovered_steps_per_client"] = count - (2 if kept else 0)
        write_results(f"faults-{kind}-{fault}-{policy}", figures)
        print(f"\nfaults {figures}")  # the margins, for docs/reliability.md


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("kind", ["redis", "memcached", "postgres"])
async def test_fault_gives_503_then_recovers(
    kind: str, fault: str, request: pytest.FixtureRequest, secret: str
) -> None:
    """Default policy: 503 + Retry-After within the timeout, then full recovery."""
    server: ServerProcess | PostgresServer = request.getfixturevalue(f"{kind}_proc")
    await run_fault(kind, fault, "unavailable", server, secret)


@pytest.mark.parametrize("fault", ["blackhole", "stop"])
@pytest.mark.parametrize("kind", ["redis", "memcached", "postgres"])
async def test_fault_gives_anonymous_sessions_then_recovers(
    kind: str, fault: str, request: pytest.FixtureRequest, secret: str
) -> None:
    """on_store_error="anonymous": empty unsaved sessions within the timeout, then recovery."""
    server: ServerProcess | PostgresServer = request.getfixturevalue(f"{kind}_proc")
    await run_fault(kind, fault, "anonymous", server, secret)
