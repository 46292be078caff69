# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""stores/timed.py: what the deprecated ``store_timeout`` still does to a store of your own."""

from __future__ import annotations

import anyio
import pytest

from asgisession import StoreUnavailable
from asgisession.stores.base import Store, SupportsTouch, SupportsUserIndex, SupportsVersioned
from asgisession.stores.memory import MemoryStore
from asgisession.stores.null import NullStore
from asgisession.stores.timed import is_bundled, timed

pytestmark = pytest.mark.anyio


class PlainStore:
    """A store of your own with the four methods only, that can be told to stall."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.stall = 0.0

    async def load(self, key: str) -> bytes | None:
        await anyio.sleep(self.stall)
        return self.data.get(key)

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        if replace and key not in self.data:
            return False
        self.data[key] = data
        return True

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def aclose(self) -> None:
        pass


class IndexedStore(MemoryStore):
    """A store of your own with every capability (a MemoryStore subclass outside the package)."""


def test_bundled_stores_are_left_alone() -> None:
    """A bundled store times itself (or never waits): no wrapper, no second timer."""
    for store in (MemoryStore(), NullStore()):
        assert is_bundled(store)
        assert store is timed(store, 1.0)
    plain = PlainStore()
    assert not is_bundled(plain)
    assert plain is timed(plain, None)


def test_capabilities_are_kept() -> None:
    """The wrapper is a SupportsTouch, SupportsUserIndex or SupportsVersioned exactly when
    the store is."""
    plain = timed(PlainStore(), 1.0)
    assert isinstance(plain, Store)
    assert not isinstance(plain, SupportsTouch)
    assert not isinstance(plain, SupportsUserIndex)
    assert not isinstance(plain, SupportsVersioned)
    rich = timed(IndexedStore(), 1.0)
    assert isinstance(rich, SupportsTouch)
    assert isinstance(rich, SupportsUserIndex)
    assert isinstance(rich, SupportsVersioned)


async def test_compare_and_set_passes_through() -> None:
    """load_versioned and save_if reach the store: a stale version writes nothing."""
    store = timed(IndexedStore(), 1.0)
    assert isinstance(store, SupportsVersioned)
    await store.save("k", b"v1", ttl=60)
    found = await store.load_versioned("k")
    assert found is not None
    assert await store.save_if("k", b"v2", ttl=60, version=found[1])
    assert not await store.save_if("k", b"v3", ttl=60, version=found[1])
    assert b"v2" == await store.load("k")


async def test_calls_pass_through_and_stalls_are_cut_off() -> None:
    """Calls reach the store; one that stalls past the bound is StoreUnavailable."""
    inner = PlainStore()
    store = timed(inner, 0.05)
    assert await store.save("k", b"v", ttl=60)
    assert b"v" == await store.load("k")
    inner.stall = 5.0
    with pytest.raises(StoreUnavailable, match=r"did not answer a load within 0\.05 s"):
        await store.load("k")
    rich = timed(IndexedStore(), 1.0)
    assert isinstance(rich, SupportsUserIndex)
    assert isinstance(rich, SupportsTouch)
    await rich.index_add("u", "s", expires_at=2**40)
    assert {"s": 2**40} == await rich.index_members("u", now=0)
    assert not await rich.touch("missing", ttl=60)
