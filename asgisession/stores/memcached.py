"""MemcachedStore: sessions in memcached, over the connections of an aiomcache pool.

``save`` is ``set`` (``replace`` when ``replace=True``: memcached writes only over an
existing item, so a deleted session is never written back), ``load`` is ``get``, ``touch``
is ``touch``, ``delete`` is ``delete``, ``add`` is ``add``. Rules on top of those in :mod:`.base`:

1. **Keys.** memcached takes keys of at most 250 bytes with no whitespace or control
   characters. ``namespace + key`` goes on the wire as is only when it is printable ASCII
   (``!`` to ``~``), at most 250 bytes, and ``key`` does not start with ``#``. Anything
   else becomes ``namespace + "#" + SHA-256 hex`` of ``namespace + key`` (just ``"#" + hex``
   when the namespace is too long to prefix), so raw input never reaches the server and two
   keys never share an item. :meth:`MemcachedStore.memcached_key` shows the result.
2. **TTLs.** memcached reads an exptime over 30 days (2,592,000 s) as an absolute unix
   time: ``ttl=40 days`` sent as is would mean February 1970, expired on arrival. Such TTLs
   are sent as ``int(clock()) + ttl`` (see :func:`exptime`), which assumes the memcached
   host's clock agrees with this one.
3. **Sizes.** memcached refuses an item larger than its ``-I`` setting (1 MB by default),
   counting the key and a ~60-byte header. A value that cannot fit under ``max_item_size``
   raises :class:`ItemTooLarge` before anything is sent; a refusal by the server (its
   ``-I`` smaller than ``max_item_size``) raises it too.
4. **Cancellation guard.** aiomcache 0.8 pools a connection whose command was cancelled
   mid-reply, so the next command reads the late reply. This store therefore borrows
   connections from the client's pool and speaks the protocol itself
   (:mod:`asgisession.stores._memcached_protocol` says why and how); a connection whose
   command did not finish is closed, never pooled. A command that finds no idle connection
   opens one (up to ``pool_size``) in a task of its own: if its deadline passes first, it
   gives up, and the connection joins the pool for the next one. Every command is bounded
   by ``timeout``:
   on Python 3.11+ by one timer per store (:mod:`.deadlines`), which cuts a command off
   between ``timeout`` and ``timeout * 1.125`` seconds; on 3.10 by ``asyncio.wait_for``.
5. **User index.** memcached has no sets: an index is one item holding a compact JSON object,
   member -> expires_at. Updates are ``gets`` + ``cas`` (``add`` when there is no item),
   pruning members expired by the store's clock; a try that loses the race is retried after
   a short random pause, up to ``index_tries`` (8) times, then :class:`IndexContention` is
   raised. ``index_members`` prunes by the ``now`` it is given and writes the pruned index
   back (one try). The item lives until its latest member expires. An emptied index is
   written (by ``cas``) with exptime -1, which memcached reads as "already expired": a
   delete that, unlike ``delete``, cannot wipe out a concurrent ``index_add``.
6. **Several servers** (``servers=``). Keys are spread over them by consistent hashing, a
   server marked down after a command it did not answer is skipped for
   ``down_retry_delay`` seconds, and with ``failover`` its keys go to the next server
   meanwhile (:mod:`asgisession.stores._memcached_ring` has the rules). Every key, the
   user index's included, lives on the one server its own hash picks: an index is one
   item, read and written (``gets``/``cas``) on that server only, so it is as coherent as
   with one server. Its members are session keys, each held wherever its own hash puts it.
   While an index's server is down and ``failover`` sends its commands to the next one, the
   index there starts empty, and once its server is back the members added meanwhile are
   not in the index it holds (docs/stores.md, "What a failure loses").

The store runs on asyncio only (aiomcache); called under Trio, it raises
:class:`~asgisession.errors.ConfigurationError` saying so.

Errors: refused, reset or timed-out connections, malformed replies and memcached's
``ERROR``/``CLIENT_ERROR``/``SERVER_ERROR`` raise
:class:`~asgisession.errors.StoreUnavailable`, with the original error as ``__cause__``.
Two errors of this store's own: :class:`ItemTooLarge` (a ``ValueError``, not
StoreUnavailable: retrying cannot help, the value must shrink or the server's ``-I`` grow)
and :class:`IndexContention`, which *is* a StoreUnavailable: nothing was changed and a
later retry can succeed, so the middleware answers 503 with Retry-After as for any store
that is out of reach.

It runs past 300 lines because the user index on a store without transactions (CAS retries,
expiry of index entries) is part of the adapter, as are the checks of its settings; the
wire protocol is in ``_memcached_protocol.py``, the ring of servers in
``_memcached_ring.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiomcache
import msgspec
from aiomcache.exceptions import ClientException
from aiomcache.pool import Connection

from ..errors import AsgiSessionError, ConfigurationError, StoreUnavailable
from . import _urls
from ._memcached_protocol import ServerError, Unexpected, exchange, retrieve, version
from ._memcached_ring import Node, Ring
from ._slow import QUARTER_OF_TIMEOUT, SlowCalls, threshold
from .base import ClosingStore, asyncio_only, check_ttl
from .deadlines import Deadlines

__all__ = ["IndexContention", "ItemTooLarge", "MemcachedStore", "exptime"]

logger: logging.Logger = logging.getLogger("asgisession")

_T = TypeVar("_T")

#: memcached reads an exptime above this many seconds (30 days) as an absolute unix time.
RELATIVE_TTL_LIMIT = 60 * 60 * 24 * 30
#: The longest key memcached accepts, in bytes.
MAX_KEY_LENGTH = 250
#: Bytes memcached adds to key plus value when it checks an item against ``-I``: the item
#: header, CAS and terminators (59 measured on memcached 1.6, rounded up).
ITEM_OVERHEAD = 64

_PRINTABLE = re.compile("[!-~]*")
_HASH_MARK = "#"
_SHA256_HEX = 64
_INDEX_TYPE = dict[str, int]


class ItemTooLarge(AsgiSessionError, ValueError):
    """Raised when a value is larger than memcached keeps in one item; it was not stored.

    It is checked before sending, against ``max_item_size``; a server whose ``-I`` is smaller
    refuses the item, which raises this error too.

    :ivar key: the store key the value was for.
    :ivar size: bytes of the value.
    :ivar limit: the largest value that fits under this key, in bytes.

    .. versionadded:: 0.1
    """

    def __init__(
        self, key: str, size: int, limit: int, *, max_item_size: int, by_server: bool = False
    ) -> None:
        self.key = key
        self.size = size
        self.limit = limit
        if by_server:
            why = (
                f"memcached refused it, so its -I is below max_item_size={max_item_size} "
                "(memcached drops the old value when it refuses a set)"
            )
        else:
            why = (
                f"at most {limit} bytes fit (max_item_size={max_item_size}, less the key "
                "and memcached's item header), so nothing was sent"
            )
        super().__init__(
            f"the value for {key!r} is {size} bytes; {why}. Store less in "
            "the session (ids, not objects), or start memcached with a larger item size "
            "(e.g. -I 2m) and pass the same MemcachedStore(max_item_size=...)."
        )


class IndexContention(StoreUnavailable):
    """Raised when a user-index update loses its compare-and-swap race on every try.

    Each try reads the index with ``gets`` and writes it with ``cas``; a try fails only when
    another writer changed the index in between, so this means many concurrent logins or
    logouts of one user. Nothing was changed; retrying later is safe, which is why it is a
    :class:`StoreUnavailable` (the middleware answers 503 with Retry-After).

    :ivar index: the index key.
    :ivar tries: how many times the update was tried.

    .. versionadded:: 0.1
    """

    def __init__(self, index: str, tries: int) -> None:
        self.index = index
        self.tries = tries
        super().__init__(
            f"the user index {index!r} changed under every one of {tries} updates (gets/cas); "
            "nothing was changed. Retry later; if this persists, something is rewriting it."
        )


def exptime(ttl: int, *, now: float) -> int:
    """The memcached exptime for ``ttl`` seconds from ``now`` (unix seconds).

    Up to 30 days the TTL itself; beyond, the absolute time ``int(now) + ttl``, because
    memcached reads any exptime over 30 days as a unix time. Rounding ``now`` down can only
    end an item early, never serve it late.
    """
    check_ttl(ttl)
    return ttl if ttl <= RELATIVE_TTL_LIMIT else int(now) + ttl


def _setting(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    too_big = maximum is not None and isinstance(value, int) and value > maximum
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or too_big:
        bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigurationError(f"{name}={value!r}; give a whole number {bound}.")
    return value


def _listed(servers: object) -> list[object]:
    if isinstance(servers, str | bytes) or not isinstance(servers, Sequence):
        raise ConfigurationError(
            f"servers={servers!r}; give a list of (host, port) pairs or 'host:port' strings."
        )
    return list(servers)


def _server(server: object) -> tuple[str, int]:
    """``(host, port)`` from a ``(host, port)`` pair or a ``"host[:port]"`` string."""
    if isinstance(server, str):
        try:
            parts = urlsplit("//" + server)
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        if not host or parts.netloc != server or parts.username is not None:
            raise ConfigurationError(f"server {server!r}; give 'host:port' (or just 'host').")
        return host, 11211 if port is None else port
    if isinstance(server, tuple) and len(server) == 2 and isinstance(server[0], str) and server[0]:
        return server[0], _setting("port", server[1], 1, 65535)
    raise ConfigurationError(f"server {server!r}; give a (host, port) pair or 'host:port'.")


class MemcachedStore(ClosingStore):
    """Keeps sessions in memcached, through an :class:`aiomcache.Client`'s connection pool.

    Implements :class:`~.base.Store`, :class:`~.base.SupportsTouch` and
    :class:`~.base.SupportsUserIndex`. The module docstring has the rules for keys, TTLs,
    sizes, cancellation and the user index.

    **Ownership.** Without ``client``, the store builds its own ``aiomcache.Client(host,
    port, pool_size=pool_size)`` on first use, inside the running event loop, and closes it
    in :meth:`aclose`. A ``client`` you pass in is used as is (``host``, ``port`` and
    ``pool_size`` are then ignored) and never closed: you close it, after the store. It can
    be shared; the store only borrows connections from its pool.

    :param host: memcached's address, when the store builds its client.
    :param port: memcached's port, when the store builds its client.
    :param namespace: prefix of every key, printable ASCII without spaces (may be empty).
    :param pool_size: the most connections open at once, which is also the most commands in
        flight (more wait for one, within ``timeout``). Connections are opened as commands
        need them, each off the clock of the command that asked (rule 4). 50 by default, as
        RedisStore's pool: with fewer, a slow memcached makes commands queue for
        connections and time out while waiting.
    :param timeout: seconds any one memcached command may take, waiting for a pooled
        connection included, before it raises StoreUnavailable.
    :param slow_after: a command that completes in this many seconds or more is logged at
        WARNING (store, command, duration) and counted in :attr:`slow_calls`; a quarter of
        ``timeout`` by default, ``None`` for never.
    :param max_item_size: memcached's ``-I`` in bytes (1 MB by default).
    :param client: an aiomcache client to use instead of building one.
    :param clock: returns unix time; for tests.
    :param servers: several memcached servers, as ``(host, port)`` pairs or ``"host:port"``
        strings, instead of ``host`` and ``port``; keys are spread over them by consistent
        hashing (rule 6 of the module). Each gets its own client and pool of ``pool_size``.
    :param failover: with several servers, whether the keys of a server marked down go to
        the next server on the ring (``True``, as Rails' Dalli does) or fail at once with
        StoreUnavailable (``False``) until it is tried again.
    :param down_retry_delay: with several servers, seconds a server that did not answer is
        skipped before it is tried again (30, as Dalli).
    :raises ConfigurationError: for an invalid setting.

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
       ``pool_size`` defaults to 50 (it was 8), and connections are opened on demand;
       ``servers``, ``failover`` and ``down_retry_delay``: one store over several servers.
    """

    #: Tries of a user-index update (``gets`` then ``cas``) before :class:`IndexContention`.
    index_tries = 8

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 11211,
        *,
        namespace: str = "asgisession:",
        pool_size: int = 50,
        timeout: float = 2.0,
        max_item_size: int = 1024 * 1024,
        client: aiomcache.Client | None = None,
        clock: Callable[[], float] = time.time,
        slow_after: float | None = QUARTER_OF_TIMEOUT,
        servers: Sequence[tuple[str, int] | str] | None = None,
        failover: bool = True,
        down_retry_delay: float = 30.0,
    ) -> None:
        if not isinstance(namespace, str) or not _PRINTABLE.fullmatch(namespace):
            raise ConfigurationError(
                f"namespace={namespace!r}; memcached keys take printable ASCII only "
                "(no spaces or control characters)."
            )
        if not isinstance(host, str) or not host:
            raise ConfigurationError(f"host={host!r}; give a host name or address.")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not (0 < timeout < math.inf)
        ):
            raise ConfigurationError(f"timeout={timeout!r}; give seconds > 0.")
        self.host: str = host
        self.port: int = _setting("port", port, 1, 65535)
        self.pool_size: int = _setting("pool_size", pool_size, 1)
        # 1024: memcached's least -I
        self.max_item_size: int = _setting("max_item_size", max_item_size, 1024)
        self.namespace = namespace
        self.timeout: float = float(timeout)
        self._deadlines = Deadlines(self.timeout)
        self._slow = SlowCalls("memcached", threshold(slow_after, self.timeout))
        self._clock = clock
        self._closed = False
        if (
            isinstance(down_retry_delay, bool)
            or not isinstance(down_retry_delay, int | float)
            or not (0 < down_retry_delay < math.inf)
        ):
            raise ConfigurationError(f"down_retry_delay={down_retry_delay!r}; give seconds > 0.")
        self.down_retry_delay: float = float(down_retry_delay)
        if servers is None:
            nodes = [Node(self.host, self.port, client)]
        else:
            if client is not None:
                raise ConfigurationError(
                    "give servers= or client=, not both: each server gets a client of its own."
                )
            if (host, port) != ("127.0.0.1", 11211):
                raise ConfigurationError("give servers= or host and port, not both.")
            nodes = [Node(*_server(server)) for server in _listed(servers)]
        self.failover: bool = bool(failover)
        self._ring = Ring(nodes, failover=self.failover)
        self.host, self.port = nodes[0].host, nodes[0].port
        fits = len(namespace) + len(_HASH_MARK) + _SHA256_HEX <= MAX_KEY_LENGTH
        self._hash_prefix = (namespace if fits else "") + _HASH_MARK
        if client is not None:
            nodes[0].use_pool_of(client, self.pool_size)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemcachedStore:
        """A store that builds its own client for ``memcached://host[:port]``.

        The host defaults to 127.0.0.1 and the port to 11211. The query may set
        ``timeout``, ``slow_after``, ``namespace``, ``pool_size`` and ``max_item_size``;
        ``options`` are the constructor's keywords, and one option may not come both ways.
        ``memcached://host1:port1,host2:port2,...`` names several servers (``servers=``):
        keys are spread over them by consistent hashing, and the query may also set
        ``failover`` (true or false) and ``down_retry_delay`` (seconds).

        :raises ConfigurationError: for another scheme, several hosts, user info, a path,
            or a bad parameter, naming the part.
        """
        parts = _urls.split(url, ("memcached",), "MemcachedStore", several=True)
        if "@" in parts.netloc:
            raise ConfigurationError(
                f"{_urls.redact(url)!r}: memcached's text protocol has no user or password; "
                "remove the user info."
            )
        if parts.path not in ("", "/"):
            raise ConfigurationError(
                f"{_urls.redact(url)!r}: a memcached URL has no path ({parts.path!r})."
            )
        converters: dict[str, _urls.Converter] = {
            "timeout": _urls.as_seconds,
            "slow_after": _urls.as_seconds_or_none,
            "namespace": _urls.as_str,
            "pool_size": _urls.as_int(1),
            "max_item_size": _urls.as_int(1024),
            "failover": _urls.as_bool,
            "down_retry_delay": _urls.as_seconds,
        }
        query = _urls.query_options(url, parts, converters)
        options = _urls.merge(url, query, options)
        if "," in parts.netloc:
            options["servers"] = _urls.split_hosts(url, parts.netloc, 11211)
            return cls(**options)
        if parts.hostname:
            options["host"] = unquote(parts.hostname)
        try:
            port = parts.port
        except ValueError:
            port_text = parts.netloc.rpartition(":")[2]
            raise ConfigurationError(
                f"{_urls.redact(url)!r}: the port {port_text!r} is not a number from 1 to 65535."
            ) from None
        if port is not None:
            options["port"] = port
        return cls(**options)

    @property
    def slow_calls(self) -> Counter[str]:
        """Commands that completed in ``slow_after`` seconds or more, by name (``"a get"``)."""
        return self._slow.counts

    @property
    def client(self) -> aiomcache.Client | None:
        """The aiomcache client in use: the one passed in, or the one built on first use.

        ``None`` before first use, and always with several servers (each has its own).
        """
        nodes = self._ring.nodes
        return nodes[0].client if len(nodes) == 1 else None

    @property
    def servers(self) -> tuple[tuple[str, int], ...]:
        """The servers this store spreads its keys over, as ``(host, port)``."""
        return tuple((node.host, node.port) for node in self._ring.nodes)

    def server_for(self, key: str) -> tuple[str, int]:
        """The ``(host, port)`` that holds store key ``key`` while every server is up."""
        node = self._ring.owner(self.memcached_key(key))
        return node.host, node.port

    def memcached_key(self, key: str) -> bytes:
        """The key sent to memcached for store key ``key`` (see rule 1 of the module)."""
        full = self.namespace + key
        direct = 0 < len(full) <= MAX_KEY_LENGTH and not key.startswith(_HASH_MARK)
        if direct and _PRINTABLE.fullmatch(full):
            return full.encode("ascii")
        digest = hashlib.sha256(full.encode("utf-8", "surrogatepass")).hexdigest()
        return (self._hash_prefix + digest).encode("ascii")

    async def load(self, key: str) -> bytes | None:
        """Return the bytes under ``key``, or ``None`` when missing or expired."""
        wire = self.memcached_key(key)
        value, _ = await self._run("a get", wire, lambda conn: retrieve(conn, wire, cas=False))
        return value

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        """Store ``data`` for ``ttl`` seconds; with ``replace``, only over a live key.

        :raises ItemTooLarge: before sending, when ``data`` cannot fit in one item.
        """
        expires = exptime(ttl, now=self._clock())
        return await self._store(b"replace" if replace else b"set", key, data, expires)

    async def load_versioned(self, key: str) -> tuple[bytes, int] | None:
        """The bytes under ``key`` and their CAS unique (``gets``), or ``None``."""
        wire = self.memcached_key(key)
        value, cas = await self._run("a gets", wire, lambda conn: retrieve(conn, wire, cas=True))
        return None if value is None else (value, cas)

    async def save_if(self, key: str, data: bytes, *, ttl: int, version: bytes | int) -> bool:
        """Store ``data`` for ``ttl`` seconds only if the item's CAS unique is ``version``.

        :raises ItemTooLarge: before sending, when ``data`` cannot fit in one item.
        """
        if isinstance(version, bool) or not isinstance(version, int):
            return False  # not a version this store handed out
        expires = exptime(ttl, now=self._clock())
        return await self._store(b"cas", key, data, expires, version)

    async def add(self, key: str, data: bytes, *, ttl: int) -> bool:
        """Store ``data`` for ``ttl`` seconds only if no live item is there (``add``).

        :raises ItemTooLarge: before sending, when ``data`` cannot fit in one item.
        """
        return await self._store(b"add", key, data, exptime(ttl, now=self._clock()))

    async def touch(self, key: str, *, ttl: int) -> bool:
        """Reset ``key``'s time to live without rewriting it; return whether it existed."""
        wire = self.memcached_key(key)
        line = b"touch %s %d" % (wire, exptime(ttl, now=self._clock()))
        reply = await self._run(
            "a touch", wire, lambda conn: exchange(conn, line, b"TOUCHED", b"NOT_FOUND")
        )
        return reply == b"TOUCHED"

    async def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it was there (a missing key is no error)."""
        wire = self.memcached_key(key)
        line = b"delete " + wire
        reply = await self._run(
            "a delete", wire, lambda conn: exchange(conn, line, b"DELETED", b"NOT_FOUND")
        )
        return reply == b"DELETED"

    async def index_add(self, index: str, member: str, *, expires_at: int) -> None:
        """Add ``member`` to ``index`` until ``expires_at`` (unix seconds), or move its expiry.

        :raises IndexContention: when concurrent updates win every try.
        """
        if isinstance(expires_at, bool) or not isinstance(expires_at, int):
            raise ConfigurationError(f"expires_at={expires_at!r}; give whole unix seconds.")
        await self._update_index(index, member, expires_at)

    async def index_remove(self, index: str, member: str) -> None:
        """Remove ``member`` from ``index``; a missing member is not an error.

        :raises IndexContention: when concurrent updates win every try.
        """
        await self._update_index(index, member, None)

    async def index_members(self, index: str, *, now: int) -> dict[str, int]:
        """The members of ``index`` that expire after ``now``; writes back a pruned index."""
        wire = self.memcached_key(index)
        raw, cas = await self._run("a gets", wire, lambda conn: retrieve(conn, wire, cas=True))
        members = self._decode_index(index, raw)
        live = {name: at for name, at in members.items() if at > now}
        if raw is not None and live != members:
            # One try: losing the race means another writer has just rewritten (and pruned) it.
            await self._write_index(index, live, cas)
        return live

    async def ping(self) -> None:
        """Ask memcached its ``version``, within ``timeout``.

        :raises StoreUnavailable: when memcached does not answer or refuses the connection.
        """
        if len(self._ring.nodes) == 1:
            await self._run_on(self._ring.nodes[0], "a version", version)
            return
        results = await asyncio.gather(
            *(self._run_on(node, "a version", version) for node in self._ring.nodes),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        for error in failed:
            if not isinstance(error, Exception):
                raise error  # a cancellation, not an answer
        if failed and (not self._ring.failover or len(failed) == len(results)):
            raise failed[0]

    async def aclose(self) -> None:
        """Close the client if this store built it; later calls raise StoreUnavailable."""
        if self._closed:
            return
        self._closed = True
        for node in self._ring.nodes:
            await node.aclose()

    # -- internals ------------------------------------------------------------------------

    async def _store(
        self, command: bytes, key: str, data: bytes, expires: int, cas: int | None = None
    ) -> bool:
        """``set``/``replace``/``add``/``cas`` one item; whether memcached stored it."""
        wire = self.memcached_key(key)
        limit = self.max_item_size - len(wire) - ITEM_OVERHEAD
        if len(data) > limit:
            raise ItemTooLarge(key, len(data), limit, max_item_size=self.max_item_size)
        line = b"%s %s 0 %d %d" % (command, wire, expires, len(data))
        if cas is not None:
            line += b" %d" % cas

        async def send(conn: Connection) -> bytes:
            try:
                expected = (b"STORED", b"NOT_STORED", b"EXISTS", b"NOT_FOUND")
                return await exchange(conn, line, *expected, data=data)
            except ServerError as exc:
                if "too large" in str(exc):
                    raise ItemTooLarge(
                        key, len(data), limit, max_item_size=self.max_item_size, by_server=True
                    ) from exc
                raise

        return await self._run(f"a {command.decode()}", wire, send) == b"STORED"

    async def _update_index(self, index: str, member: str, expires_at: int | None) -> None:
        """Set (or, with ``None``, remove) one member, prune, compare-and-swap; retry a bit."""
        wire = self.memcached_key(index)
        for attempt in range(self.index_tries):
            raw, cas = await self._run("a gets", wire, lambda conn: retrieve(conn, wire, cas=True))
            before = self._decode_index(index, raw)
            members = dict(before)
            if expires_at is None:
                members.pop(member, None)
            else:
                members[member] = expires_at
            now = int(self._clock())
            members = {name: at for name, at in members.items() if at > now}
            if members == before and (raw is not None or not members):
                return  # nothing to write
            if await self._write_index(index, members, None if raw is None else cas):
                return
            # Another writer got in between: back off a little (jitter, not security).
            await asyncio.sleep(random.uniform(0, 0.001 * 2**attempt))  # noqa: S311
        raise IndexContention(index, self.index_tries)

    async def _write_index(self, index: str, members: _INDEX_TYPE, cas: int | None) -> bool:
        """``add`` (no ``cas``) or ``cas`` the index; an empty one is written as expired."""
        now = self._clock()
        expires = -1  # memcached reads a negative exptime as "already expired"
        if members:
            expires = exptime(max(1, max(members.values()) - int(now)), now=now)
        data = msgspec.json.encode(members)
        return await self._store(b"add" if cas is None else b"cas", index, data, expires, cas)

    @staticmethod
    def _decode_index(index: str, raw: bytes | None) -> _INDEX_TYPE:
        if raw is None:
            return {}
        try:
            return msgspec.json.decode(raw, type=_INDEX_TYPE)
        except msgspec.DecodeError:
            logger.warning("memcached user index %r is unreadable; treating it as empty", index)
            return {}

    async def _run(
        self, what: str, wire: bytes, command: Callable[[Connection], Awaitable[_T]]
    ) -> _T:
        """Run ``command`` on the server that holds ``wire`` now (see the ring's rules)."""
        node = self._ring.node_for(wire)
        if not node.trying:
            return await self._run_on(node, what, command)
        try:  # the one command trying a server after its delay
            return await self._run_on(node, what, command)
        finally:
            node.trying = False

    async def _run_on(
        self, node: Node, what: str, command: Callable[[Connection], Awaitable[_T]]
    ) -> _T:
        """Run ``command`` on a pooled connection to ``node`` within ``timeout``; map failures."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # under Trio, say so instead of failing somewhere in aiomcache
            raise asyncio_only("MemcachedStore", "aiomcache is asyncio-only") from None
        if self._closed:
            raise StoreUnavailable("this MemcachedStore is closed; aclose() was called on it")
        borrower = node.borrower or node.borrow(self.pool_size)
        began = time.monotonic()
        try:
            if sys.version_info >= (3, 11):
                with self._deadlines.bound():
                    result = await borrower.run(command)
            else:
                result = await asyncio.wait_for(borrower.run(command), self.timeout)
        except (TimeoutError, asyncio.TimeoutError):  # distinct classes on Python 3.10
            self._failed(node, f"no answer to {what} within {self.timeout} s")
            raise StoreUnavailable(
                f"memcached at {node.address} did not answer {what} within {self.timeout} s"
            ) from None
        except (OSError, EOFError, ClientException) as exc:
            self._failed(node, repr(exc))
            raise StoreUnavailable(f"memcached at {node.address} failed {what}: {exc!r}") from exc
        except Unexpected as exc:  # it answered, but not as memcached should: not "down"
            raise StoreUnavailable(f"memcached at {node.address} failed {what}: {exc!r}") from exc
        if node.down_until:
            node.answered()
        took = time.monotonic() - began
        if took >= self._slow.threshold:
            self._slow.record(what, took)
        return result

    def _failed(self, node: Node, why: str) -> None:
        """A command got no answer from ``node``: with several servers, mark it down."""
        if len(self._ring.nodes) > 1:
            node.mark_down(self.down_retry_delay, why, failover=self.failover)
