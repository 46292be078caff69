"""``from_url`` on every store and ``asgisession.stores.from_url``: each scheme for real,
the query options, and bad URLs refused with the wrong part named (never a password)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection

from asgisession import ConfigurationError, stores
from asgisession.stores import MemcachedStore, MemoryStore, NullStore, RedisStore, SQLiteStore

from ..servers import LOOPBACK, ServerProcess

pytestmark = pytest.mark.anyio

#: Marks a test of the Redis, memcached or SQLite store, which run on asyncio only (their
#: clients, or SQLiteStore's thread, answer through asyncio's loop); the in-process stores'
#: tests run under Trio too.
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


async def roundtrip(store: stores.ManagedStore) -> bytes | None:
    async with store:
        await store.save("k", b"v", ttl=60)
        return await store.load("k")


async def test_memory_and_null() -> None:
    memory = stores.from_url("memory://?max_entries=3")
    assert isinstance(memory, MemoryStore)
    assert 3 == memory.max_entries
    assert b"v" == await roundtrip(memory)
    assert isinstance(stores.from_url("memory://", max_entries=5), MemoryStore)
    null = stores.from_url("null://")
    assert isinstance(null, NullStore)
    assert await roundtrip(null) is None


@asyncio_only
async def test_sqlite_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = stores.from_url("sqlite:///data/sessions.db?timeout=1.5&table=web_sessions")
    assert isinstance(store, SQLiteStore)
    assert ("data/sessions.db", "web_sessions", 1.5) == (store.path, store.table, store.timeout)
    (tmp_path / "data").mkdir()
    assert b"v" == await roundtrip(store)
    assert (tmp_path / "data" / "sessions.db").is_file()


@asyncio_only
async def test_sqlite_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "with space.db"
    store = stores.from_url(f"sqlite:///{tmp_path}/with%20space.db?timeout=none&sweep_batch=7")
    assert isinstance(store, SQLiteStore)
    assert (str(path), None, 7) == (store.path, store.timeout, store.sweep_batch)
    assert b"v" == await roundtrip(store)
    assert path.is_file()


@asyncio_only
async def test_redis(redis_proc: ServerProcess) -> None:
    namespace = f"app{uuid.uuid4().hex}:"
    url = f"redis://{LOOPBACK}:{redis_proc.port}/3?namespace={namespace}&timeout=1.5"
    store = stores.from_url(url, max_connections=4)
    assert isinstance(store, RedisStore)
    assert (namespace, 1.5) == (store.namespace, store.timeout)
    pool = store.client.connection_pool  # type: ignore[union-attr]
    assert 3 == pool.connection_kwargs["db"]
    assert 1.5 == pool.connection_kwargs["socket_timeout"]
    assert 4 == pool.max_connections
    assert b"v" == await roundtrip(store)
    raw = Redis(host=LOOPBACK, port=redis_proc.port, db=3)
    try:
        assert b"v" == await raw.get(namespace + "k")
    finally:
        await raw.aclose()


@asyncio_only
async def test_rediss_uses_tls() -> None:
    store = stores.from_url("rediss://user:pw@cache.example:6380?ssl_check_hostname=true")
    assert isinstance(store, RedisStore)
    pool = store.client.connection_pool  # type: ignore[union-attr]
    assert issubclass(pool.connection_class, SSLConnection)  # set up off the clock
    assert ("cache.example", 6380, "user") == tuple(
        pool.connection_kwargs[k] for k in ("host", "port", "username")
    )
    await store.aclose()


@asyncio_only
async def test_memcached(memcached_proc: ServerProcess) -> None:
    url = f"memcached://{LOOPBACK}:{memcached_proc.port}?namespace=m{uuid.uuid4().hex}:"
    store = stores.from_url(url + "&pool_size=2&timeout=0.5")
    assert isinstance(store, MemcachedStore)
    assert (LOOPBACK, memcached_proc.port, 2, 0.5) == (
        store.host,
        store.port,
        store.pool_size,
        store.timeout,
    )
    assert b"v" == await roundtrip(store)
    default = MemcachedStore.from_url("memcached://")
    assert ("127.0.0.1", 11211) == (default.host, default.port)
    ipv6 = MemcachedStore.from_url("memcached://[::1]:11212/")
    assert ("::1", 11212) == (ipv6.host, ipv6.port)


def test_memcached_ring_url() -> None:
    """Several hosts, joined by commas, make a ring; the ring's settings come from the query."""
    store = MemcachedStore.from_url(
        "memcached://a:11300,b,[::1]:11302/?failover=false&down_retry_delay=5"
    )
    assert (("a", 11300), ("b", 11211), ("::1", 11302)) == store.servers
    assert (False, 5.0) == (store.failover, store.down_retry_delay)
    assert store.client is None  # one client per server, none of them "the" client


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db", "'mysql://db': no store takes this scheme; use one of memory://"),
        ("sessions.db", "'sessions.db': no store takes this scheme"),
        ("sqlite://host/x.db", "a SQLite URL has no host ('host')"),
        ("sqlite:///", "name the database file"),
        ("sqlite:///dir/", "name the database file"),
        ("sqlite:///x.db?timeout=soon", "the query parameter timeout='soon' is wrong"),
        ("sqlite:///x.db?timeout=-1", "give a finite number of seconds > 0, or none"),
        ("sqlite:///x.db?table=1bad", "table='1bad'"),
        ("sqlite:///x.db?namespace=a:", "the query parameter 'namespace' is not one"),
        ("sqlite:///x.db?timeout=1&timeout=2", "'timeout' is given twice"),
        ("sqlite:///x.db?timeout", "is not name=value pairs"),
        ("sqlite:///x.db#frag", "no #fragment"),
        ("redis://:hunter2@h:port/0", "'redis://:***@h:port/0': the port 'port' is not a number"),
        ("redis://:hunter2@h/zero", "the path '/zero' is not a database number"),
        ("redis://:hunter2@h?db=x", "Invalid value for 'db'"),
        ("redis://u:hunter2@h?bogus=1", "'redis://u:***@h?bogus=1': the query parameter 'bogus'"),
        ("redis://h?namespace={tag}", "Braces make a Redis Cluster hash tag"),
        ("rediss://h?timeout=0", "timeout='0' is wrong"),
        ("memcached://a:11211,b:x", "the host 'b:x' has a port that is not a number"),
        ("memcached://a:11211,,b", "the host list has an empty entry"),
        ("memcached://a:11211,a:11211", "names a:11211 twice"),
        ("memcached://a,b?failover=maybe", "failover='maybe' is wrong"),
        ("redis://a:6379,b:6379", "names several hosts; RedisStore talks to one server"),
        ("memcached://u:hunter2@h", "'memcached://u:***@h': memcached's text protocol has no"),
        ("memcached://h/path", "a memcached URL has no path ('/path')"),
        ("memcached://h:99999", "the port '99999' is not a number from 1 to 65535"),
        ("memcached://h?timeout=none", "timeout='none' is wrong"),
        ("memcached://h?namespace=a%20b", "printable ASCII"),
        ("memory://host", "a memory:// URL has no host or path"),
        ("memory://?max_entries=many", "max_entries='many' is wrong"),
        ("null://x", "a null:// URL has no host, path or query"),
    ],
)
def test_bad_urls_name_the_wrong_part(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        stores.from_url(url)
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_an_adapter_refuses_another_scheme() -> None:
    with pytest.raises(ConfigurationError, match="the scheme redis: is not one SQLiteStore takes"):
        SQLiteStore.from_url("redis://h")


def test_an_option_given_twice_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="timeout is given both in the URL's query"):
        stores.from_url("sqlite:///x.db?timeout=1", timeout=2)
    with pytest.raises(ConfigurationError, match="namespace is given both"):
        stores.from_url("redis://h?namespace=a:", namespace="b:")
    with pytest.raises(ConfigurationError, match="db is given both"):
        stores.from_url("redis://h?db=1", db=2)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_dispatcher_imports_only_the_adapter_it_needs() -> None:
    result = run(
        "import sys; from asgisession import stores\n"
        "stores.from_url('memory://'); stores.from_url('sqlite:///x.db')\n"
        "print(sorted(m for m in ('redis', 'aiomcache') if m in sys.modules))"
    )
    assert 0 == result.returncode, result.stderr
    assert "[]" == result.stdout.strip()


@pytest.mark.parametrize(
    ("url", "client", "extra"),
    [("redis://h", "redis", "redis"), ("memcached://h", "aiomcache", "memcached")],
)
def test_a_missing_client_gives_the_install_hint(url: str, client: str, extra: str) -> None:
    result = run(
        f"import sys; sys.modules[{client!r}] = None\n"
        f"from asgisession import stores; stores.from_url({url!r})"
    )
    assert 0 != result.returncode
    assert f"pip install -e '.[{extra}]'" in result.stderr  # checked in full: test_install_hints.py
