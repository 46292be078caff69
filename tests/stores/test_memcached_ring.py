"""MemcachedStore over several servers: where keys go, and what a server that stops costs.

The placement tests need no server (placement is arithmetic on the addresses). The others
start three real memcached processes, stop one mid-test and start it again on its port.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from asgisession import SessionMiddleware
from asgisession.errors import ConfigurationError, StoreUnavailable
from asgisession.stores.memcached import MemcachedStore

from ..asgi_helpers import client
from ..faultproxy import FaultProxy
from ..reliability.app import counter_app
from ..servers import LOOPBACK, ServerProcess
from .contract import StoreContract, new_key

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: aiomcache and the store's wire protocol are built on asyncio streams."""
    return "asyncio"


SECRET = "ring-test-secret-" + "x" * 48
KEYS = [f"k{i}" for i in range(10_000)]
#: Seconds a stopped server is skipped in these tests (30 by default).
DOWN = 3.0
#: Where session-0 ... session-7 go over 10.0.0.1-3 with namespace "app:" (blake2b, fixed).
EXPECTED = [
    "10.0.0.1",
    "10.0.0.3",
    "10.0.0.2",
    "10.0.0.2",
    "10.0.0.3",
    "10.0.0.1",
    "10.0.0.1",
    "10.0.0.1",
]


def placement(servers: list[tuple[str, int]]) -> dict[str, tuple[str, int]]:
    store = MemcachedStore(servers=servers)
    return {key: store.server_for(key) for key in KEYS}


def hosts(n: int) -> list[tuple[str, int]]:
    return [(f"10.0.0.{i}", 11211) for i in range(1, n + 1)]


def test_keys_spread_evenly() -> None:
    """Each of three servers holds about a third of 10,000 keys."""
    shares = Counter(placement(hosts(3)).values())
    assert 3 == len(shares)
    for count in shares.values():
        assert 0.27 < count / len(KEYS) < 0.40, shares


def test_adding_a_server_moves_about_a_quarter() -> None:
    """3 -> 4 servers moves ~1/4 of the keys, every one of them to the new server."""
    before, after = placement(hosts(3)), placement(hosts(4))
    moved = [key for key in KEYS if before[key] != after[key]]
    assert 0.19 < len(moved) / len(KEYS) < 0.31, len(moved)
    assert {hosts(4)[3]} == {after[key] for key in moved}


def test_removing_a_server_moves_only_its_keys() -> None:
    """4 -> 3 servers moves the removed server's keys (~1/4) and nothing else."""
    before, after = placement(hosts(4)), placement(hosts(3))
    moved = {key for key in KEYS if before[key] != after[key]}
    assert moved == {key for key in KEYS if before[key] == hosts(4)[3]}
    assert 0.19 < len(moved) / len(KEYS) < 0.31, len(moved)


def test_order_of_servers_does_not_matter() -> None:
    """Every process given the same servers, in any order, puts each key on the same one."""
    servers = hosts(5)
    shuffled = random.sample(servers, len(servers))
    assert placement(servers) == placement(shuffled)


