"""Server-side stores: bytes under a key, with a time to live. Nothing here knows sessions.

The default keeps the whole session in the cookie (:mod:`asgisession.backends.cookie`)
and needs no store. Server-side stores implement :class:`~asgisession.stores.base.Store`
and are passed as ``SessionMiddleware(app, ..., store=...)``; they are usable on their own
as async key-value stores too::

    from asgisession.stores import SQLiteStore, RedisStore, MemcachedStore, MemoryStore, NullStore
    from asgisession.stores import PostgresStore

Or from a URL, with :func:`from_url`::

    store = stores.from_url("redis://127.0.0.1:6379/0?namespace=app:&timeout=1.5")

Each adapter lives in its own module and is imported only when its name is first used (by
name or by a URL's scheme), so a cookie-store user never needs (or imports) a store client.
A missing client raises an ImportError with the pip command that installs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, install_hint
from ._urls import redact
from .base import (
    ManagedStore,
    Store,
    SupportsAdd,
    SupportsPing,
    SupportsTouch,
    SupportsUserIndex,
    SupportsVersioned,
)

if TYPE_CHECKING:
    from .memcached import MemcachedStore
    from .memory import MemoryStore
    from .null import NullStore
    from .postgres import PostgresStore
    from .redis import RedisStore
    from .sqlite import SQLiteStore

__all__ = [
    "ManagedStore",
    "MemcachedStore",
    "MemoryStore",
    "NullStore",
    "PostgresStore",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "SupportsAdd",
    "SupportsPing",
    "SupportsTouch",
    "SupportsUserIndex",
    "SupportsVersioned",
    "from_url",
]

# name -> (module, the client it needs, the extra that installs it)
_ADAPTERS = {
    "MemoryStore": ("memory", None, None),
    "NullStore": ("null", None, None),
    "SQLiteStore": ("sqlite", None, None),  # stdlib sqlite3 on a thread of its own
    "RedisStore": ("redis", "redis", "redis"),
    "MemcachedStore": ("memcached", "aiomcache", "memcached"),
    "PostgresStore": ("postgres", "asyncpg", "postgres"),
}

# URL scheme -> the adapter that takes it
_SCHEMES = {
    "memory": "MemoryStore",
    "null": "NullStore",
    "sqlite": "SQLiteStore",
    "redis": "RedisStore",
    "rediss": "RedisStore",
    "redis+sentinel": "RedisStore",
    "memcached": "MemcachedStore",
    "postgresql": "PostgresStore",
    "postgres": "PostgresStore",
}


def from_url(url: str, **options: Any) -> ManagedStore:
    """The store a URL names, built by that adapter's ``from_url(url, **options)``.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
    ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS),
    ``redis+sentinel://host[:port][,host[:port]...]/service[/db]`` (through Redis Sentinel),
    ``memcached://host[:port]`` (or ``memcached://host1:port1,host2:port2`` for several
    servers), ``postgresql://[user[:password]@]host[:port]/database`` (or ``postgres://``),
    ``memory://`` and ``null://``. The query sets the common
    options where the store has them (``?timeout=1.5&namespace=app:``); ``options`` are the
    adapter's keywords. Only the adapter the scheme names is imported. The store built owns
    what it built (its client, its file) and closes it in ``aclose()``.

    :raises ConfigurationError: for an unknown scheme or a URL the adapter cannot use,
        naming the wrong part (never the URL's password).
    :raises ImportError: when the adapter's client is not installed, naming the extra.

    .. versionadded:: 0.2
    """
    scheme = url.partition("://")[0].lower() if isinstance(url, str) and "://" in url else ""
    name = _SCHEMES.get(scheme)
    if name is None:
        known = ", ".join(f"{s}://" for s in _SCHEMES)
        shown = redact(url) if isinstance(url, str) else url
        raise ConfigurationError(f"{shown!r}: no store takes this scheme; use one of {known}.")
    adapter = __getattr__(name)
    store: ManagedStore = adapter.from_url(url, **options)
    return store


def __getattr__(name: str) -> Any:
    if name not in _ADAPTERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, client, extra = _ADAPTERS[name]
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if (
            client is None
            or extra is None
            or (missing != client and not missing.startswith(client + "."))
        ):
            raise
        raise ImportError(
            f"{name} needs the {client!r} package, which is not installed: "
            + install_hint(extra, client)
        ) from exc
    return getattr(module, name)
