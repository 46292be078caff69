# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""A slow Redis or memcached, cold pool: the store's timeout is the only budget that counts.

The counter app (:mod:`tests.reliability.app`) is served by uvicorn in this test's event
loop and reaches a real redis-server or memcached through a
:class:`~tests.reliability.latency.LatencyProxy`. Fifty clients first make a session each
through one store; then a *new* store (a cold pool: no connection open yet) serves them
while every reply from the server comes ``latency`` seconds late, and all fifty ask at once
(a load and a save each):

* at 1.0 s of latency, under a 2 s store timeout, every request succeeds: making a
  connection costs no round trip of its own before the command, and the pool opens a
  connection per waiting request instead of making them queue;
* at 3.0 s, every request gets 503 with ``Retry-After``, at the timeout (not later).

The round-trip tests pin down what the Redis client settings change on a fresh connection;
the last ones, that calls slower than ``slow_after`` are logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.driver_info import DriverInfo

from asgisession import ConfigurationError, SessionMiddleware, StoreUnavailable
from asgisession.stores import MemcachedStore, RedisStore, SQLiteStore, Store

from ..servers import LOOPBACK, ServerProcess
from .app import counter_app
from .latency import LatencyProxy
from .serving import served_in_loop, write_results

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: redis.asyncio and aiomcache, the stores' clients, run on asyncio only."""
    return "asyncio"


TIMEOUT = 2.0
CLIENTS = 50
#: Beyond the timeout (and its one-eighth slack), what a 503 may take on a loaded machine.
MARGIN = 0.75


def new_store(kind: str, port: int, namespace: str, **options: Any) -> RedisStore | MemcachedStore:
    options.setdefault("timeout", TIMEOUT)
    if kind == "redis":
        return RedisStore.from_url(f"redis://{LOOPBACK}:{port}/0", namespace=namespace, **options)
    return MemcachedStore(LOOPBACK, port, namespace=namespace, **options)


@asynccontextmanager
async def serving(store: Store, secret: str) -> AsyncIterator[str]:
    app = SessionMiddleware(counter_app, secret_key_base=secret, store=store)
    async with served_in_loop(app) as base_url:
        yield base_url


class LoopLag:
    """How late this event loop ran a 50 ms sleep, at worst: time the machine's load took
    from every timer in the loop, the store's deadlines included."""

    def __init__(self) -> None:
        self.worst = 0.0

    async def watch(self) -> None:
        for _ in range(1200):  # a minute at most
            began = time.monotonic()
            await asyncio.sleep(0.05)
            self.worst = max(self.worst, time.monotonic() - began - 0.05)


async def timed_step(client: httpx.AsyncClient, base_url: str, marker: str) -> tuple[int, float]:
    began = time.monotonic()
    response = await client.get(f"{base_url}/step", params={"marker": marker})
    seconds = time.monotonic() - began
    if 200 == response.status_code:
        assert {"marker": marker, "count": 1} == response.json()["seen"]
    else:
        assert "5" == response.headers.get("retry-after")
    return response.status_code, seconds


async def cold_pool_burst(
    kind: str, server: ServerProcess, secret: str, latency: float
) -> dict[str, object]:
    """Sessions made at full speed, then all clients at once on a cold pool, ``latency`` late."""
    namespace = f"slow{uuid.uuid4().hex}:"
    markers = [f"m{n}" for n in range(CLIENTS)]
    async with AsyncExitStack() as stack:
        proxy = await stack.enter_async_context(LatencyProxy(server.port))
        clients = []
        for _ in markers:
            client = httpx.AsyncClient(timeout=30.0)
            stack.push_async_callback(client.aclose)
            clients.append(client)
        warm = new_store(kind, proxy.port, namespace)
        async with serving(warm, secret) as base_url:
            for client, marker in zip(clients, markers, strict=True):
                response = await client.get(f"{base_url}/step", params={"marker": marker})
                assert 200 == response.status_code
        await warm.aclose()

        proxy.latency = latency
        cold = new_store(kind, proxy.port, namespace)
        stack.push_async_callback(cold.aclose)
        async with serving(cold, secret) as base_url:
            lag = LoopLag()
            watching = asyncio.create_task(lag.watch())
            try:
                results = await asyncio.gather(
                    *(
                        timed_step(client, base_url, marker)
                        for client, marker in zip(clients, markers, strict=True)
                    )
                )
            finally:
                watching.cancel()
            # The store healed: every client is served, from the same pool, at once.
            proxy.latency = 0.0
            began = time.monotonic()
            for status in await asyncio.gather(
                *(client.get(f"{base_url}/read") for client in clients)
            ):
                assert 200 == status.status_code
            recovered = time.monotonic() - began
    statuses = [status for status, _ in results]
    seconds = [s for _, s in results]
    figures: dict[str, object] = {
        "store": kind, "latency_s": latency, "timeout_s": TIMEOUT, "clients": CLIENTS,
        "ok": statuses.count(200), "unavailable": statuses.count(503),
        "min_s": round(min(seconds), 3), "max_s": round(max(seconds), 3),
        "recovered_s": round(recovered, 3), "loop_lag_s": round(lag.worst, 3),
    }  # fmt: skip
    write_results(f"slow-{kind}-{latency}", figures)
    print(f"\nslow store {figures}")
    return figures


