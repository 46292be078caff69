"""Server-side stores: bytes under a key, with a time to live. Nothing here knows sessions.

The default keeps the whole session in the cookie (:mod:`asgisession.backends.cookie`)
and needs no store. Server-side stores implement :class:`~asgisession.stores.base.Store`
and are passed as ``SessionMiddleware(app, ..., store=...)``; they are usable on their own
as async key-value stores too::

    from asgisession.stores import SQLiteStore, RedisStore, MemcachedStore, MemoryStore, NullStore

Each adapter lives in its own module and is imported only when its name is first used, so
a cookie-store user never needs (or imports) a store client. A missing client raises an
ImportError that names the extra to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import Store, SupportsTouch, SupportsUserIndex

if TYPE_CHECKING:
    from .memcached import MemcachedStore
    from .memory import MemoryStore
    from .null import NullStore
    from .redis import RedisStore
    from .sqlite import SQLiteStore

__all__ = [
    "MemcachedStore",
    "MemoryStore",
    "NullStore",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "SupportsTouch",
    "SupportsUserIndex",
]

# name -> (module, the client it needs, the extra that installs it)
_ADAPTERS = {
    "MemoryStore": ("memory", None, None),
    "NullStore": ("null", None, None),
    "SQLiteStore": ("sqlite", None, None),  # stdlib sqlite3 on a thread of its own
    "RedisStore": ("redis", "redis", "redis"),
    "MemcachedStore": ("memcached", "aiomcache", "memcached"),
}


def __getattr__(name: str) -> Any:
    if name not in _ADAPTERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, client, extra = _ADAPTERS[name]
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if client is None or (missing != client and not missing.startswith(client + ".")):
            raise
        raise ImportError(
            f"{name} needs the {client!r} package: pip install 'asgisession[{extra}]'"
        ) from exc
    return getattr(module, name)
