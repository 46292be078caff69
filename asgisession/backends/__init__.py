"""Session backends: where a request's cookie becomes a session, and a session a cookie.

:class:`CookieBackend` keeps the whole session in the cookie (the default);
:class:`ServerBackend` keeps a sealed id in the cookie and the data in a
:class:`~asgisession.stores.base.Store`. Both implement :class:`SessionBackend`, the seam
the middleware talks to. Storage itself (bytes under a key, with a TTL) is
:mod:`asgisession.stores`; nothing there knows about sessions.
"""

from __future__ import annotations

from .base import SessionBackend
from .cookie import CookieBackend
from .server import ServerBackend

__all__ = ["CookieBackend", "ServerBackend", "SessionBackend"]
