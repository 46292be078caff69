"""MemcachedStore: the contract against a real memcached, then keys, TTLs, sizes, failures,
the cancellation guard, the user index and client ownership."""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiomcache
import pytest

from asgisession.errors import ConfigurationError, StoreUnavailable
from asgisession.stores._memcached_protocol import Slots
from asgisession.stores.base import Store, SupportsTouch, SupportsUserIndex
from asgisession.stores.memcached import (
    ITEM_OVERHEAD,
    RELATIVE_TTL_LIMIT,
    IndexContention,
    ItemTooLarge,
    MemcachedStore,
    exptime,
)

from ..servers import LOOPBACK, ServerProcess, free_port, memcached_server
from .contract import StoreContract, new_key, wait_until_gone

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: aiomcache and the store's wire protocol are built on asyncio streams."""
    return "asyncio"


DAY = 86_400
VALID_KEY = re.compile(rb"[!-~]{1,250}")
ODD_KEYS = ["has space", "tab\there", "nul\x00", "new\nline", "del\x7f", "caf\u00e9", "x" * 300]


@pytest.fixture(scope="module")
def memcached(memcached_proc: ServerProcess) -> ServerProcess:
    """The module's memcached (tests/conftest.py); tests keep apart by namespace."""
    return memcached_proc


@pytest.fixture
def own_memcached() -> Iterator[ServerProcess]:
    """A memcached for one test: to stop it, or to count its connections."""
    server = memcached_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def namespace() -> str:
    """A fresh namespace, so no test sees another's keys."""
    return f"t{secrets.token_hex(6)}:"


@pytest.fixture
async def store(memcached: ServerProcess, namespace: str) -> AsyncIterator[MemcachedStore]:
    """A store on the module's memcached, in a fresh namespace."""
    async with MemcachedStore(port=memcached.port, namespace=namespace) as store:
        yield store


class TestMemcachedStore(StoreContract):
    @pytest.fixture
    async def store(self, memcached: ServerProcess, namespace: str) -> AsyncIterator[Store]:
        async with MemcachedStore(port=memcached.port, namespace=namespace) as store:
            yield store


# -- helpers: a holding proxy, a fake server, memcached's connection count --------------


class HoldingProxy:
    """A loopback proxy to memcached that holds back one reply for ``delay`` seconds.

    The reply held is the one to the first request starting with ``prefix``; later
    requests pass straight through. ``connections`` counts the connections accepted.
    """

    def __init__(self, upstream: int, prefix: bytes, delay: float) -> None:
        self.upstream = upstream
        self.prefix = prefix
        self.delay = delay
        self.connections = 0
        self.port = 0
        self._armed = True
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> HoldingProxy:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        self._writers.append(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.upstream)
        except OSError:
            writer.close()
            return
        self._writers.append(up_writer)
        held: list[bool] = []
        await asyncio.gather(
            self._pump(reader, up_writer, held, requests=True),
            self._pump(up_reader, writer, held, requests=False),
        )

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        held: list[bool],
        *,
        requests: bool,
    ) -> None:
        try:
            while data := await source.read(65536):
                if requests and self._armed and data.startswith(self.prefix):
                    self._armed = False
                    held.append(True)
                elif not requests and held:
                    held.clear()
                    await asyncio.sleep(self.delay)
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()


class FakeMemcached:
    """A loopback server that records requests and answers each read with ``answer(data)``.

    ``answer`` returning ``None`` means no reply; ``close=True`` closes the connection after
    the first reply.
    """

    def __init__(self, answer: Callable[[bytes], bytes | None], *, close: bool = False) -> None:
        self.answer = answer
        self.close = close
        self.requests: list[bytes] = []
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> FakeMemcached:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            while data := await reader.read(65536):
                self.requests.append(data)
                reply = self.answer(data)
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
                    if self.close:
                        break
        except OSError:
            pass
        finally:
            writer.close()


