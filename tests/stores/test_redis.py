"""RedisStore: the contract on a real redis-server and a real three-node Redis Cluster, plus
ownership, the key layout, outages, and cancellation safety (through a reply-holding proxy)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from asgisession import ConfigurationError, StoreUnavailable
from asgisession.stores.base import Store, SupportsTouch, SupportsUserIndex
from asgisession.stores.redis import RedisStore

from ..redis_cluster import RedisClusterProcesses
from ..servers import LOOPBACK, ServerProcess, redis_server
from .contract import StoreContract, new_key


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: redis.asyncio, RedisStore's client, does not run under Trio."""
    return "asyncio"


def fresh_namespace() -> str:
    """A namespace no other test uses, so tests share a server without seeing each other."""
    return f"t{uuid.uuid4().hex}:"


def start_redis(workdir: Path) -> ServerProcess:
    """A redis-server logging to a file (nobody reads its stdout pipe while it runs)."""
    return redis_server(workdir, "--logfile", str(workdir / "redis.log"))


def url(server: ServerProcess) -> str:
    return f"redis://{LOOPBACK}:{server.port}/0"


@pytest.fixture(scope="module")
def redis_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
async def raw(redis_proc: ServerProcess) -> AsyncIterator[Redis]:
    """A plain client on the module's server, for looking behind the store's back."""
    client = Redis.from_url(url(redis_proc))
    yield client
    await client.aclose()


class TestRedisStore(StoreContract):
    @pytest.fixture
    async def store(self, redis_proc: ServerProcess) -> AsyncIterator[Store]:
        async with RedisStore.from_url(url(redis_proc), namespace=fresh_namespace()) as store:
            yield store


class TestRedisClusterStore(StoreContract):
    @pytest.fixture
    async def store(self, redis_cluster: RedisClusterProcesses) -> AsyncIterator[Store]:
        client = RedisCluster(host=LOOPBACK, port=redis_cluster.ports[0])
        async with RedisStore(client, namespace=fresh_namespace()) as store:
            yield store
        await client.aclose()


