"""The seam between the middleware and a storage strategy.

The middleware does HTTP (reading cookies, adding headers); a backend decides what the
cookie holds. The cookie store (:class:`~asgisession.stores.cookie.CookieBackend`) keeps
the whole session in it; a server-side backend keeps an id there and the data in a
:class:`~asgisession.stores.base.Store`.
"""

from __future__ import annotations

from typing import Protocol

from .cookies import CookieOptions
from .session import LoadedState, Session

__all__ = ["SessionBackend"]


class SessionBackend(Protocol):
    """**Protocol:** loads a request's session from its cookie values and commits it.

    .. versionadded:: 0.1
    """

    #: The session cookie's name and attributes.
    cookie: CookieOptions

    #: Whether :meth:`open` works without I/O, so the session can load on first access.
    loads_in_line: bool

    def open(self, values: list[str], now: int) -> LoadedState:
        """Load without I/O; backends that need I/O raise :class:`SessionNotLoaded`."""
        ...

    async def load(self, values: list[str], now: int) -> LoadedState:
        """Load the session from the request's cookie values (most specific first)."""
        ...

    async def commit(self, session: Session, *, secure: bool, now: int) -> str | None:
        """Persist what changed; return the ``Set-Cookie`` value to send, or ``None``."""
        ...
