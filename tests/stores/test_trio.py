"""The asyncio-only adapters under Trio say why they cannot run there.

Every test here runs on anyio's Trio backend (this module overrides ``anyio_backend``).
RedisStore, MemcachedStore, PostgresStore and SQLiteStore are built on asyncio (redis.asyncio,
aiomcache, asyncpg, a thread that answers through asyncio's loop): their first call raises
ConfigurationError naming the limit and what to do, not an obscure failure inside the
client. MemoryStore and
NullStore run their own tests (test_memory.py, test_null.py) under Trio too, as every anyio
test does (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from asgisession import ConfigurationError
from asgisession.stores import MemcachedStore, PostgresStore, RedisStore, SQLiteStore
from asgisession.stores.base import Store

from .contract import new_key

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """This module runs on Trio."""
    return "trio"


def sqlite_store(tmp_path: Path) -> Store:
    return SQLiteStore(tmp_path / "sessions.db")


def redis_store(tmp_path: Path) -> Store:
    # Nothing connects before the first command; port 9 would refuse anyway.
    return RedisStore(aioredis.Redis(host="127.0.0.1", port=9))


def memcached_store(tmp_path: Path) -> Store:
    return MemcachedStore(port=9)


def postgres_store(tmp_path: Path) -> Store:
    return PostgresStore("postgresql://u@127.0.0.1:9/db")


@pytest.mark.parametrize(
    ("make", "name", "client"),
    [
        (sqlite_store, "SQLiteStore", "asyncio"),
        (redis_store, "RedisStore", "redis.asyncio"),
        (memcached_store, "MemcachedStore", "aiomcache"),
        (postgres_store, "PostgresStore", "asyncpg"),
    ],
)
@pytest.mark.parametrize(
    "call",
    [
        lambda store: store.load(new_key()),
        lambda store: store.save(new_key(), b"v", ttl=60),
        lambda store: store.delete(new_key()),
    ],
    ids=["load", "save", "delete"],
)
async def test_asyncio_only_adapters_say_so(
    tmp_path: Path,
    make: Callable[[Path], Store],
    name: str,
    client: str,
    call: Callable[[Store], Awaitable[object]],
) -> None:
    """The first call under Trio is a ConfigurationError naming the store, its client and
    what to do; nothing is created on the way (no database file)."""
    store = make(tmp_path)
    with pytest.raises(ConfigurationError) as info:
        await call(store)
    message = str(info.value)
    assert f"{name} runs on asyncio only" in message
    assert client in message
    assert "under trio" in message
    assert "run the server on asyncio" in message
    assert not (tmp_path / "sessions.db").exists()


def test_the_refusal_needs_no_sniffio() -> None:
    """anyio no longer brings sniffio: outside any loop, without it, the error still comes."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['sniffio'] = None\n"
        "from asgisession.stores.base import asyncio_only\n"
        "print(repr(asyncio_only('SQLiteStore', 'its thread')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert 0 == result.returncode, result.stderr
    assert "RuntimeError('SQLiteStore was called outside an async event loop')" in result.stdout
