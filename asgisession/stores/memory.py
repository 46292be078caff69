"""MemoryStore: a bounded, expiring dict in this process. For tests and single-process dev.

Sessions vanish when the process exits and are not shared between workers; use SQLiteStore
(one machine) or RedisStore/MemcachedStore (several) in production.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError
from . import _urls
from .base import ClosingStore, check_ttl

__all__ = ["MemoryStore"]


class MemoryStore(ClosingStore):
    """Keeps sessions in an in-process dict with per-key expiry and a size bound.

    When full, the least recently used key is dropped first, so memory stays bounded
    whatever clients send.

    :param max_entries: the most keys (sessions plus index entries) kept at once.
    :param clock: returns unix time; for tests.

    .. versionadded:: 0.1
    """

    def __init__(
        self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(f"max_entries={max_entries!r}; give a whole number > 0.")
        self.max_entries = max_entries
        self._clock = clock
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._indexes: dict[str, dict[str, int]] = {}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryStore:
        """A store from ``memory://`` (query: ``max_entries``); ``options`` as the constructor's.

        :raises ConfigurationError: for another scheme, a host or path, or a bad parameter.
        """
        parts = _urls.split(url, ("memory",), "MemoryStore")
        if parts.netloc or parts.path:
            raise ConfigurationError(
                f"{_urls.redact(url)!r}: a memory:// URL has no host or path; use memory://."
            )
        query = _urls.query_options(url, parts, {"max_entries": _urls.as_int(1)})
        return cls(**_urls.merge(url, query, options))

    def _live(self, key: str) -> tuple[bytes, float] | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item

    async def load(self, key: str) -> bytes | None:
        """Return the bytes under ``key``, or ``None`` when missing or expired."""
        item = self._live(key)
        return None if item is None else item[0]

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        """Store ``data`` for ``ttl`` seconds; with ``replace``, only over a live key."""
        check_ttl(ttl)
        if replace and self._live(key) is None:
            return False
        return self._put(key, data, ttl)

    async def add(self, key: str, data: bytes, *, ttl: int) -> bool:
        """Store ``data`` for ``ttl`` seconds only if no live key is there."""
        check_ttl(ttl)
        if self._live(key) is not None:
            return False
        return self._put(key, data, ttl)

    def _put(self, key: str, data: bytes, ttl: int) -> bool:
        self._items[key] = (bytes(data), self._clock() + ttl)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)
        return True

    async def load_versioned(self, key: str) -> tuple[bytes, bytes] | None:
        """The bytes under ``key`` and their version (the bytes themselves), or ``None``."""
        item = self._live(key)
        return None if item is None else (item[0], item[0])

    async def save_if(self, key: str, data: bytes, *, ttl: int, version: bytes | int) -> bool:
        """Store ``data`` for ``ttl`` seconds only if the live record is still ``version``."""
        check_ttl(ttl)
        item = self._live(key)
        if item is None or item[0] != version:
            return False
        return self._put(key, data, ttl)

    async def touch(self, key: str, *, ttl: int) -> bool:
        """Reset ``key``'s time to live; return whether it existed."""
        check_ttl(ttl)
        item = self._live(key)
        if item is None:
            return False
        self._items[key] = (item[0], self._clock() + ttl)
        return True

    async def delete(self, key: str) -> bool:
        """Remove ``key`` if present; return whether it was there and live."""
        item = self._items.pop(key, None)
        return item is not None and item[1] > self._clock()

    async def index_add(self, index: str, member: str, *, expires_at: int) -> None:
        """Add ``member`` to ``index`` until ``expires_at``."""
        self._indexes.setdefault(index, {})[member] = expires_at

    async def index_remove(self, index: str, member: str) -> None:
        """Remove ``member`` from ``index`` if present."""
        members = self._indexes.get(index)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._indexes[index]

    async def index_members(self, index: str, *, now: int) -> dict[str, int]:
        """The live members of ``index``; expired ones are pruned."""
        members = self._indexes.get(index, {})
        for member in [m for m, expires_at in members.items() if expires_at <= now]:
            del members[member]
        if not members:
            self._indexes.pop(index, None)
        return dict(members)

    async def ping(self) -> None:
        """Always ready: the dict is in this process."""

    async def aclose(self) -> None:
        """Drop everything."""
        self._items.clear()
        self._indexes.clear()