async def client_connections(port: int) -> int:
    """memcached's count of open connections, not counting the one that asks."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(b"stats\r\n")
        await writer.drain()
        stats = {}
        while (line := await reader.readline()) != b"END\r\n":
            _, name, value = line.decode().split(maxsplit=2)
            stats[name] = value.strip()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(stats["curr_connections"]) - 1


async def total_connections(port: int) -> int:
    """memcached's count of connections accepted since it started, the asker's included."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(b"stats\r\n")
        await writer.drain()
        while (line := await reader.readline()) != b"END\r\n":
            _, name, value = line.decode().split(maxsplit=2)
            if name == "total_connections":
                return int(value)
    finally:
        writer.close()
        await writer.wait_closed()
    raise AssertionError("memcached's stats have no total_connections")


async def idle_connections(port: int) -> int:
    """The connection count once stray closes (the start-up probe, earlier askers) land."""
    counts = []
    for _ in range(5):
        counts.append(await client_connections(port))
        await asyncio.sleep(0.02)
    return min(counts)


async def wait_for_connections(port: int, expected: int, limit: float = 3.0) -> None:
    """Poll until memcached counts ``expected`` connections (closes reach it a bit later)."""
    deadline = time.monotonic() + limit
    while (count := await client_connections(port)) != expected:
        assert time.monotonic() < deadline, f"{count} connections, expected {expected}"
        await asyncio.sleep(0.02)


# -- protocols and settings -----------------------------------------------------------


def test_implements_every_store_protocol() -> None:
    """MemcachedStore is a Store, SupportsTouch and SupportsUserIndex, so no contract skips."""
    store = MemcachedStore()
    assert isinstance(store, Store)
    assert isinstance(store, SupportsTouch)
    assert isinstance(store, SupportsUserIndex)


def test_construction_opens_nothing() -> None:
    """Building a store outside any event loop works; the client comes on first use."""
    assert None is MemcachedStore().client


@pytest.mark.parametrize("namespace", ["has space", "tab\t", "nl\n", "nul\x00", "caf\u00e9", None])
def test_namespace_is_checked(namespace: object) -> None:
    """A namespace memcached keys cannot carry is a ConfigurationError at construction."""
    with pytest.raises(ConfigurationError, match="namespace"):
        MemcachedStore(namespace=namespace)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "setting",
    [
        {"host": ""},
        {"port": 0},
        {"port": 65536},
        {"port": True},
        {"pool_size": 0},
        {"pool_size": 1.5},
        {"timeout": 0},
        {"timeout": -1.0},
        {"timeout": float("inf")},
        {"timeout": float("nan")},
        {"timeout": True},
        {"max_item_size": 1000},
        {"client": object()},
    ],
)
def test_settings_are_checked(setting: dict[str, object]) -> None:
    """Each invalid setting is a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=next(iter(setting))):
        MemcachedStore(**setting)  # type: ignore[arg-type]


# -- keys -----------------------------------------------------------------------------


def test_valid_key_is_namespace_plus_key() -> None:
    """A printable key within the limit goes on the wire as namespace + key."""
    assert b"app:s:abc" == MemcachedStore(namespace="app:").memcached_key("s:abc")


@pytest.mark.parametrize("key", [*ODD_KEYS, "\ud800", "#looks-hashed"])
def test_any_key_becomes_a_valid_memcached_key(key: str) -> None:
    """Keys memcached would refuse are hashed into a valid one; the raw input never appears."""
    wire = MemcachedStore(namespace="app:").memcached_key(key)
    assert VALID_KEY.fullmatch(wire)
    assert len("app:#") + 64 == len(wire)
    assert wire.startswith(b"app:#")
    assert key.encode("utf-8", "surrogatepass") not in wire


def test_distinct_keys_stay_distinct() -> None:
    """Hashing keeps keys apart, including a key spelled like another key's hash."""
    store = MemcachedStore(namespace="app:")
    hashed = store.memcached_key("a b")
    lookalike = hashed.decode().removeprefix("app:")
    assert hashed != store.memcached_key(lookalike)
    keys = ["a b", "a  b", "a\tb", "x" * 246, "x" * 247, "x" * 300]
    assert len(keys) == len({store.memcached_key(key) for key in keys})


