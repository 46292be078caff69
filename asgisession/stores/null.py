"""NullStore: keeps nothing. For stateless APIs that must never write a session."""

from __future__ import annotations

from .base import ClosingStore, check_ttl

__all__ = ["NullStore"]


class NullStore(ClosingStore):
    """A store that is always empty: loads find nothing and saves report "not stored".

    With it, the middleware never sets a session cookie, and every request starts with an
    empty session that the app may use as scratch space.

    .. versionadded:: 0.1
    """

    async def load(self, key: str) -> bytes | None:
        """Always ``None``."""
        return None

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        """Keeps nothing and says so (``False``)."""
        check_ttl(ttl)
        return False

    async def delete(self, key: str) -> None:
        """Nothing to delete."""

    async def aclose(self) -> None:
        """Nothing to release."""
