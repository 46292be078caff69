"""Store clients stay optional: importing asgisession never imports them."""

from __future__ import annotations

import subprocess
import sys

import pytest

CLIENTS = ("aiosqlite", "redis", "aiomcache", "asyncpg")


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_core_import_loads_no_store_client() -> None:
    """`import asgisession` (and the cookie store) imports none of the store clients."""
    result = run(
        "import sys, asgisession, asgisession.stores, asgisession.backends\n"
        f"print(sorted(m for m in {CLIENTS!r} if m in sys.modules))"
    )
    assert 0 == result.returncode, result.stderr
    assert "[]" == result.stdout.strip()


@pytest.mark.parametrize(
    ("name", "client", "extra"),
    [
        ("RedisStore", "redis", "redis"),
        ("MemcachedStore", "aiomcache", "memcached"),
        ("PostgresStore", "asyncpg", "postgres"),
    ],
)
def test_missing_client_names_the_extra(name: str, client: str, extra: str) -> None:
    """Without its client, a store's import fails with the pip command that fixes it."""
    result = run(
        f"import sys; sys.modules[{client!r}] = None\nfrom asgisession.stores import {name}"
    )
    assert 0 != result.returncode
    assert f"pip install -e '.[{extra}]'" in result.stderr  # checked in full: test_install_hints.py


def test_lazy_names_resolve() -> None:
    """Each store name in asgisession.stores resolves to its adapter class."""
    import asgisession.stores as stores

    for name in (
        "MemoryStore",
        "NullStore",
        "SQLiteStore",
        "RedisStore",
        "MemcachedStore",
        "PostgresStore",
    ):
        assert name == getattr(stores, name).__name__
    with pytest.raises(AttributeError):
        _ = stores.NoSuchStore