def test_overlong_namespace_still_yields_valid_keys() -> None:
    """A namespace too long to prefix is hashed in: keys stay valid, short and distinct."""
    long_a, long_b = "n" * 299 + "a", "n" * 299 + "b"
    for key in (new_key(), "a b"):
        wire = MemcachedStore(namespace=long_a).memcached_key(key)
        assert VALID_KEY.fullmatch(wire)
        assert b"n" * 200 not in wire
    assert MemcachedStore(namespace=long_a).memcached_key("k") != MemcachedStore(
        namespace=long_b
    ).memcached_key("k")


async def test_odd_keys_round_trip(store: MemcachedStore) -> None:
    """Keys with spaces, control characters, non-ASCII or 300 characters store and load."""
    for key in ODD_KEYS:
        assert await store.save(key, key.encode(), ttl=60)
    assert [key.encode() for key in ODD_KEYS] == [await store.load(key) for key in ODD_KEYS]


# -- TTLs -----------------------------------------------------------------------------


def test_exptime_is_relative_up_to_30_days_then_absolute() -> None:
    """Up to 30 days the TTL goes as is; beyond, it is int(now) + ttl, as memcached reads it."""
    now = 1_700_000_000.9
    assert 60 == exptime(60, now=now)
    assert RELATIVE_TTL_LIMIT == exptime(RELATIVE_TTL_LIMIT, now=now)
    assert 1_700_000_000 + RELATIVE_TTL_LIMIT + 1 == exptime(RELATIVE_TTL_LIMIT + 1, now=now)
    assert 1_700_000_000 + 40 * DAY == exptime(40 * DAY, now=now)


@pytest.mark.parametrize("ttl", [0, -1, True, 1.5])
def test_exptime_checks_the_ttl(ttl: object) -> None:
    """A TTL that is not a positive int is refused, never sent as 'never expires'."""
    with pytest.raises(ConfigurationError):
        exptime(ttl, now=0.0)  # type: ignore[arg-type]


async def test_store_sends_absolute_time_from_its_clock() -> None:
    """With a fake clock, set and touch carry int(clock) + ttl past 30 days, the ttl below."""

    def answer(request: bytes) -> bytes:
        return b"TOUCHED\r\n" if request.startswith(b"touch") else b"STORED\r\n"

    async with FakeMemcached(answer) as server:
        store = MemcachedStore(port=server.port, namespace="", clock=lambda: 1_700_000_000.5)
        async with store:
            await store.save("k", b"v", ttl=40 * DAY)
            await store.touch("k", ttl=40 * DAY)
            await store.save("k", b"v", ttl=30 * DAY)
    assert [
        b"set k 0 %d 1\r\nv\r\n" % (1_700_000_000 + 40 * DAY),
        b"touch k %d\r\n" % (1_700_000_000 + 40 * DAY),
        b"set k 0 %d 1\r\nv\r\n" % (30 * DAY),
    ] == server.requests


async def test_ttl_over_30_days_is_readable_right_after(store: MemcachedStore) -> None:
    """save and touch with ttl=40 days keep the item (sent raw, it would be 1970: expired)."""
    key = new_key()
    assert await store.save(key, b"long", ttl=40 * DAY)
    assert b"long" == await store.load(key)
    assert await store.touch(key, ttl=40 * DAY)
    assert b"long" == await store.load(key)


async def test_absolute_exptime_follows_the_store_clock(
    memcached: ServerProcess, namespace: str
) -> None:
    """A clock a year behind makes ttl=40 days a time already past: memcached drops the item."""
    behind = MemcachedStore(
        port=memcached.port, namespace=namespace, clock=lambda: time.time() - 365 * DAY
    )
    async with behind:
        key = new_key()
        assert await behind.save(key, b"x", ttl=40 * DAY)
        assert None is await behind.load(key)
        assert await behind.save(key, b"y", ttl=60)
        assert b"y" == await behind.load(key)


