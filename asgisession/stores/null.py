"""NullStore: keeps nothing. For stateless APIs that must never write a session."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from . import _urls
from .base import ClosingStore, check_ttl

__all__ = ["NullStore"]


class NullStore(ClosingStore):
    """A store that is always empty: loads find nothing and saves report "not stored".

    With it, the middleware never sets a session cookie, and every request starts with an
    empty session that the app may use as scratch space.

    .. versionadded:: 0.1
    """

    @classmethod
    def from_url(cls, url: str, **options: Any) -> NullStore:
        """A store from ``null://``, which takes no host, path, query or options.

        :raises ConfigurationError: for another scheme or anything after ``null://``.
        """
        parts = _urls.split(url, ("null",), "NullStore")
        if parts.netloc or parts.path or parts.query:
            raise ConfigurationError(
                f"{_urls.redact(url)!r}: a null:// URL has no host, path or query; use null://."
            )
        return cls(**options)

    async def ping(self) -> None:
        """Always ready: there is nothing to reach."""

    async def load(self, key: str) -> bytes | None:
        """Always ``None``."""
        return None

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        """Keeps nothing and says so (``False``)."""
        check_ttl(ttl)
        return False

    async def add(self, key: str, data: bytes, *, ttl: int) -> bool:
        """Keeps nothing and says so (``False``)."""
        check_ttl(ttl)
        return False

    async def delete(self, key: str) -> bool:
        """Nothing to delete (``False``)."""
        return False

    async def aclose(self) -> None:
        """Nothing to release."""
