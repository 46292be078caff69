"""The protocol server-side stores implement: bytes under a key, with a time to live.

Stores are deliberately dumb. Session logic (ids, hashing, expiry inside the payload,
change tracking) lives above them, so an adapter is a few dozen lines and any object with
these methods works, with no base class to inherit.

Ownership: a store built from a client the caller passed in never closes that client; a
store that built its own client (``from_url()``) closes it in :meth:`Store.aclose`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Store", "SupportsTouch"]


@runtime_checkable
class Store(Protocol):
    """**Protocol:** where server-side session data lives.

    Keys arrive already hashed and ASCII-safe; values are opaque bytes.

    .. versionadded:: 0.1
    """

    async def load(self, key: str) -> bytes | None:
        """Return the bytes under ``key``, or ``None`` when missing or expired."""
        ...

    async def save(self, key: str, data: bytes, *, ttl: int) -> None:
        """Store ``data`` under ``key`` for ``ttl`` whole seconds (> 0), replacing any value."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        ...

    async def aclose(self) -> None:
        """Release what the store owns (see the module docstring on ownership)."""
        ...


@runtime_checkable
class SupportsTouch(Store, Protocol):
    """**Protocol:** a store that can extend a key's lifetime without rewriting its data.

    .. versionadded:: 0.1
    """

    async def touch(self, key: str, *, ttl: int) -> bool:
        """Reset ``key``'s time to live; return whether the key existed."""
        ...