# -- sizes ----------------------------------------------------------------------------


async def test_item_too_large_is_refused_before_sending() -> None:
    """A value past max_item_size raises ItemTooLarge with no I/O: no server is even there."""
    async with MemcachedStore(port=free_port(), max_item_size=2048) as store:
        with pytest.raises(ItemTooLarge) as info:
            await store.save("k", b"x" * 4096, ttl=60)
        assert None is store.client
        limit = 2048 - len(store.memcached_key("k")) - ITEM_OVERHEAD
    assert ("k", 4096, limit) == (info.value.key, info.value.size, info.value.limit)
    assert isinstance(info.value, ValueError)
    assert "-I" in str(info.value)


async def test_largest_value_that_fits_round_trips(store: MemcachedStore) -> None:
    """The limit ItemTooLarge reports is real: a value of exactly that size is stored."""
    key = new_key()
    with pytest.raises(ItemTooLarge) as info:
        await store.save(key, bytes(store.max_item_size), ttl=60)
    value = secrets.token_bytes(info.value.limit)
    assert await store.save(key, value, ttl=60)
    assert value == await store.load(key)


async def test_server_refusal_is_item_too_large(memcached: ServerProcess, namespace: str) -> None:
    """With max_item_size above the server's -I, its refusal is ItemTooLarge too; all else works."""
    async with MemcachedStore(
        port=memcached.port, namespace=namespace, max_item_size=4 * 1024 * 1024
    ) as store:
        with pytest.raises(ItemTooLarge, match="refused"):
            await store.save(new_key(), bytes(2 * 1024 * 1024), ttl=60)
        key = new_key()
        assert await store.save(key, b"ok", ttl=60)
        assert b"ok" == await store.load(key)


# -- failures -------------------------------------------------------------------------


async def test_unreachable_server_is_unavailable() -> None:
    """Connection refused is StoreUnavailable naming the address, with the OSError as cause."""
    port = free_port()
    async with MemcachedStore(port=port) as store:
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}") as info:
            await store.load(new_key())
    assert isinstance(info.value.__cause__, OSError)


async def test_stopped_server_is_unavailable_then_recovers(
    own_memcached: ServerProcess, namespace: str
) -> None:
    """With memcached down every call raises StoreUnavailable; after a restart it works again."""
    async with MemcachedStore(port=own_memcached.port, namespace=namespace) as store:
        key, index = new_key(), new_key()
        assert await store.save(key, b"v", ttl=60)
        own_memcached.stop()
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.load(key),
            lambda: store.save(key, b"w", ttl=60),
            lambda: store.touch(key, ttl=60),
            lambda: store.delete(key),
            lambda: store.index_add(index, "a", expires_at=int(time.time()) + 60),
            lambda: store.index_members(index, now=int(time.time())),
        ]
        for call in calls:
            with pytest.raises(StoreUnavailable):
                await call()
        own_memcached.restart()
        assert None is await store.load(key)  # memcached keeps nothing across a restart
        assert await store.save(key, b"w", ttl=60)
        assert b"w" == await store.load(key)


async def test_silent_server_times_out_as_unavailable() -> None:
    """A server that never answers costs one timeout, then StoreUnavailable says so."""
    async with FakeMemcached(lambda request: None) as server:
        store = MemcachedStore(port=server.port, timeout=0.2)
        async with store:
            start = time.monotonic()
            with pytest.raises(StoreUnavailable, match=r"did not answer a get within 0\.2 s"):
                await store.load("k")
            assert time.monotonic() - start < 1.0


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (b"SERVER_ERROR out of memory storing object\r\n", "SERVER_ERROR out of memory"),
        (b"ERROR\r\n", "ERROR"),
        (b"VALUE other 0 1\r\nx\r\nEND\r\n", "unexpected reply"),
        (b"VALUE asgisession:k 0 5\r\nx", "failed a get"),
    ],
)
async def test_bad_replies_are_unavailable(reply: bytes, match: str) -> None:
    """Server errors, a reply for another key and a cut-off value all raise StoreUnavailable."""
    async with FakeMemcached(lambda request: reply, close=True) as server:
        store = MemcachedStore(port=server.port, timeout=1.0)
        async with store:
            with pytest.raises(StoreUnavailable, match=match):
                await store.load("k")


