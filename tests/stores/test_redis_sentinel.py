"""RedisStore through Redis Sentinel, and ``wait_replicas``: real primary, replica, sentinels.

The failover test stops the primary mid-test and checks that sessions written with
``wait_replicas=1`` before the stop are read back from the promoted replica, within a
bound, by the same store object (nothing restarted on the app's side).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import pytest
from redis.asyncio import Redis
from redis.asyncio.sentinel import SentinelConnectionPool

from asgisession import ConfigurationError, StoreUnavailable, stores
from asgisession.stores.redis import RedisStore

from ..redis_sentinel import (
    SERVICE,
    SentinelSetup,
    admin,
    primary_port,
    start_sentinels,
    wait_until,
)
from ..servers import LOOPBACK, ServerProcess, redis_server
from .contract import StoreContract, new_key

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: redis.asyncio, RedisStore's client, does not run under Trio."""
    return "asyncio"


#: Seconds the store may take to answer again after the primary stops: Sentinel's
#: down-after (1 s) plus election and promotion, with room for a loaded machine.
FAILOVER_BOUND = 15.0


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSetup]:
    """A primary, a replica and three sentinels, for one test (the failover changes them)."""
    setup = start_sentinels(tmp_path)
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture(scope="module")
def lone_primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A redis-server with no replica."""
    server = redis_server(tmp_path_factory.mktemp("lone"), "--logfile", "redis.log")
    try:
        yield server
    finally:
        server.stop()


def namespace() -> str:
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def shared_sentinels(redis_sentinels: SentinelSetup) -> SentinelSetup:
    """The module's primary, replica and sentinels (tests/conftest.py), which no test stops."""
    return redis_sentinels


class TestSentinelContract(StoreContract):
    """The store contract, through the sentinels to the primary, each write replicated."""

    @pytest.fixture
    async def store(self, shared_sentinels: SentinelSetup) -> AsyncIterator[RedisStore]:
        store = RedisStore.from_url(shared_sentinels.url, namespace=namespace(), wait_replicas=1)
        async with store:
            yield store


async def test_wait_replicas_script_survives_a_flush(shared_sentinels: SentinelSetup) -> None:
    """With wait_replicas, save_if's script and WAIT go in one pipeline; when the primary
    has lost the script, the pipeline is sent again with its text, and the write is
    replicated."""
    primary = Redis(host=LOOPBACK, port=primary_port(shared_sentinels))
    store = RedisStore.from_url(shared_sentinels.url, namespace=namespace(), wait_replicas=1)
    try:
        async with store:
            await store.save("k", b"one", ttl=60)
            for value in (b"two", b"three"):  # the second goes by sha, after the flush
                found = await store.load_versioned("k")
                assert found is not None
                assert await store.save_if("k", value, ttl=60, version=found[1])
                await primary.script_flush()
            assert found is not None
            assert not await store.save_if("k", b"four", ttl=60, version=found[1])
            assert b"three" == await store.load("k")
            stats = await primary.info("commandstats")
            assert stats["cmdstat_evalsha"]["failed_calls"] >= 1
    finally:
        await primary.aclose()


async def test_failover_keeps_what_replicas_acknowledged(sentinels: SentinelSetup) -> None:
    """Stop the primary: after the promotion, every session written with wait_replicas=1
    loads from the promoted replica, through the same store."""
    store = stores.from_url(sentinels.url + "?wait_replicas=1&timeout=1")
    assert isinstance(store, RedisStore)
    async with store:
        sessions = {new_key(): f"session {n}".encode() for n in range(50)}
        for key, value in sessions.items():
            assert await store.save(key, value, ttl=600)
        gone = await store.delete(next(iter(sessions)))  # a logout, also acknowledged
        assert gone
        old_primary = sentinels.primary.port
        sentinels.primary.stop()
        stopped = time.monotonic()

        failures = 0
        while True:
            try:
                if await store.load(new_key()) is None:
                    break
            except StoreUnavailable:
                failures += 1
            assert time.monotonic() - stopped < FAILOVER_BOUND, "no new primary in time"
            await asyncio.sleep(0.1)
        took = time.monotonic() - stopped
        assert failures > 0  # the primary was really gone for a while
        assert sentinels.replica.port == primary_port(sentinels) != old_primary
        first, *rest = sessions
        assert None is await store.load(first)  # the logout stays done
        for key in rest:
            assert sessions[key] == await store.load(key)
        # The new primary has no replica: a write that must reach one is refused, and says so.
        with pytest.raises(StoreUnavailable, match="0 of the 1 replicas"):
            await store.save(new_key(), b"x", ttl=60)
        print(f"failover: the store answered again {took:.1f} s after the primary stopped")

    # Without wait_replicas the same store writes to the new primary at once.
    async with RedisStore.from_url(sentinels.url) as plain:
        key = new_key()
        assert await plain.save(key, b"y", ttl=60)
        assert b"y" == await plain.load(key)


