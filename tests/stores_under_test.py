"""The stores a test runs against, made one way for every test module that needs them.

Real servers (the ``redis_proc`` and ``memcached_proc`` fixtures of ``conftest.py``), a real
SQLite file under the test's ``tmp_path``, and a fresh key namespace each time, so tests
that share a server never see each other's sessions. ``"cookie"`` is the cookie store: no
store at all.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from asgisession.stores import MemcachedStore, MemoryStore, RedisStore, SQLiteStore, Store

from .servers import LOOPBACK, ServerProcess

__all__ = ["STORES", "open_store"]

#: Every store name :func:`open_store` makes, the cookie store first.
STORES = ["cookie", "memory", "sqlite", "redis", "memcached"]


def open_store(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Store | None:
    """The store called ``name`` (``None`` for the cookie store); the caller closes it."""
    namespace = f"t{uuid.uuid4().hex}:"
    if name == "memory":
        return MemoryStore()
    if name == "sqlite":
        return SQLiteStore(tmp_path / "sessions.sqlite3")
    if name == "redis":
        redis: ServerProcess = request.getfixturevalue("redis_proc")
        return RedisStore.from_url(f"redis://{LOOPBACK}:{redis.port}/0", namespace=namespace)
    if name == "memcached":
        memcached: ServerProcess = request.getfixturevalue("memcached_proc")
        return MemcachedStore(port=memcached.port, namespace=namespace)
    assert name == "cookie", name
    return None
