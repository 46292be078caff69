"""NullStore keeps nothing, by design, so it is the one store outside the contract."""

from __future__ import annotations

import pytest

from asgisession.stores.base import Store, SupportsAdd
from asgisession.stores.null import NullStore


@pytest.mark.anyio
async def test_null_store_keeps_nothing() -> None:
    """Saves report False and loads find nothing, with or without replace."""
    async with NullStore() as store:
        assert isinstance(store, Store)
        assert not await store.save("k", b"v", ttl=60)
        assert not await store.save("k", b"v", ttl=60, replace=True)
        assert None is await store.load("k")
        assert False is await store.delete("k")
        assert isinstance(store, SupportsAdd)
        assert not await store.add("k", b"v", ttl=60)