async def test_a_failover_the_store_did_not_see(sentinels: SentinelSetup) -> None:
    """SENTINEL FAILOVER with nothing stopped: the old primary becomes a replica while the
    store's pooled connection is still open to it. Its next write is refused there
    (READONLY), and the store reconnects to the new primary, within a bound."""
    old, new = sentinels.primary.port, sentinels.replica.port
    async with RedisStore.from_url(sentinels.url) as store:
        key = new_key()
        assert await store.save(key, b"before", ttl=600)
        with admin(sentinels.sentinels[0].port) as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
        wait_until("the replica promoted", lambda: primary_port(sentinels) == new)
        # The sentinels would make the old primary a replica at their next look at it (up
        # to 10 s); do it now, as they will.
        with admin(old) as demoted:
            demoted.replicaof(LOOPBACK, new)
            wait_until("the old primary a replica", lambda: demoted.info()["role"] == "slave")
        began, failures = time.monotonic(), 0
        while True:
            try:
                assert await store.save(key, b"after", ttl=600)
                break
            except StoreUnavailable:
                failures += 1
            assert time.monotonic() - began < FAILOVER_BOUND
            await asyncio.sleep(0.1)
        assert failures <= 1
        assert new == primary_port(sentinels)
        assert b"after" == await store.load(key)
        with admin(new) as promoted:
            assert "after" == promoted.get(store.namespace + key)


async def test_wait_replicas_reaches_the_replica(shared_sentinels: SentinelSetup) -> None:
    """When save returns, the replica has the write (WAIT on the write's own connection)."""
    async with RedisStore.from_url(shared_sentinels.url, wait_replicas=1) as store:
        with admin(shared_sentinels.replica.port) as replica:
            for n in range(30):
                key = new_key()
                await store.save(key, b"%d" % n, ttl=60)
                assert str(n) == replica.get(store.namespace + key)
                await store.touch(key, ttl=120)
                assert replica.ttl(store.namespace + key) > 60
                await store.delete(key)
                assert None is replica.get(store.namespace + key)


async def test_wait_replicas_waits_for_the_replica_to_have_it(
    shared_sentinels: SentinelSetup,
) -> None:
    """A replica that is connected but has not received the write does not count: with the
    replica's process paused (shorter than the sentinels' down-after), the write raises."""
    replica = shared_sentinels.replica.process
    assert replica is not None
    async with RedisStore.from_url(
        shared_sentinels.url, wait_replicas=1, wait_timeout=0.3
    ) as store:
        assert await store.save(new_key(), b"before", ttl=60)
        os.kill(replica.pid, signal.SIGSTOP)
        try:
            with pytest.raises(StoreUnavailable, match="0 of the 1 replicas"):
                await store.save(new_key(), b"paused", ttl=60)
        finally:
            os.kill(replica.pid, signal.SIGCONT)
        assert await store.save(new_key(), b"after", ttl=60)


async def test_wait_replicas_without_a_replica_fails_in_time(lone_primary: ServerProcess) -> None:
    """No replica to acknowledge: the write raises StoreUnavailable after wait_timeout (and
    is on the primary, as the message says); wait_replicas=0 does not wait."""
    url = f"redis://{LOOPBACK}:{lone_primary.port}/0"
    async with RedisStore.from_url(url, wait_replicas=1, wait_timeout=0.2) as store:
        began = time.monotonic()
        with pytest.raises(StoreUnavailable, match="written on the primary, but 0 of the 1"):
            await store.save("k", b"v", ttl=60)
        assert 0.15 < time.monotonic() - began < 1.5
        assert b"v" == await store.load("k")
        with pytest.raises(StoreUnavailable, match="index ZADD"):
            await store.index_add("u", "k", expires_at=int(time.time()) + 60)
    async with RedisStore.from_url(url + "?wait_replicas=0") as store:
        began = time.monotonic()
        assert await store.save("k", b"v", ttl=60)
        assert time.monotonic() - began < 0.5


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h/", "is not /service or /service/db"),
        ("redis+sentinel://h/m/x", "is not /service or /service/db"),
        ("redis+sentinel://h/m/0/1", "is not /service or /service/db"),
        ("redis+sentinel://h:x,g/m", "the host 'h:x' has a port that is not a number"),
        ("redis+sentinel://h/m?wait_replicas=-1", "wait_replicas='-1' is wrong"),
        ("redis+sentinel://h/m?wait_timeout=0", "wait_timeout='0' is wrong"),
        ("redis+sentinel://h/m?db=1", "the query parameter 'db' is not one this store takes"),
    ],
)
def test_bad_sentinel_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RedisStore.from_url(url)


async def test_sentinel_url_parts() -> None:
    """Hosts, default port, service, db and the Redis password reach the client."""
    store = RedisStore.from_url("redis+sentinel://:s3cret@a,b:26380/cache/3?namespace=n:")
    pool = cast("SentinelConnectionPool", cast("Redis", store.client).connection_pool)
    sentinel = store._sentinel
    assert sentinel is not None
    addresses = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in sentinel.sentinels
    ]
    assert [("a", 26379), ("b", 26380)] == addresses
    assert ("cache", 3, "s3cret") == (
        pool.service_name,
        pool.connection_kwargs["db"],
        pool.connection_kwargs["password"],
    )
    assert "n:" == store.namespace
    await store.aclose()


def test_wait_replicas_settings() -> None:
    client = Redis()
    assert (0, 1.0) == (RedisStore(client).wait_replicas, RedisStore(client).wait_timeout)
    with pytest.raises(ConfigurationError, match="wait_replicas=-1"):
        RedisStore(client, wait_replicas=-1)
    with pytest.raises(ConfigurationError, match="wait_timeout=0"):
        RedisStore(client, wait_replicas=1, wait_timeout=0)
