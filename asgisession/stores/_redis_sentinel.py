"""``redis+sentinel://`` URLs: a RedisStore that finds its primary through Redis Sentinel.

``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db][?query]``
names the sentinels (port 26379 unless given), the service (the name in the sentinels'
``sentinel monitor`` line) and the database (0 unless given). The user info is the Redis
servers' (``AUTH``), not the sentinels'; sentinels that need a password of their own get it
through the ``sentinel_kwargs={"password": ...}`` keyword.

The client is redis-py's ``Sentinel(...).master_for(service)``: each new connection asks
the sentinels where the primary is, and a connection still open to a primary that was
demoted is closed on its first ``READONLY`` reply, so after a failover the store follows
the promoted replica by itself. While the sentinels are still electing (Sentinel's
``down-after-milliseconds`` plus the failover itself, a few seconds), calls fail with
StoreUnavailable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from ..errors import ConfigurationError
from . import _urls
from ._redis_setup import setup_off_the_clock

if TYPE_CHECKING:
    from .redis import RedisStore

__all__ = ["SCHEME", "SENTINEL_PORT", "from_sentinel_url"]

SCHEME = "redis+sentinel"
#: Sentinel's usual port, for a host given without one.
SENTINEL_PORT = 26379


def from_sentinel_url(
    store_class: type[RedisStore],
    url: str,
    store_converters: dict[str, _urls.Converter],
    store_defaults: dict[str, Any],
    options: dict[str, Any],
) -> RedisStore:
    """A store over the primary the sentinels of ``url`` name (see the module docstring).

    ``options`` are the store's keywords and the client's (passed to ``master_for``), with
    ``sentinel_kwargs`` for the sentinel connections.
    """
    parts = _urls.split(url, (SCHEME,), "RedisStore", several=True)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    if not hostlist:
        raise ConfigurationError(f"{_urls.redact(url)!r}: name at least one sentinel host.")
    sentinels = _urls.split_hosts(url, hostlist, SENTINEL_PORT)
    path = [unquote(part) for part in parts.path.split("/")[1:] if part]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigurationError(
            f"{_urls.redact(url)!r}: the path {parts.path!r} is not /service or /service/db "
            "(as in redis+sentinel://127.0.0.1:26379/mymaster/0)."
        )
    service, db = path[0], int(path[1]) if len(path) == 2 else 0
    query = _urls.query_options(url, parts, store_converters)
    options = _urls.merge(url, query, options)
    store_options = {name: options.pop(name, default) for name, default in store_defaults.items()}
    sentinel_kwargs = options.pop("sentinel_kwargs", None)
    if userinfo:
        user, has_password, password = userinfo.partition(":")
        if user:
            options.setdefault("username", unquote(user))
        if has_password:
            options.setdefault("password", unquote(password))
    timeout = store_options["timeout"]
    if timeout is not None:
        options.setdefault("socket_timeout", timeout)
        options.setdefault("socket_connect_timeout", timeout)
    # As for redis:// (see _redis_setup): nothing sent before the first command.
    options.setdefault("protocol", 2)
    options.setdefault("driver_info", None)
    if sentinel_kwargs is None:
        sentinel_kwargs = {k: v for k, v in options.items() if k.startswith("socket_")}
        sentinel_kwargs["protocol"] = 2
    sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)
    try:
        client: Redis = sentinel.master_for(service, db=db, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{_urls.redact(url)!r}: {exc}") from None
    pool = client.connection_pool
    pool.connection_class = setup_off_the_clock(pool.connection_class)
    store = store_class(client, **store_options)
    store._owns_client = True
    store._sentinel = sentinel
    return store