@pytest.mark.parametrize("kind", ["redis", "memcached"])
async def test_one_second_per_reply_serves_every_request(
    kind: str, request: pytest.FixtureRequest, secret: str
) -> None:
    """1.0 s per reply, 2 s timeout, cold pool, 50 at once: all 200 (load + save each)."""
    server: ServerProcess = request.getfixturevalue(f"{kind}_proc")
    figures = await cold_pool_burst(kind, server, secret, 1.0)
    assert CLIENTS == figures["ok"], figures


@pytest.mark.parametrize("kind", ["redis", "memcached"])
async def test_three_seconds_per_reply_is_503_at_the_timeout(
    kind: str, request: pytest.FixtureRequest, secret: str
) -> None:
    """3.0 s per reply: every request gets 503 + Retry-After, at the store's timeout."""
    server: ServerProcess = request.getfixturevalue(f"{kind}_proc")
    figures = await cold_pool_burst(kind, server, secret, 3.0)
    assert CLIENTS == figures["unavailable"], figures
    assert TIMEOUT * 0.95 <= figures["min_s"], figures  # type: ignore[operator]
    late = TIMEOUT * 1.125 + MARGIN + figures["loop_lag_s"]  # type: ignore[operator]
    assert figures["max_s"] <= late, figures  # type: ignore[operator]
    # Late replies never reach a new command; nobody waits for a connection that was closed.
    assert figures["recovered_s"] < TIMEOUT, figures  # type: ignore[operator]


async def test_memcached_opens_connections_as_commands_need_them(
    memcached_proc: ServerProcess,
) -> None:
    """One command on a cold pool opens one connection; a burst opens one per command."""
    async with LatencyProxy(memcached_proc.port, latency=0.2) as proxy:
        store = MemcachedStore(LOOPBACK, proxy.port, timeout=TIMEOUT, pool_size=20)
        try:
            assert None is await store.load("k")
            assert 1 == proxy.connections
            await asyncio.gather(*(store.load(f"k{n}") for n in range(10)))
            assert 10 == proxy.connections  # nine more, the first one reused
            await asyncio.gather(*(store.load(f"k{n}") for n in range(40)))
            assert 20 == proxy.connections  # never more than pool_size
        finally:
            await store.aclose()


# -- what a fresh Redis connection costs ------------------------------------------------------


ProxyTo = Callable[[int, float], Awaitable[LatencyProxy]]


async def round_trips_of_first_get(
    proxy_to: ProxyTo, server: ServerProcess, **client_options: object
) -> int:
    """Round trips a fresh connection makes until its first GET is answered."""
    proxy = await proxy_to(server.port, 0.0)
    store = RedisStore.from_url(f"redis://{LOOPBACK}:{proxy.port}/0", **client_options)
    try:
        await store.load("nothing-here")
    finally:
        await store.aclose()
    assert 1 == proxy.connections
    return proxy.round_trips


async def test_a_fresh_redis_connection_costs_one_round_trip(
    redis_proc: ServerProcess, latency_proxy: ProxyTo
) -> None:
    """from_url's defaults (RESP2, no CLIENT SETINFO): the GET is the only round trip."""
    assert 1 == await round_trips_of_first_get(latency_proxy, redis_proc)


async def test_what_each_redis_setting_adds(
    redis_proc: ServerProcess, latency_proxy: ProxyTo
) -> None:
    """RESP3 adds HELLO and CLIENT MAINT_NOTIFICATIONS; driver info adds CLIENT SETINFO."""
    assert 3 == await round_trips_of_first_get(latency_proxy, redis_proc, protocol=3)
    driver = DriverInfo()  # CLIENT SETINFO LIB-NAME and LIB-VER, sent together
    assert 2 == await round_trips_of_first_get(latency_proxy, redis_proc, driver_info=driver)
    # redis-py's own defaults (a client built without from_url): all of them.
    proxy = await latency_proxy(redis_proc.port, 0.0)
    client = Redis(host=LOOPBACK, port=proxy.port)
    try:
        await client.get("nothing-here")
    finally:
        await client.aclose()
    assert 4 == proxy.round_trips


