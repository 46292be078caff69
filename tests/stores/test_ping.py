"""``await store.ping()`` on every store, against real servers and real files.

Each server-backed store is pinged up, then with its service gone (a stopped server, a
missing directory, a write lock held by another connection), then again once the cause is
gone, on the same store object.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from asgisession import StoreUnavailable
from asgisession.stores import MemcachedStore, MemoryStore, NullStore, RedisStore, SQLiteStore
from asgisession.stores.base import Store, SupportsPing

from ..servers import LOOPBACK, memcached_server, redis_server

pytestmark = pytest.mark.anyio

#: Marks a test of the Redis, memcached or SQLite store, which run on asyncio only (their
#: clients, or SQLiteStore's thread, answer through asyncio's loop); the in-process stores'
#: tests run under Trio too.
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


class _NoPing:
    """A third-party store written before ping: still a Store, just not SupportsPing."""

    async def load(self, key: str) -> bytes | None:
        return None

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        return False

    async def delete(self, key: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def test_in_process_stores_are_always_ready() -> None:
    for store in (MemoryStore(), NullStore()):
        assert isinstance(store, SupportsPing)
        await store.ping()


def test_ping_is_a_capability_not_a_requirement() -> None:
    old = _NoPing()
    assert isinstance(old, Store)
    assert not isinstance(old, SupportsPing)


@asyncio_only
async def test_redis_down_and_back(tmp_path: Path) -> None:
    server = redis_server(tmp_path, "--logfile", str(tmp_path / "redis.log"))
    try:
        async with RedisStore.from_url(f"redis://{LOOPBACK}:{server.port}/0", timeout=1) as store:
            assert isinstance(store, SupportsPing)
            await store.ping()
            server.stop()
            with pytest.raises(StoreUnavailable, match="Redis PING") as caught:
                await store.ping()
            assert "Connection" in str(caught.value) or "did not answer" in str(caught.value)
            server.start()
            await store.ping()
    finally:
        server.stop()


@asyncio_only
async def test_redis_password_required_is_unavailable(tmp_path: Path) -> None:
    server = redis_server(tmp_path, "--requirepass", "s3cret-pw")
    try:
        url = f"redis://{LOOPBACK}:{server.port}/0"
        async with RedisStore.from_url(url, timeout=1) as store:
            with pytest.raises(StoreUnavailable, match="Authentication") as caught:
                await store.ping()
            assert "s3cret-pw" not in str(caught.value)
        async with RedisStore.from_url(f"redis://:s3cret-pw@{LOOPBACK}:{server.port}/0") as ok:
            await ok.ping()
    finally:
        server.stop()


@asyncio_only
async def test_memcached_down_and_back() -> None:
    server = memcached_server()
    try:
        async with MemcachedStore.from_url(f"memcached://{LOOPBACK}:{server.port}") as store:
            assert isinstance(store, SupportsPing)
            await store.ping()
            server.stop()
            with pytest.raises(StoreUnavailable, match=f"memcached at {LOOPBACK}:{server.port}"):
                await store.ping()
            server.start()
            await store.ping()
    finally:
        server.stop()


@asyncio_only
async def test_sqlite_missing_directory_then_created(tmp_path: Path) -> None:
    directory = tmp_path / "not-yet"
    async with SQLiteStore(directory / "sessions.db", timeout=1) as store:
        assert isinstance(store, SupportsPing)
        with pytest.raises(StoreUnavailable, match="unable to open database file"):
            await store.ping()
        directory.mkdir()
        await store.ping()
        assert (directory / "sessions.db").exists()  # the ping made the file and its tables


@asyncio_only
async def test_sqlite_write_lock_held_past_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with SQLiteStore(path, timeout=0.3, busy_timeout=0.2) as store:
        await store.ping()
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process's long write
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="write lock"):
                await store.ping()
            assert time.monotonic() - started < 2
            other.execute("COMMIT")
        finally:
            other.close()
        await store.ping()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files")
@asyncio_only
async def test_sqlite_read_only_file(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with SQLiteStore(path) as store:
        await store.ping()
    path.chmod(0o444)
    try:
        async with SQLiteStore(path, timeout=1) as store:
            with pytest.raises(StoreUnavailable, match="readonly"):
                await store.ping()
    finally:
        path.chmod(0o644)