class HoldingProxy:
    """A loopback TCP proxy, one listener per upstream port, that can hold replies back.

    After ``hold()``, data from the servers stops in the proxy and ``reply_seen`` is set,
    so a test knows its command reached the server and can interrupt it while the reply
    is still on its way. ``release()`` lets the held data go on to the clients.
    """

    def __init__(self, upstream_ports: list[int]) -> None:
        self.upstream_ports = upstream_ports
        self.ports: dict[int, int] = {}  # upstream port -> listening port
        self.connections = 0
        self.reply_seen = asyncio.Event()
        self._released = asyncio.Event()
        self._released.set()
        self._servers: list[asyncio.Server] = []
        self._handlers: set[asyncio.Task[object]] = set()

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    async def start(self) -> HoldingProxy:
        for upstream in self.upstream_ports:

            async def handle(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: int = upstream
            ) -> None:
                await self._relay(reader, writer, upstream)

            server = await asyncio.start_server(handle, LOOPBACK, 0)
            self._servers.append(server)
            self.ports[upstream] = server.sockets[0].getsockname()[1]
        return self

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: int
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(LOOPBACK, upstream)

        async def pump(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, held: bool
        ) -> None:
            while data := await source.read(65536):
                if held and not self._released.is_set():
                    self.reply_seen.set()
                    await self._released.wait()
                sink.write(data)
                await sink.drain()
            sink.close()

        try:
            await asyncio.gather(
                pump(reader, up_writer, held=False),
                pump(up_reader, writer, held=True),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            pass  # aclose(); a cancelled connection callback would be logged as an error
        finally:
            writer.close()
            up_writer.close()
            self._handlers.discard(task)

    async def aclose(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()


async def seed(store: RedisStore) -> tuple[str, str]:
    """Two saved keys; the first also names an index with one member."""
    first, second = new_key(), new_key()
    await store.save(first, b"first", ttl=60)
    await store.save(second, b"second", ttl=60)
    await store.index_add(first, "member", expires_at=int(time.time()) + 60)
    return first, second


#: The store's bound in the cancellation tests: long enough that seeding through the
#: proxy on a loaded machine never trips it, short enough to keep the "timeout" cases quick.
STORE_TIMEOUT = 1.0


async def interrupt(store: RedisStore, proxy: HoldingProxy, key: str, how: str, op: str) -> None:
    """Run ``op`` with its reply held in the proxy, interrupt it, then let the reply go.

    ``how`` is "cancel" (the caller cancels the task) or "timeout" (the store's own
    timeout fires). Either way the stale reply is then released: on a connection that was
    wrongly kept, it waits in the socket and is read as the next command's reply.
    """
    proxy.hold()
    task: asyncio.Future[object] = asyncio.ensure_future(
        store.load(key) if op == "GET" else store.index_members(key, now=int(time.time()))
    )
    if how == "cancel":
        await asyncio.wait_for(proxy.reply_seen.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        with pytest.raises(StoreUnavailable, match="did not answer"):
            await task
        assert proxy.reply_seen.is_set()
    proxy.release()
    await asyncio.sleep(0.05)  # the stale reply reaches any client socket still open


@pytest.mark.anyio
class TestCancellationSafety:
    """A command cut off mid-flight must never leave its reply for the next command."""

    @pytest.mark.parametrize("op", ["GET", "MULTI"])
    @pytest.mark.parametrize("how", ["cancel", "timeout"])
    async def test_single_server(self, redis_proc: ServerProcess, how: str, op: str) -> None:
        """After a cancelled or timed-out command, the next GET reads its own key's value."""
        proxy = await HoldingProxy([redis_proc.port]).start()
        proxy_url = f"redis://{LOOPBACK}:{proxy.ports[redis_proc.port]}/0"
        # socket_timeout well above the store's timeout: the store's own bound cuts the
        # command off, not redis-py's socket read timeout.
        store = RedisStore.from_url(
            proxy_url, namespace=fresh_namespace(), timeout=STORE_TIMEOUT, socket_timeout=5
        )
        try:
            first, second = await seed(store)
            assert 1 == proxy.connections
            await interrupt(store, proxy, first, how, op)
            assert b"second" == await store.load(second)
            assert {"member"} == set(await store.index_members(first, now=0))
            # redis-py dropped the interrupted connection rather than reuse it.
            assert 2 == proxy.connections
        finally:
            await store.aclose()
            await proxy.aclose()

    @pytest.mark.parametrize("how", ["cancel", "timeout"])
    async def test_cluster(self, redis_cluster: RedisClusterProcesses, how: str) -> None:
        """The same holds for RedisCluster, with every node reached through the proxy."""
        proxy = await HoldingProxy(redis_cluster.ports).start()

        def through_proxy(address: tuple[str, int]) -> tuple[str, int]:
            _host, port = address
            return (LOOPBACK, proxy.ports[port]) if port in proxy.ports else address

        startup = proxy.ports[redis_cluster.ports[0]]
        client = RedisCluster(host=LOOPBACK, port=startup, address_remap=through_proxy)
        store = RedisStore(client, namespace=fresh_namespace(), timeout=STORE_TIMEOUT)
        try:
            first, _ = await seed(store)
            # The next GET must go to the same node, or it could not meet the stale reply.
            node = client.get_node_from_key(store.namespace + first)
            second = next(
                key
                for key in iter(new_key, "")
                if node == client.get_node_from_key(store.namespace + key)
            )
            await store.save(second, b"second", ttl=60)
            await interrupt(store, proxy, first, how, "GET")
            assert b"second" == await store.load(second)
            assert b"first" == await store.load(first)
        finally:
            await store.aclose()
            await client.aclose()
            await proxy.aclose()


@pytest.mark.anyio
class TestRedisStoreAdapter:
    """What the contract cannot see: configuration, ownership, layout and outages."""

    async def test_supports_every_protocol(self, redis_proc: ServerProcess) -> None:
        """RedisStore is a Store with touch and a user index."""
        async with RedisStore.from_url(url(redis_proc)) as store:
            assert (True, True) == (
                isinstance(store, SupportsTouch),
                isinstance(store, SupportsUserIndex),
            )

    def test_decoding_client_refused(self) -> None:
        """A client that decodes replies to str is refused, whether passed in or built."""
        for client in (
            Redis(decode_responses=True),
            RedisCluster(host=LOOPBACK, port=1, decode_responses=True),
        ):
            with pytest.raises(ConfigurationError, match="decode_responses=False"):
                RedisStore(client)
        with pytest.raises(ConfigurationError, match="decode_responses=False"):
            RedisStore.from_url("redis://127.0.0.1:1/0", decode_responses=True)
        with pytest.raises(ConfigurationError, match="decode_responses=False"):
            RedisStore.from_url("redis://127.0.0.1:1/0?decode_responses=True")

    @pytest.mark.parametrize("namespace", ["app{x}:", "}"])
    def test_braces_in_namespace_refused(self, namespace: str) -> None:
        """A namespace with a hash-tag brace is refused (it would pin all keys to one slot)."""
        with pytest.raises(ConfigurationError, match="hash tag"):
            RedisStore(Redis(), namespace=namespace)

    @pytest.mark.parametrize("timeout", [0, -1.0, True, float("nan"), float("inf"), "2"])
    def test_bad_timeout_refused(self, timeout: object) -> None:
        """A timeout that is not a positive finite number (or None) is refused."""
        with pytest.raises(ConfigurationError, match="timeout"):
            RedisStore(Redis(), timeout=timeout)  # type: ignore[arg-type]

    async def test_ttl_checked(self, redis_proc: ServerProcess) -> None:
        """A TTL that is not a whole number of seconds > 0 is refused before any I/O."""
        async with RedisStore.from_url(url(redis_proc)) as store:
            for ttl in (0, -1, 1.5, True):
                with pytest.raises(ConfigurationError):
                    await store.save("k", b"v", ttl=ttl)  # type: ignore[arg-type]
                with pytest.raises(ConfigurationError):
                    await store.touch("k", ttl=ttl)  # type: ignore[arg-type]

    async def client_names(self, raw: Redis) -> set[str]:
        return {entry["name"] for entry in await raw.client_list()}

    async def test_passed_in_client_is_not_closed(
        self, redis_proc: ServerProcess, raw: Redis
    ) -> None:
        """aclose() leaves a caller's client open, still on the same connection."""
        name = f"borrowed-{uuid.uuid4().hex}"
        client = Redis.from_url(url(redis_proc), client_name=name, single_connection_client=True)
        try:
            store = RedisStore(client, namespace=fresh_namespace())
            await store.save("k", b"v", ttl=60)
            connection_id = await client.client_id()
            await store.aclose()
            await store.aclose()
            assert name in await self.client_names(raw)
            assert connection_id == await client.client_id()
        finally:
            await client.aclose()

    async def test_from_url_waits_for_a_free_connection(self, redis_proc: ServerProcess) -> None:
        """More concurrent commands than pooled connections wait their turn; none fails.

        redis-py's default pool raised MaxConnectionsError past its limit (100), so a burst
        of 200 requests got 503s (found by tests/reliability/test_load.py).
        """
        store = RedisStore.from_url(url(redis_proc), namespace=fresh_namespace(), max_connections=2)
        async with store:
            await store.save("k", b"v", ttl=60)
            assert [b"v"] * 50 == await asyncio.gather(*(store.load("k") for _ in range(50)))

    async def test_from_url_client_is_closed(self, redis_proc: ServerProcess, raw: Redis) -> None:
        """aclose() closes the client from_url() built; a second aclose() is a no-op."""
        name = f"owned-{uuid.uuid4().hex}"
        store = RedisStore.from_url(url(redis_proc), client_name=name)
        await store.save("k", b"v", ttl=60)
        assert name in await self.client_names(raw)
        await store.aclose()
        await store.aclose()
        deadline = time.monotonic() + 2
        while name in await self.client_names(raw):
            assert time.monotonic() < deadline, "the owned connection is still open"
            await asyncio.sleep(0.02)
        with pytest.raises(StoreUnavailable, match="closed"):
            await store.load("k")

    async def test_touch_is_expire_only(self, redis_proc: ServerProcess, raw: Redis) -> None:
        """touch() sends EXPIRE and nothing that writes the value; TTL moves, data stays."""
        async with RedisStore.from_url(url(redis_proc), namespace=fresh_namespace()) as store:
            key = new_key()
            full = store.namespace + key
            await store.save(key, b"payload", ttl=10)
            encoding = await raw.object("encoding", full)
            await raw.config_resetstat()
            assert await store.touch(key, ttl=1000)
            stats = await raw.info("commandstats")
            assert 1 == stats["cmdstat_expire"]["calls"]
            written = {"cmdstat_set", "cmdstat_getex", "cmdstat_setex", "cmdstat_getset"}
            assert set() == written & stats.keys()
            assert 990 <= await raw.ttl(full) <= 1000
            assert (b"payload", encoding) == (
                await raw.get(full),
                await raw.object("encoding", full),
            )
            assert not await store.touch(new_key(), ttl=60)

    async def test_scripts_go_by_sha_and_survive_a_flush(
        self, redis_proc: ServerProcess, raw: Redis
    ) -> None:
        """save_if and index_add send their script's text until it has run (a cold store
        pays no NOSCRIPT round trip), then EVALSHA; after SCRIPT FLUSH (a restart, a
        promoted replica) one EVAL puts each script back, and the write still happens."""
        async with RedisStore.from_url(url(redis_proc), namespace=fresh_namespace()) as store:
            key, index = new_key(), new_key()

            async def both(n: int) -> None:
                found = await store.load_versioned(key)
                assert found is not None
                assert await store.save_if(key, b"%d" % n, ttl=60, version=found[1])
                await store.index_add(index, key, expires_at=int(time.time()) + 60)

            await store.save(key, b"one", ttl=60)
            await raw.script_flush()
            await raw.config_resetstat()
            await both(0)
            stats = await raw.info("commandstats")
            assert 2 == stats["cmdstat_eval"]["calls"]
            assert "cmdstat_evalsha" not in stats
            await raw.script_flush()
            await raw.config_resetstat()
            for n in range(1, 4):
                await both(n)
            stats = await raw.info("commandstats")
            # The first call of each after the flush is refused (NOSCRIPT), then sent whole.
            assert 2 == stats["cmdstat_eval"]["calls"]
            assert 6 == stats["cmdstat_evalsha"]["calls"]
            assert 2 == stats["cmdstat_evalsha"]["failed_calls"]
            assert b"3" == await raw.get(store.namespace + key)
            assert [key] == list(await store.index_members(index, now=int(time.time())))

    async def test_keys_carry_the_namespace(self, redis_proc: ServerProcess, raw: Redis) -> None:
        """Session and index keys live under the namespace, laid out as documented."""
        namespace = fresh_namespace()
        async with RedisStore.from_url(url(redis_proc), namespace=namespace) as store:
            key, index = new_key(), new_key()
            expires_at = int(time.time()) + 600
            await store.save(key, b"v", ttl=60)
            await store.index_add(index, key, expires_at=expires_at)
            expected = sorted([namespace + key, f"{namespace}idx:{{{index}}}"])
            assert [k.encode() for k in expected] == sorted(await raw.keys(namespace + "*"))
            assert 0 == await raw.exists(key)
            assert b"v" == await raw.get(namespace + key)
            assert [(key.encode(), float(expires_at))] == await raw.zrange(
                f"{namespace}idx:{{{index}}}", 0, -1, withscores=True
            )

    async def test_index_key_expires_after_its_latest_member(
        self, redis_proc: ServerProcess, raw: Redis
    ) -> None:
        """The index key expires a grace period after its latest member, not an earlier one."""
        async with RedisStore.from_url(url(redis_proc), namespace=fresh_namespace()) as store:
            index, now = new_key(), int(time.time())
            await store.index_add(index, "late", expires_at=now + 900)
            await store.index_add(index, "early", expires_at=now + 100)
            ttl = await raw.ttl(f"{store.namespace}idx:{{{index}}}")
            # expires at now + 900 + grace; the server's clock is now or a second past it
            assert 900 + RedisStore.index_grace - 2 <= ttl <= 900 + RedisStore.index_grace

    async def test_outage_and_recovery(self, tmp_path: Path) -> None:
        """A stopped server gives StoreUnavailable; after restart the same store works again."""
        server = start_redis(tmp_path)
        try:
            store = RedisStore.from_url(url(server), retry=Retry(NoBackoff(), 0))
            async with store:
                await store.save("k", b"v", ttl=60)
                server.stop()
                for operation in (
                    store.load("k"),
                    store.save("k", b"v", ttl=60),
                    store.touch("k", ttl=60),
                    store.delete("k"),
                    store.index_add("i", "m", expires_at=2**31),
                    store.index_remove("i", "m"),
                    store.index_members("i", now=0),
                ):
                    with pytest.raises(StoreUnavailable, match="failed") as caught:
                        await operation
                    assert isinstance(caught.value.__cause__, RedisConnectionError)
                server.restart()
                assert await store.save("k", b"back", ttl=60)
                assert b"back" == await store.load("k")
        finally:
            server.stop()

    async def test_timeout_bounds_an_unanswered_operation(self, tmp_path: Path) -> None:
        """With the server paused, an operation gives up at the store's timeout."""
        server = start_redis(tmp_path)
        try:
            async with RedisStore.from_url(url(server), timeout=0.3) as store:
                await store.save("k", b"v", ttl=60)
                assert server.process is not None
                server.process.send_signal(signal.SIGSTOP)
                try:
                    start = time.monotonic()
                    with pytest.raises(StoreUnavailable, match=r"within 0\.3 s"):
                        await store.load("k")
                    assert time.monotonic() - start < 1.0
                finally:
                    server.process.send_signal(signal.SIGCONT)
                assert b"v" == await store.load("k")
        finally:
            server.stop()


@pytest.mark.anyio
async def test_cluster_spreads_sessions_and_tags_indexes(
    redis_cluster: RedisClusterProcesses,
) -> None:
    """On a cluster, session keys spread over the nodes; an index key hashes by its tag."""
    client = RedisCluster(host=LOOPBACK, port=redis_cluster.ports[0])
    try:
        store = RedisStore(client, namespace=fresh_namespace())
        keys = [new_key() for _ in range(30)]
        for key in keys:
            await store.save(key, b"v", ttl=60)
        nodes = {str(client.get_node_from_key(store.namespace + key)) for key in keys}
        assert 3 == len(nodes)
        index = new_key()
        await store.index_add(index, "m", expires_at=int(time.time()) + 60)
        assert client.keyslot(index) == client.keyslot(f"{store.namespace}idx:{{{index}}}")
        assert {"m"} == set(await store.index_members(index, now=0))
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_cluster_first_calls_may_run_concurrently(
    redis_cluster: RedisClusterProcesses,
) -> None:
    """Concurrent first calls on a fresh RedisCluster client all succeed (redis-py 8.1 race)."""
    client = RedisCluster(host=LOOPBACK, port=redis_cluster.ports[0])

    async def save_touch_load(store: RedisStore, key: str) -> bytes | None:
        await store.save(key, key.encode(), ttl=60)
        await store.touch(key, ttl=60)
        return await store.load(key)

    try:
        store = RedisStore(client, namespace=fresh_namespace())
        keys = [new_key() for _ in range(50)]
        loaded = await asyncio.gather(*(save_touch_load(store, key) for key in keys))
        assert [key.encode() for key in keys] == loaded
    finally:
        await client.aclose()