def test_a_python_hash_seed_does_not_matter() -> None:
    """Placement is a stable hash: a known key lands where it always has."""
    store = MemcachedStore(servers=hosts(3), namespace="app:")
    # Computed once from blake2b: a salted hash() would differ from run to run.
    assert EXPECTED == [store.server_for(f"session-{n}")[0] for n in range(8)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"servers": []}, "give at least one"),
        ({"servers": "a:1,b:2"}, "give a list"),
        ({"servers": [("a", 1), ("a", 1)]}, "names a:1 twice"),
        ({"servers": [("a", 0)]}, "port=0"),
        ({"servers": ["a:b"]}, "give 'host:port'"),
        ({"servers": [("a", 1)], "port": 11212}, "not both"),
        ({"servers": [("a", 1)], "down_retry_delay": 0}, "down_retry_delay=0"),
    ],
)
def test_bad_servers(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MemcachedStore(**kwargs)


# -- three real servers ---------------------------------------------------------------------


@pytest.fixture
def three(memcached_ring_procs: list[ServerProcess]) -> list[ServerProcess]:
    """The module's three servers (tests/conftest.py), each running (a test before may
    have stopped one)."""
    for server in memcached_ring_procs:
        if server.process is None:
            server.start()
    return memcached_ring_procs


def ring(three: list[ServerProcess], **options: Any) -> MemcachedStore:
    options.setdefault("timeout", 1.0)
    options.setdefault("down_retry_delay", DOWN)
    return MemcachedStore(servers=[(LOOPBACK, s.port) for s in three], **options)


def keys_on(store: MemcachedStore, port: int, n: int) -> list[str]:
    """``n`` fresh keys whose server is the one on ``port``."""
    found: list[str] = []
    while len(found) < n:
        key = new_key()
        if store.server_for(key) == (LOOPBACK, port):
            found.append(key)
    return found


class TestRingContract(StoreContract):
    """The whole store contract holds over three servers."""

    @pytest.fixture
    async def store(self, three: list[ServerProcess]) -> AsyncIterator[MemcachedStore]:
        async with ring(three, namespace=f"t{secrets.token_hex(4)}:") as store:
            yield store


async def test_each_key_is_on_its_own_server(three: list[ServerProcess]) -> None:
    """A key written through the ring is on its server, and only there."""
    async with ring(three) as store:
        direct = [MemcachedStore(LOOPBACK, s.port) for s in three]
        try:
            for server, alone in zip(three, direct, strict=True):
                for key in keys_on(store, server.port, 5):
                    assert await store.save(key, b"v", ttl=60)
                    held = [await other.load(key) for other in direct]
                    assert [b"v" if other is alone else None for other in direct] == held
        finally:
            for alone in direct:
                await alone.aclose()


async def test_user_index_lives_on_one_server(three: list[ServerProcess]) -> None:
    """An index is one item on the server its key hashes to; members anywhere."""
    async with ring(three) as store:
        members = [new_key() for _ in range(12)]
        far = int(time.time()) + 600
        for member in members:
            await store.index_add("user:7", member, expires_at=far)
        assert dict.fromkeys(members, far) == await store.index_members("user:7", now=0)
        host, port = store.server_for("user:7")
        async with MemcachedStore(host, port) as alone:
            assert dict.fromkeys(members, far) == await alone.index_members("user:7", now=0)


async def test_a_stopped_server_fails_over_and_comes_back(
    three: list[ServerProcess], caplog: pytest.LogCaptureFixture
) -> None:
    """failover=True: a stopped server's keys go elsewhere, the others are untouched."""
    caplog.set_level(logging.WARNING, "asgisession")
    stopped = three[1]
    async with ring(three) as store:
        mine = keys_on(store, stopped.port, 4)
        others = [k for s in (three[0], three[2]) for k in keys_on(store, s.port, 4)]
        for key in mine + others:
            await store.save(key, key.encode(), ttl=60)
        stopped.stop()
        # The first command to find it stopped fails: that request gets the outage policy.
        with pytest.raises(StoreUnavailable, match=f"{stopped.port}"):
            await store.load(mine[0])
        assert "marked down for 3.0 s" in caplog.text
        for key in others:  # unaffected, throughout
            assert key.encode() == await store.load(key)
        for key in mine:  # meanwhile on the next server, where they are not: sessions ended
            assert None is await store.load(key)
        assert await store.save(mine[0], b"new", ttl=60)
        assert b"new" == await store.load(mine[0])
        stopped.start()  # same port, empty
        # Still skipped until the delay has passed.
        assert b"new" == await store.load(mine[0])
        await asyncio.sleep(DOWN)
        assert None is await store.load(mine[0])  # back on its own (restarted, empty) server
        assert "answers again" in caplog.text
        assert await store.save(mine[1], b"back", ttl=60)
        async with MemcachedStore(LOOPBACK, stopped.port) as alone:
            assert b"back" == await alone.load(mine[1])
        for key in others:
            assert key.encode() == await store.load(key)


async def test_without_failover_its_keys_fail_fast(three: list[ServerProcess]) -> None:
    """failover=False: a down server's keys fail at once without trying it; others work."""
    stopped = three[2]
    async with ring(three, failover=False) as store:
        mine = keys_on(store, stopped.port, 3)
        others = [k for s in three[:2] for k in keys_on(store, s.port, 3)]
        for key in mine + others:
            await store.save(key, b"v", ttl=60)
        stopped.stop()
        with pytest.raises(StoreUnavailable, match="failed a get"):
            await store.load(mine[0])
        for key in mine:
            began = time.monotonic()
            with pytest.raises(StoreUnavailable, match=r"s more \(failover=False\)"):
                await store.save(key, b"w", ttl=60)
            assert time.monotonic() - began < 0.05
        for key in others:
            assert b"v" == await store.load(key)
        with pytest.raises(StoreUnavailable):
            await store.ping()  # without failover, one server down is the store down
        stopped.start()
        await asyncio.sleep(DOWN)
        assert await store.save(mine[0], b"w", ttl=60)
        assert b"w" == await store.load(mine[0])
        await store.ping()


async def test_ping_with_failover_needs_one_server(three: list[ServerProcess]) -> None:
    async with ring(three) as store:
        await store.ping()
        three[0].stop()
        await store.ping()  # the others carry its keys
        three[1].stop()
        three[2].stop()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable, match="every memcached server"):
            await store.load("k")


class KeyRecorder:
    """A store that notes the key of every ``save``, then hands the call on."""

    def __init__(self, inner: MemcachedStore) -> None:
        self.inner = inner
        self.saved: list[str] = []

    async def load(self, key: str) -> bytes | None:
        return await self.inner.load(key)

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        self.saved.append(key)
        return await self.inner.save(key, data, ttl=ttl, replace=replace)

    async def delete(self, key: str) -> bool:
        return await self.inner.delete(key)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def step(browser: httpx.AsyncClient, marker: str) -> tuple[int, Any]:
    response = await browser.get(f"/step?marker={marker}")
    return response.status_code, response.json() if response.status_code == 200 else None


