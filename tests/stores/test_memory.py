"""MemoryStore: the contract, plus its bound and its injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from asgisession import ConfigurationError
from asgisession.stores.base import Store
from asgisession.stores.memory import MemoryStore

from .contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[Store]:
        async with MemoryStore() as store:
            yield store


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_least_recently_used_key_goes_first() -> None:
    """At max_entries, a new key evicts the one used longest ago."""
    store = MemoryStore(max_entries=2)
    await store.save("a", b"1", ttl=60)
    await store.save("b", b"2", ttl=60)
    assert b"1" == await store.load("a")
    await store.save("c", b"3", ttl=60)
    assert (b"1", None, b"3") == (
        await store.load("a"),
        await store.load("b"),
        await store.load("c"),
    )


@pytest.mark.anyio
async def test_expiry_follows_the_clock() -> None:
    """Expiry is exact to the injected clock: live before, gone at the deadline."""
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.save("k", b"v", ttl=10)
    clock.now += 9.999
    assert b"v" == await store.load("k")
    clock.now += 0.001
    assert None is await store.load("k")


@pytest.mark.anyio
async def test_aclose_drops_everything() -> None:
    """aclose() empties the store."""
    store = MemoryStore()
    await store.save("k", b"v", ttl=10)
    await store.aclose()
    assert None is await store.load("k")


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_max_entries_is_checked(bad: object) -> None:
    """A bound that is not a positive int is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        MemoryStore(max_entries=bad)  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.parametrize("ttl", [0, -5, True, 2.5])
async def test_ttl_is_checked(ttl: object) -> None:
    """A TTL that is not a positive int is refused, not stored forever."""
    with pytest.raises(ConfigurationError):
        await MemoryStore().save("k", b"v", ttl=ttl)  # type: ignore[arg-type]