async def test_a_redis_connection_set_up_past_the_timeout_joins_the_pool(
    redis_proc: ServerProcess,
) -> None:
    """A setup longer than the timeout fails its call, then serves the next one."""
    async with LatencyProxy(redis_proc.port, latency=1.0) as proxy:
        # RESP3 and database 1: HELLO, CLIENT MAINT_NOTIFICATIONS, SELECT, 3 s of setup.
        url = f"redis://{LOOPBACK}:{proxy.port}/1"
        store = RedisStore.from_url(url, protocol=3, timeout=TIMEOUT)
        try:
            began = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.load("k")
            assert time.monotonic() - began < TIMEOUT * 1.125 + MARGIN
            await asyncio.sleep(3.5 - (time.monotonic() - began))  # the setup is done
            began = time.monotonic()
            assert None is await store.load("k")
            assert time.monotonic() - began < TIMEOUT  # one round trip: the GET
            assert 1 == proxy.connections
        finally:
            await store.aclose()


async def test_closing_the_store_stops_a_setup_in_flight(redis_proc: ServerProcess) -> None:
    """aclose() during a connection's setup leaves no task behind."""
    async with LatencyProxy(redis_proc.port, latency=1.0) as proxy:
        before = asyncio.all_tasks()
        url = f"redis://{LOOPBACK}:{proxy.port}/1"
        store = RedisStore.from_url(url, protocol=3, timeout=0.5)
        with pytest.raises(StoreUnavailable):
            await store.load("k")
        await store.aclose()
        await asyncio.sleep(0.05)
        left = {t for t in asyncio.all_tasks() - before if t not in proxy.tasks and not t.done()}
        assert set() == left


# -- slow calls, seen before they time out ----------------------------------------------------

OPERATION = {"redis": ("Redis", "GET"), "memcached": ("memcached", "a get")}


@pytest.mark.parametrize("kind", ["redis", "memcached"])
async def test_calls_slower_than_slow_after_are_logged_and_counted(
    kind: str, request: pytest.FixtureRequest, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    """0.3 s per reply: each call is logged at WARNING (store, operation, duration) and
    counted on the store and on the middleware; once fast again, nothing more."""
    server: ServerProcess = request.getfixturevalue(f"{kind}_proc")
    caplog.set_level(logging.WARNING, "asgisession")
    name, operation = OPERATION[kind]
    async with LatencyProxy(server.port, latency=0.3) as proxy:
        store = new_store(kind, proxy.port, f"s{uuid.uuid4().hex}:", slow_after=0.2)
        middleware = SessionMiddleware(counter_app, secret_key_base=secret, store=store)
        try:
            for _ in range(2):
                assert None is await store.load("k")
            proxy.latency = 0.0
            assert None is await store.load("k")
        finally:
            await store.aclose()
    assert {operation: 2} == store.slow_calls
    assert {operation: 2} == middleware.slow_store_calls
    records = [r for r in caplog.records if r.getMessage().startswith("slow session store")]
    assert 2 == len(records)
    for record in records:
        assert logging.WARNING == record.levelno
        message = record.getMessage()
        assert f"{name} {operation} took 0.3" in message
        assert "slow_after=0.2 s" in message


@pytest.mark.parametrize("kind", ["redis", "memcached"])
async def test_slow_after_defaults_to_a_quarter_of_the_timeout(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """timeout=1.0: 0.3 s is slow by default; slow_after=None: never."""
    server: ServerProcess = request.getfixturevalue(f"{kind}_proc")
    async with LatencyProxy(server.port, latency=0.3) as proxy:
        by_default = new_store(kind, proxy.port, "d:", timeout=1.0)
        never = new_store(kind, proxy.port, "n:", timeout=1.0, slow_after=None)
        try:
            await by_default.load("k")
            await never.load("k")
        finally:
            await by_default.aclose()
            await never.aclose()
    assert 1 == sum(by_default.slow_calls.values())
    assert 0 == sum(never.slow_calls.values())


@pytest.mark.parametrize("kind", ["redis", "memcached"])
@pytest.mark.parametrize("value", [0, -1.0, float("inf"), True, "1"])
def test_bad_slow_after_is_refused(kind: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match="slow_after"):
        new_store(kind, 6379, "x:", slow_after=value)


async def test_sqlite_calls_slower_than_slow_after_are_counted(
    tmp_path: Path, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A save that waits 0.3 s for another connection's write lock is a slow call."""
    caplog.set_level(logging.WARNING, "asgisession")
    path = tmp_path / "sessions.db"
    async with SQLiteStore(path, slow_after=0.2) as store:
        middleware = SessionMiddleware(counter_app, secret_key_base=secret, store=store)
        await store.save("k", b"v", ttl=60)  # creates the tables
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            other.execute("BEGIN IMMEDIATE")
            asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
            await store.save("k", b"w", ttl=60)
        finally:
            other.close()
        assert b"w" == await store.load("k")
    assert {"a save": 1} == store.slow_calls
    assert {"a save": 1} == middleware.slow_store_calls
    assert any("SQLite a save took 0.3" in r.getMessage() for r in caplog.records)


def test_the_cookie_store_has_no_slow_calls(secret: str) -> None:
    assert {} == SessionMiddleware(counter_app, secret_key_base=secret).slow_store_calls