async def test_connection_closed_mid_reply_is_unavailable_not_a_hang() -> None:
    """A one-line reply cut off by EOF raises at once (aiomcache spins forever: #502)."""
    async with FakeMemcached(lambda request: b"DELE", close=True) as server:
        store = MemcachedStore(port=server.port, timeout=1.0)
        async with store:
            with pytest.raises(StoreUnavailable, match="mid-reply"):
                await store.delete("k")


# -- the cancellation guard -----------------------------------------------------------


@pytest.mark.parametrize("stopped_by", ["caller's cancellation", "store's timeout"])
async def test_abandoned_get_never_serves_its_reply_to_the_next(
    memcached: ServerProcess, namespace: str, stopped_by: str
) -> None:
    """A GET stopped mid-reply closes its connection: the next GET reads its own value."""
    async with MemcachedStore(port=memcached.port, namespace=namespace) as direct:
        await direct.save("first", b"one", ttl=60)
        await direct.save("second", b"two", ttl=60)
    async with HoldingProxy(memcached.port, b"get ", delay=0.5) as proxy:
        timeout = 0.2 if stopped_by == "store's timeout" else 5.0
        store = MemcachedStore(port=proxy.port, namespace=namespace, pool_size=1, timeout=timeout)
        async with store:
            if stopped_by == "store's timeout":
                with pytest.raises(StoreUnavailable, match="did not answer"):
                    await store.load("first")
            else:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(store.load("first"), 0.2)
            assert b"two" == await store.load("second")
            await asyncio.sleep(0.4)  # the held reply to "first" has been let go by now
            assert b"two" == await store.load("second")
            assert b"one" == await store.load("first")
        assert 2 == proxy.connections  # the abandoned connection was closed, not pooled


async def test_abandoned_set_never_answers_a_later_replace(
    memcached: ServerProcess, namespace: str
) -> None:
    """A cancelled SET's late STORED cannot make a replace of a missing key report success."""
    async with HoldingProxy(memcached.port, b"set ", delay=0.5) as proxy:
        store = MemcachedStore(port=proxy.port, namespace=namespace, pool_size=1)
        async with store:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(store.save("first", b"one", ttl=60), 0.2)
            assert not await store.save("missing", b"x", ttl=60, replace=True)
            await asyncio.sleep(0.4)
            assert None is await store.load("missing")


# -- the user index -------------------------------------------------------------------


async def test_index_is_compact_json_under_its_own_key(store: MemcachedStore) -> None:
    """The index item is compact JSON, member -> expires_at, under the index's own key."""
    index, now = new_key(), int(time.time())
    await store.index_add(index, "a", expires_at=now + 600)
    assert b'{"a":%d}' % (now + 600) == await store.load(index)


async def test_concurrent_index_updates_all_land(store: MemcachedStore) -> None:
    """Twenty concurrent index_add calls on one index all survive (gets/cas retries)."""
    index, now = new_key(), int(time.time())
    await asyncio.gather(
        *(store.index_add(index, f"m{i}", expires_at=now + 600 + i) for i in range(20))
    )
    assert {f"m{i}": now + 600 + i for i in range(20)} == await store.index_members(index, now=now)


async def test_index_item_expires_with_its_last_member(store: MemcachedStore) -> None:
    """The index item lives until its latest member expires, then memcached drops it."""
    index, now = new_key(), int(time.time())
    # + 2: with + 1, a second boundary between time() and the add leaves a TTL of 0.
    await store.index_add(index, "a", expires_at=now + 2)
    assert None is not await store.load(index)
    assert 0.0 <= await wait_until_gone(store, index, limit=6.0)


