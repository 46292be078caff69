"""Where session data lives.

The cookie store (:mod:`asgisession.stores.cookie`) keeps the whole session in the cookie
and is the default. Server-side stores implement :class:`~asgisession.stores.base.Store`;
each lives in its own module so that importing one never imports another's client.
"""

from .base import Store, SupportsTouch

__all__ = ["Store", "SupportsTouch"]
