"""A store of your own, with a time limit on each call: what ``store_timeout`` still does.

The bundled stores time their own calls (RedisStore, MemcachedStore and SQLiteStore take a
``timeout=``; MemoryStore and NullStore never wait), since only the adapter knows what is
safe to cancel. Until 0.2, SessionMiddleware also wrapped every store call in a timer of
its own (``store_timeout``, 2 s by default). That keyword is deprecated; meanwhile it still
bounds a store that is not one of the bundled ones, by wrapping it in :func:`timed`, so such
a store behaves as before until 0.3. Such a store should bound its own calls from now on.

The wrapper keeps the store's capabilities: it is a :class:`SupportsTouch`,
:class:`SupportsUserIndex` or :class:`SupportsVersioned` exactly when the wrapped store is.
"""

from __future__ import annotations

import functools
from typing import cast

from .base import (
    Store,
    SupportsAdd,
    SupportsTouch,
    SupportsUserIndex,
    SupportsVersioned,
    Version,
    bounded,
)

__all__ = ["is_bundled", "timed"]

#: The modules of the bundled stores: this one's siblings.
_BUNDLED = __name__.rpartition(".")[0] + "."


def is_bundled(store: object) -> bool:
    """Whether ``store`` is one of asgisession's own stores (which time their own calls)."""
    return type(store).__module__.startswith(_BUNDLED)


class _Timed:
    """Every call of the wrapped store is cut off after ``timeout`` seconds."""

    __slots__ = ("_adder", "inner", "timeout")

    def __init__(self, inner: Store, timeout: float) -> None:
        self.inner = inner
        self.timeout = timeout
        # Asked once: isinstance against a runtime-checkable Protocol is slow (backends/server.py).
        self._adder: SupportsAdd | None = inner if isinstance(inner, SupportsAdd) else None

    async def load(self, key: str) -> bytes | None:
        return await bounded(self.inner.load(key), self.timeout, "a load")

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        return await bounded(
            self.inner.save(key, data, ttl=ttl, replace=replace), self.timeout, "a save"
        )

    async def add(self, key: str, data: bytes, *, ttl: int) -> bool:
        # Always offered, so the wrapper adds no capability combinations: a wrapped store
        # without add creates with save, as the session layer would do unwrapped.
        if self._adder is not None:
            return await bounded(self._adder.add(key, data, ttl=ttl), self.timeout, "an add")
        return await bounded(self.inner.save(key, data, ttl=ttl), self.timeout, "a save")

    async def delete(self, key: str) -> bool | None:
        return await bounded(self.inner.delete(key), self.timeout, "a delete")

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __repr__(self) -> str:
        return f"timed({self.inner!r}, {self.timeout})"


class _TimedTouch(_Timed):
    __slots__ = ()

    async def touch(self, key: str, *, ttl: int) -> bool:
        store = cast(SupportsTouch, self.inner)
        return await bounded(store.touch(key, ttl=ttl), self.timeout, "a touch")


class _TimedIndex(_Timed):
    __slots__ = ()

    async def index_add(self, index: str, member: str, *, expires_at: int) -> None:
        store = cast(SupportsUserIndex, self.inner)
        await bounded(store.index_add(index, member, expires_at=expires_at), self.timeout, "a link")

    async def index_remove(self, index: str, member: str) -> None:
        store = cast(SupportsUserIndex, self.inner)
        await bounded(store.index_remove(index, member), self.timeout, "an unlink")

    async def index_members(self, index: str, *, now: int) -> dict[str, int]:
        store = cast(SupportsUserIndex, self.inner)
        return await bounded(store.index_members(index, now=now), self.timeout, "a listing")


class _TimedVersioned(_Timed):
    __slots__ = ()

    async def load_versioned(self, key: str) -> tuple[bytes, Version] | None:
        store = cast(SupportsVersioned, self.inner)
        return await bounded(store.load_versioned(key), self.timeout, "a load")

    async def save_if(self, key: str, data: bytes, *, ttl: int, version: Version) -> bool:
        store = cast(SupportsVersioned, self.inner)
        return await bounded(
            store.save_if(key, data, ttl=ttl, version=version), self.timeout, "a save"
        )


@functools.cache
def _kind(touch: bool, index: bool, versioned: bool) -> type[_Timed]:
    """The wrapper class with exactly these capabilities."""
    chosen = (_TimedTouch, touch), (_TimedIndex, index), (_TimedVersioned, versioned)
    bases = tuple(base for base, wanted in chosen if wanted)
    if len(bases) < 2:
        return bases[0] if bases else _Timed
    return type("_Timed" + "".join(b.__name__[6:] for b in bases), bases, {"__slots__": ()})


def timed(store: Store, timeout: float | None) -> Store:
    """``store`` with each call bounded by ``timeout`` seconds; as is for ``None`` or a bundled one.

    :raises StoreUnavailable: (from a wrapped call) when the time runs out.
    """
    if timeout is None or is_bundled(store):
        return store
    kind = _kind(
        isinstance(store, SupportsTouch),
        isinstance(store, SupportsUserIndex),
        isinstance(store, SupportsVersioned),
    )
    return kind(store, timeout)