async def test_sessions_through_the_middleware(three: list[ServerProcess]) -> None:
    """Served sessions: the stopped server's users get one 503, then a new empty session;
    everyone else keeps their session throughout, and the server is used again after."""
    stopped = three[0]
    async with ring(three) as store:
        recorder = KeyRecorder(store)
        app = SessionMiddleware(counter_app, secret_key_base=SECRET, store=recorder)
        browsers = [client(app) for _ in range(15)]
        on: dict[int, tuple[str, int]] = {}
        for n, browser in enumerate(browsers):
            assert (200, {"seen": {"marker": None, "count": 0}, "marker": f"c{n}", "count": 1}) == (
                await step(browser, f"c{n}")
            )
            on[n] = store.server_for(recorder.saved[-1])
        hit = [n for n in on if on[n][1] == stopped.port]
        spared = [n for n in on if n not in hit]
        assert hit, on
        assert spared, on
        stopped.stop()

        status, _ = await step(browsers[hit[0]], f"c{hit[0]}")
        assert 503 == status
        for n in spared:
            status, body = await step(browsers[n], f"c{n}")
            assert (200, {"marker": f"c{n}", "count": 1}) == (status, body["seen"])
        for n in hit:  # a new, empty session, kept on another server meanwhile
            status, body = await step(browsers[n], f"c{n}")
            assert (200, {"marker": None, "count": 0}) == (status, body["seen"])
        stopped.start()
        await asyncio.sleep(DOWN)
        for n in spared:
            status, body = await step(browsers[n], f"c{n}")
            assert (200, {"marker": f"c{n}", "count": 2}) == (status, body["seen"])
        # New sessions land on the restarted server again, and are kept there.
        landed: list[str] = []
        for n in range(30):
            async with client(app) as fresh:
                assert 200 == (await step(fresh, f"f{n}"))[0]
            if store.server_for(recorder.saved[-1]) == (LOOPBACK, stopped.port):
                landed.append(recorder.saved[-1])
        assert landed
        async with MemcachedStore(LOOPBACK, stopped.port) as alone:
            for key in landed:
                assert None is not await alone.load(key)
        for browser in browsers:
            await browser.aclose()


async def test_a_server_that_stalls(three: list[ServerProcess]) -> None:
    """A server that stops answering without closing (a stall, through a proxy): its
    commands fail at the timeout, the others' are served meanwhile, then it is skipped; when
    it answers again, its sessions come back as they were (documented: it kept its memory)."""
    async with FaultProxy(three[0].port) as proxy:
        servers = [(LOOPBACK, proxy.port), *((LOOPBACK, s.port) for s in three[1:])]
        async with MemcachedStore(servers=servers, timeout=0.5, down_retry_delay=2.0) as store:
            mine = keys_on(store, proxy.port, 5)
            others = [k for s in three[1:] for k in keys_on(store, s.port, 5)]
            for key in mine + others:
                await store.save(key, key.encode(), ttl=60)
            proxy.blackhole()

            async def timed_load(key: str) -> tuple[bytes | Exception | None, float]:
                began = time.monotonic()
                try:
                    value: bytes | Exception | None = await store.load(key)
                except StoreUnavailable as exc:
                    value = exc
                return value, time.monotonic() - began

            results = await asyncio.gather(*(timed_load(key) for key in mine + others))
            for value, took in results[: len(mine)]:
                assert isinstance(value, StoreUnavailable)
                assert 0.4 < took < 1.5
            for key, (value, took) in zip(others, results[len(mine) :], strict=True):
                assert key.encode() == value
                assert took < 0.4  # not held up by the stalled server
            for key in mine:  # skipped now: the next server, where they are not, at once
                value, took = await timed_load(key)
                assert (None, True) == (value, took < 0.4)
            proxy.heal()
            await asyncio.sleep(2.0)
            for key in mine:
                assert key.encode() == await store.load(key)


async def test_one_command_tries_a_server_after_its_delay(three: list[ServerProcess]) -> None:
    """After the delay, one command tries the still-stalled server; the others meanwhile go
    to the next server at once instead of all waiting for the timeout."""
    async with FaultProxy(three[0].port) as proxy:
        servers = [(LOOPBACK, proxy.port), *((LOOPBACK, s.port) for s in three[1:])]
        async with MemcachedStore(servers=servers, timeout=0.5, down_retry_delay=0.5) as store:
            mine = keys_on(store, proxy.port, 10)
            proxy.blackhole()
            with pytest.raises(StoreUnavailable, match="did not answer"):
                await store.load(mine[0])
            await asyncio.sleep(0.6)  # the delay has passed: due for a try

            async def outcome(key: str) -> str:
                try:
                    await store.load(key)
                except StoreUnavailable:
                    return "failed"
                return "next server"

            began = time.monotonic()
            tries = asyncio.gather(*(outcome(key) for key in mine))
            results = await tries
            assert 1 == results.count("failed"), results  # the one try, at the timeout
            assert time.monotonic() - began < 1.5
            proxy.heal()