async def test_index_with_a_far_member_uses_absolute_time(store: MemcachedStore) -> None:
    """A member 60 days out gives the index a TTL past 30 days, sent as an absolute time."""
    index, now = new_key(), int(time.time())
    await store.index_add(index, "a", expires_at=now + 60 * DAY)
    assert {"a": now + 60 * DAY} == await store.index_members(index, now=now)


async def test_emptied_index_is_removed(store: MemcachedStore) -> None:
    """Removing the last member removes the index item itself."""
    index, now = new_key(), int(time.time())
    await store.index_add(index, "a", expires_at=now + 600)
    await store.index_remove(index, "a")
    assert None is await store.load(index)


async def test_reading_prunes_expired_members_from_memcached(store: MemcachedStore) -> None:
    """index_members writes back the index without the members it found expired."""
    index, now = new_key(), int(time.time())
    await store.index_add(index, "a", expires_at=now + 600)
    await store.index_add(index, "b", expires_at=now + 900)
    assert {"b": now + 900} == await store.index_members(index, now=now + 700)
    assert b'{"b":%d}' % (now + 900) == await store.load(index)


async def test_unreadable_index_counts_as_empty(store: MemcachedStore) -> None:
    """An index item that is not this store's JSON reads as empty and is overwritten."""
    index, now = new_key(), int(time.time())
    await store.save(index, b"not json", ttl=60)
    assert {} == await store.index_members(index, now=now)
    await store.index_add(index, "a", expires_at=now + 600)
    assert {"a": now + 600} == await store.index_members(index, now=now)


async def test_index_contention_gives_up_with_a_clear_error(
    memcached: ServerProcess, namespace: str
) -> None:
    """When the index changes between every gets and cas, the update stops with IndexContention."""
    index, now = new_key(), int(time.time())
    meddler = socket.create_connection((LOOPBACK, memcached.port))
    replies = meddler.makefile("rb")
    wire = b""

    def meddling_clock() -> float:
        # Called between the store's gets and its cas: rewrite the index under its feet.
        meddler.sendall(b"set %s 0 60 2\r\n{}\r\n" % wire)
        assert b"STORED\r\n" == replies.readline()
        return time.time()

    try:
        async with MemcachedStore(
            port=memcached.port, namespace=namespace, clock=meddling_clock
        ) as store:
            wire = store.memcached_key(index)
            with pytest.raises(IndexContention) as info:
                await store.index_add(index, "a", expires_at=now + 600)
            assert store.index_tries == info.value.tries
            # Retrying later is safe, so it is a StoreUnavailable (503), as the docs say.
            assert isinstance(info.value, StoreUnavailable)
            assert {} == await store.index_members(index, now=now)
    finally:
        replies.close()
        meddler.close()


# -- ownership ------------------------------------------------------------------------


async def test_owned_client_is_built_on_first_use_and_closed(
    own_memcached: ServerProcess,
) -> None:
    """The store connects on first use (a connection per command in flight) and closes them."""
    port = own_memcached.port
    base = await idle_connections(port)
    store = MemcachedStore(port=port, pool_size=3)
    try:
        await wait_for_connections(port, base)
        await store.save(new_key(), b"v", ttl=60)
        await wait_for_connections(port, base + 1)
        await asyncio.gather(*(store.save(new_key(), b"v", ttl=60) for _ in range(9)))
        await wait_for_connections(port, base + 3)
    finally:
        await store.aclose()
    await store.aclose()
    await wait_for_connections(port, base)
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.load(new_key())


async def test_a_burst_on_an_idle_pool_opens_no_more_than_the_pool(
    memcached: ServerProcess,
) -> None:
    """200 concurrent commands on a fresh store share its pool_size connections.

    The connections are counted by a proxy in this process, not by memcached's
    ``total_connections``: memcached counts a connection on the worker thread it hands it
    to, so under load a connection accepted earlier (the start-up probe) can be counted
    after a later one, and a baseline read from the server was one short.
    """
    async with HoldingProxy(memcached.port, prefix=b"\x00never", delay=0) as proxy:
        # A generous timeout: a slow machine must not turn this count into a timeout.
        async with MemcachedStore(port=proxy.port, pool_size=4, timeout=30) as store:
            keys = [new_key() for _ in range(200)]
            assert [None] * 200 == await asyncio.gather(*(store.load(key) for key in keys))
            assert all(await asyncio.gather(*(store.save(k, b"v", ttl=60) for k in keys)))
        # The proxy accepts connections in the order they were made: once it has served
        # one made now, it has counted every connection the store opened.
        reader, writer = await asyncio.open_connection(LOOPBACK, proxy.port)
        try:
            writer.write(b"version\r\n")
            assert (await reader.readline()).startswith(b"VERSION")
        finally:
            writer.close()
            await writer.wait_closed()
        assert 4 == proxy.connections - 1


async def test_a_connection_opened_too_late_for_its_command_serves_the_next(
    memcached: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections are opened off the command's clock: a command whose timeout passes while
    its connection is being opened fails, and the connection, once open, serves the next
    command (which waits for it rather than opening another)."""
    real_open = asyncio.open_connection
    opened = 0

    async def slow_open(*args: Any, **kwargs: Any) -> Any:
        nonlocal opened
        opened += 1
        await asyncio.sleep(0.6)  # a TCP connect across a slow network
        return await real_open(*args, **kwargs)

    monkeypatch.setattr(asyncio, "open_connection", slow_open)
    async with MemcachedStore(port=memcached.port, pool_size=1, timeout=0.5) as store:
        began = time.monotonic()
        with pytest.raises(StoreUnavailable, match="did not answer"):
            await store.load(new_key())
        assert None is await store.load(new_key())  # on the connection the first one asked for
        assert time.monotonic() - began < 1.0
        assert 1 == opened


async def test_passed_in_client_is_never_closed(own_memcached: ServerProcess) -> None:
    """A store around the caller's client leaves its connections open; the caller closes it."""
    port = own_memcached.port
    base = await idle_connections(port)
    client = aiomcache.Client(LOOPBACK, port, pool_size=2)
    try:
        async with MemcachedStore(client=client, namespace="x:") as store:
            assert client is store.client
            assert await store.save("k", b"v", ttl=60)
            await wait_for_connections(port, base + 1)  # the store opens what it needs
        await asyncio.sleep(0.2)
        await wait_for_connections(port, base + 1)
        assert b"v" == await client.get(b"x:k")
        await wait_for_connections(port, base + 2)  # aiomcache fills its pool_minsize
    finally:
        await client.close()
    await wait_for_connections(port, base)


async def test_slots_serve_waiters_in_order_and_survive_cancellation() -> None:
    """The in-flight limit: FIFO hand-over, and a cancelled waiter never loses a slot."""
    slots = Slots(1)
    assert slots.take_now()
    assert not slots.take_now()  # none free
    took: list[str] = []

    async def waiter(name: str) -> None:
        await slots.take()
        took.append(name)

    cancelled = asyncio.create_task(waiter("cancelled while waiting"))
    handed = asyncio.create_task(waiter("handed a slot, then cancelled"))
    last = asyncio.create_task(waiter("last"))
    await asyncio.sleep(0)  # all three wait now
    cancelled.cancel()  # it leaves the queue
    await asyncio.sleep(0)
    assert not slots.take_now()  # a newcomer does not overtake the waiters
    slots.give()  # to the first live waiter, "handed" ...
    handed.cancel()  # ... cancelled before it runs: it must pass the slot on
    results = await asyncio.gather(cancelled, handed, return_exceptions=True)
    assert all(isinstance(result, asyncio.CancelledError) for result in results)
    await asyncio.wait_for(last, 10)  # a lost slot would leave it waiting forever
    assert took == ["last"]
    slots.give()
    assert slots.take_now()  # the one slot is free again, not lost nor doubled
    assert not slots.take_now()
