"""RedisStore: sessions in Redis, a Redis Cluster or Redis behind Sentinel, through redis-py.

Key layout (``namespace`` defaults to ``"asgisession:"``)::

    <namespace><key>            a string: the session bytes, with the TTL given to save()
    <namespace>idx:{<index>}    a sorted set: member = session key, score = expires_at

Index members past their score are pruned by ``index_members`` (ZREMRANGEBYSCORE, then
ZRANGE, in one MULTI). The index key itself expires an hour after its latest member
(:attr:`RedisStore.index_grace`), so an index nobody reads again still goes away.

Redis Cluster notes:

* Every command touches a single key, except the MULTI in ``index_members``, whose
  commands touch only the index key, so every transaction is single-slot.
* Session keys carry no hash tag, so sessions spread over all the cluster's slots.
* The index key carries its own hash tag, ``{<index>}``, so its slot depends on the index
  alone and not on the namespace or prefix. One key is single-slot with or without a
  tag; the tag is there so that any later per-index key tagged the same way shares
  the slot and can join the index's MULTI.
* The namespace may not contain ``{`` or ``}``. A tag there would hash every key by the
  namespace, putting all sessions into one slot on one node.

Redis Sentinel notes (``redis+sentinel://`` URLs, :mod:`._redis_sentinel`):

* The store follows a failover by itself: new connections ask the sentinels for the
  primary. Until the sentinels have promoted a replica (``down-after-milliseconds``, then
  the election and the promotion), calls fail with StoreUnavailable.
* Redis replicates asynchronously: a write is acknowledged once the primary has it, before
  any replica does. A failover promotes a replica that may lack the last writes (usually
  milliseconds' worth; more if it lagged or was cut off from the primary), so a session
  saved, or deleted, just before the primary failed can come back as it was before: a
  logout undone, a login lost. With ``wait_replicas=N`` each write is followed by
  ``WAIT N`` on its connection and fails with StoreUnavailable unless N replicas have it
  within ``wait_timeout``; a write that returns has reached N replicas, so a failover to
  one of them keeps it.
  (Redis still does not promise this: a replica that acknowledged may not be the one
  promoted, and WAIT does not make Redis strongly consistent.)

The store runs on asyncio only (redis-py's ``redis.asyncio``); called under Trio, it raises
:class:`~asgisession.errors.ConfigurationError` saying so.

Errors: every redis-py error (whose ``ConnectionError`` and ``TimeoutError`` shadow the
builtins) and every timeout becomes :class:`~asgisession.errors.StoreUnavailable`, with
the original error as ``__cause__``.

It runs past 300 lines because single servers, Sentinel (``WAIT`` after writes) and Redis
Cluster (hash tags, per-node calls) are one adapter with one set of errors; parsing a
``redis+sentinel://`` URL is in ``_redis_sentinel.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import NoScriptError, RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import ConfigurationError, StoreUnavailable
from . import _urls
from ._redis_sentinel import SCHEME as SENTINEL_SCHEME
from ._redis_sentinel import from_sentinel_url
from ._redis_setup import setup_off_the_clock
from ._slow import QUARTER_OF_TIMEOUT, SlowCalls, threshold
from .base import ClosingStore, asyncio_only, check_ttl
from .deadlines import Deadlines

__all__ = ["RedisStore"]

_T = TypeVar("_T")

#: The connection options redis-py reads from a URL's query ("timeout" is the store's).
_CLIENT_QUERY = frozenset(URL_QUERY_ARGUMENT_PARSERS) - {"timeout"}


class _Script:
    """A Lua script of the store's, sent by its SHA1 (``EVALSHA``) once the server has it.

    ``EVALSHA`` spares each call the script's text, and the server hashing it to find it
    in its cache: a session write cost redis-server ~9,000 fewer instructions than with
    ``EVAL`` (56,400 -> 47,100; redis-py's side is the same; callgrind, issue #17).
    :meth:`RedisStore._run_script` says when each is sent.
    """

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


# ZADD, then move the key's expiry to the latest member's score plus a grace period, in
# one atomic step. A MULTI cannot do this before Redis 7.0: EXPIREAT ... GT never sets an
# expiry on a key that has none, and only 7.0 added the NX/GT flags at all.
_INDEX_ADD = _Script("""
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', KEYS[1], string.format('%d', tonumber(last[2]) + tonumber(ARGV[3])))
return 1
""")


# SET only if the value is still the one read (a compare-and-set on one key, so it runs on
# Redis Cluster too). A script rather than WATCH/MULTI: that needs a connection of its own
# held across three round trips, and a script is one. The version is the whole value: a
# digest would send fewer bytes but cost more CPU on both sides (for 3 KB records, +18,000
# instructions in Python for hashlib and +40,000 in redis-server for redis.sha1hex,
# callgrind, issue #17), and the records are small by design.
_SAVE_IF = _Script("""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
""")

#: The store's own keywords that a URL's query may set too, with their defaults.
_STORE_DEFAULTS: dict[str, Any] = {
    "namespace": "asgisession:",
    "timeout": 2.0,
    "slow_after": QUARTER_OF_TIMEOUT,
    "wait_replicas": 0,
    "wait_timeout": None,
}


class RedisStore(ClosingStore):
    """Keeps sessions in Redis (a single server or a Redis Cluster).

    ``save`` is ``SET key value EX ttl`` (``XX`` when ``replace=True``, so a deleted
    session is never written back), ``load`` is ``GET``, ``touch`` is ``EXPIRE`` (the data
    is not rewritten), ``delete`` is ``DEL``, ``add`` is ``SET NX EX``. The user index is a
    sorted set per index.
    See the module docstring for the key layout and the cluster notes.

    **Ownership.** A store built around a client you pass in never closes that client:
    you created it and you close it (``await client.aclose()``), after the store is done
    with it. That client can be shared with the rest of your app. A store built by
    :meth:`from_url` owns the client it built and closes it in :meth:`aclose`. Don't
    reach into such a store for its :attr:`client` to use it elsewhere, because it
    stops working when the store closes.

    **Timeouts.** When ``timeout`` is set, every operation is cut off after it, for
    clients passed in and built alike: on Python 3.11+ by one timer per store
    (``asgisession.stores.deadlines``), between ``timeout`` and ``timeout * 1.125``
    seconds; on 3.10 by ``asyncio.wait_for``.
    That bounds the whole operation: waiting for a pooled connection, connecting,
    redis-py's own retries with their backoff (10 by default in redis-py 8), and
    cluster redirects. (For a client built by :meth:`from_url`, the caller stops waiting
    for a new connection at the timeout, but the connection's setup goes on; see there.)
    A ``socket_timeout`` bounds each socket read only, so with retries
    an operation could take many times as long. Cancelling a command mid-flight is safe:
    redis-py drops a connection whose reply is still unread instead of returning it to
    the pool. The tests check this against a real server. ``timeout=None`` leaves only
    the client's own timeouts.

    :param client: a ``redis.asyncio.Redis`` or ``redis.asyncio.RedisCluster`` created
        with ``decode_responses=False`` (the default). Values are opaque bytes, which
        decoding would corrupt or fail on.
    :param namespace: prefixed to every key; no ``{`` or ``}`` (see the module docstring).
    :param timeout: seconds each operation may take before it raises
        :class:`~asgisession.errors.StoreUnavailable`, or ``None`` for no bound.
    :param slow_after: an operation that completes in this many seconds or more is logged
        at WARNING (store, operation, duration) and counted in :attr:`slow_calls`; a quarter
        of ``timeout`` by default, ``None`` for never.
    :param wait_replicas: replicas that must have each write (``WAIT``) before it returns;
        when fewer acknowledge it within ``wait_timeout``, the write raises StoreUnavailable
        (it is on the primary, but a failover could lose it). 0, the default, does not wait.
        Not for a RedisCluster client. See the module docstring for what it buys.
    :param wait_timeout: seconds each write waits for ``wait_replicas`` replicas; half of
        ``timeout`` by default (1 s when ``timeout`` is ``None``), so that a replica
        shortfall is reported as such, within the call's own timeout.
    :raises ConfigurationError: for a decoding client, a bad namespace, a bad timeout or a
        bad ``wait_replicas``/``wait_timeout``.

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
       ``wait_replicas`` and ``wait_timeout``; ``redis+sentinel://`` URLs in :meth:`from_url`.
    """

    #: Seconds an index key outlives its latest member. The key's expiry only collects
    #: garbage (members are filtered by score against the caller's clock). The margin keeps
    #: an app clock running behind the Redis clock from losing live index entries early.
    index_grace: int = 3600

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        namespace: str = "asgisession:",
        timeout: float | None = 2.0,
        slow_after: float | None = QUARTER_OF_TIMEOUT,
        wait_replicas: int = 0,
        wait_timeout: float | None = None,
    ) -> None:
        if client.get_connection_kwargs().get("decode_responses"):
            raise ConfigurationError(
                "RedisStore needs a client with decode_responses=False (the default): "
                "session data is raw bytes, which decoding would corrupt or fail on. "
                "Create a separate client for the store."
            )
        if not isinstance(namespace, str) or "{" in namespace or "}" in namespace:
            raise ConfigurationError(
                f"namespace={namespace!r}; give a str without '{{' or '}}'. Braces make a "
                "Redis Cluster hash tag, which would put every session in one slot."
            )
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise ConfigurationError(f"timeout={timeout!r}; give seconds > 0, or None.")
        if (
            isinstance(wait_replicas, bool)
            or not isinstance(wait_replicas, int)
            or wait_replicas < 0
        ):
            raise ConfigurationError(f"wait_replicas={wait_replicas!r}; give a whole number >= 0.")
        if wait_replicas and isinstance(client, RedisCluster):
            raise ConfigurationError(
                "wait_replicas is for one primary (a single server, or one found through "
                "Sentinel), not for a RedisCluster client."
            )
        if wait_timeout is None:
            wait_timeout = 1.0 if timeout is None else timeout / 2
        elif (
            isinstance(wait_timeout, bool)
            or not isinstance(wait_timeout, (int, float))
            or not (0 < wait_timeout < math.inf)
        ):
            raise ConfigurationError(f"wait_timeout={wait_timeout!r}; give seconds > 0.")
        #: Replicas that must acknowledge each write (Redis ``WAIT``) before it returns.
        self.wait_replicas = wait_replicas
        #: Seconds each write waits for them.
        self.wait_timeout: float = float(wait_timeout)
        # WAIT takes whole milliseconds, and 0 would mean "wait for ever".
        self._wait_ms = max(1, round(self.wait_timeout * 1000))
        self._client = client
        self._sentinel: Sentinel | None = None  # built by a redis+sentinel:// URL, closed here
        self._cluster = isinstance(client, RedisCluster)
        self.namespace = namespace
        self.timeout = timeout
        self._deadlines = None if timeout is None else Deadlines(timeout)
        self._slow = SlowCalls("Redis", threshold(slow_after, timeout))
        self._owns_client = False
        self._closed = False
        #: The SHA1s of the scripts a call has run here (sent by EVALSHA from then on).
        self._loaded_scripts: set[str] = set()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """A store with its own ``redis.asyncio.Redis`` client, which it closes in aclose().

        ``url`` is ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) or
        ``unix:///path/to/socket``, or
        ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]``
        to find the primary of ``service`` through Redis Sentinel (sentinel port 26379
        unless given; see ``asgisession.stores._redis_sentinel``, which takes the
        store's query options only). Its query may set the store's ``timeout`` and
        ``slow_after`` (seconds, or ``none``), ``namespace``, ``wait_replicas`` and
        ``wait_timeout``, and any connection option
        redis-py reads from a URL (``db``, ``socket_timeout``, ``max_connections``,
        ``protocol``, ...). ``options`` are the store's keywords (``namespace``,
        ``timeout``, ``slow_after``) and the client's (passed to
        ``redis.asyncio.BlockingConnectionPool.from_url``); one option may not come both
        ways. Unless given, ``socket_timeout`` and ``socket_connect_timeout`` default to
        ``timeout``, so the client also gives up on a silent socket by itself. Nothing
        connects until the first operation. For a Redis Cluster, create a
        ``redis.asyncio.RedisCluster`` and pass it to the constructor. It then stays yours
        to close.

        A new connection makes as few round trips as redis-py allows before its first
        command: ``protocol`` is 2 (RESP3 would add ``HELLO`` and a maintenance-notifications
        command) and ``driver_info`` is ``None`` (no ``CLIENT SETINFO``), unless given. Its
        setup (connect, TLS, ``AUTH``, ``SELECT``) runs in a task of its own: a call whose
        timeout passes during it still fails at the timeout, but the setup goes on and the
        connection joins the pool, so the pool can grow while Redis is slow.

        The pool holds at most ``max_connections`` connections (50 unless given). A
        command that finds them all busy waits for one, within ``timeout``: redis-py's
        default pool would instead fail it at once with ``MaxConnectionsError`` (past 100
        concurrent commands), turning a burst of requests into 503s. A client you build
        yourself should use a ``BlockingConnectionPool`` for the same reason.

        :raises ConfigurationError: for a URL redis-py cannot use, naming the wrong part
            (never its password), and as the constructor does (e.g. ``decode_responses=True``).
        """
        store_converters: dict[str, _urls.Converter] = {
            "timeout": _urls.as_seconds_or_none,
            "slow_after": _urls.as_seconds_or_none,
            "namespace": _urls.as_str,
            "wait_replicas": _urls.as_int(0),
            "wait_timeout": _urls.as_seconds,
        }
        if isinstance(url, str) and url.lower().startswith(SENTINEL_SCHEME + "://"):
            return from_sentinel_url(cls, url, store_converters, _STORE_DEFAULTS, options)
        parts = _urls.split(url, ("redis", "rediss", "unix"), "RedisStore")
        if parts.scheme != "unix" and parts.path not in ("", "/"):
            db = parts.path[1:]
            if not db.isdigit():
                raise ConfigurationError(
                    f"{_urls.redact(url)!r}: the path {parts.path!r} is not a database "
                    "number (as in redis://host:6379/0)."
                )
        converters: dict[str, _urls.Converter] = dict.fromkeys(_CLIENT_QUERY, _urls.as_str)
        converters.update(store_converters)
        # Read here, not by redis-py (which would pass on the string "false", a true value),
        # so that the constructor refuses a decoding client with its own message.
        converters["decode_responses"] = _urls.as_bool
        query = _urls.query_options(url, parts, converters)
        if "decode_responses" in query:
            decode = {"decode_responses": query.pop("decode_responses")}
            options = _urls.merge(url, decode, options)
        options = _urls.merge(
            url, {k: query.pop(k) for k in store_converters if k in query}, options
        )
        store_options = {k: options.pop(k, default) for k, default in _STORE_DEFAULTS.items()}
        timeout = store_options["timeout"]
        client_kwargs = options
        for name in query.keys() & client_kwargs.keys():
            raise ConfigurationError(
                f"{_urls.redact(url)!r}: {name} is given both in the URL's query and as a "
                "keyword; give it once."
            )
        client_url = urlunsplit(parts._replace(query=urlencode(list(query.items()))))
        if timeout is not None:
            client_kwargs.setdefault("socket_timeout", timeout)
            client_kwargs.setdefault("socket_connect_timeout", timeout)
        # The client holds no connection yet, so dropping it on a refusal leaks nothing.
        client_kwargs.setdefault("timeout", timeout)  # the pool's wait for a free connection
        # Nothing sent before the first command (see _redis_setup): RESP3 would add HELLO and
        # a maintenance-notifications command, driver info a CLIENT SETINFO.
        if "protocol" not in query:
            client_kwargs.setdefault("protocol", 2)
        client_kwargs.setdefault("driver_info", None)
        try:
            pool = BlockingConnectionPool.from_url(client_url, **client_kwargs)
        except ValueError as exc:  # redis-py's messages name the option, not the password
            raise ConfigurationError(f"{_urls.redact(url)!r}: {exc}") from None
        pool.connection_class = setup_off_the_clock(pool.connection_class)
        client = Redis(connection_pool=pool)
        client.auto_close_connection_pool = True  # as Redis.from_url does: aclose() closes it
        store = cls(client, **store_options)
        store._owns_client = True
        return store

    @property
    def slow_calls(self) -> Counter[str]:
        """Operations that completed in ``slow_after`` seconds or more, by name (``"GET"``)."""
        return self._slow.counts

    @property
    def client(self) -> Redis | RedisCluster:
        """The redis-py client this store sends its commands through."""
        return self._client

    def _index_key(self, index: str) -> str:
        return f"{self.namespace}idx:{{{index}}}"

    async def _call(self, what: str, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``operation`` under the timeout; redis-py errors become StoreUnavailable."""
        if self._closed:
            raise StoreUnavailable("this RedisStore is closed; create a new one")
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # under Trio, say so instead of failing somewhere in redis-py
            raise asyncio_only("RedisStore", "redis.asyncio is asyncio-only") from None
        deadlines = self._deadlines
        began = time.monotonic()
        try:
            if deadlines is None:
                result = await self._when_ready(operation)
            elif sys.version_info >= (3, 11):
                with deadlines.bound():
                    if self._cluster:
                        await self._cluster_ready()
                    result = await operation()
            else:
                result = await asyncio.wait_for(self._when_ready(operation), deadlines.timeout)
        except (TimeoutError, asyncio.TimeoutError):  # distinct classes on Python 3.10
            raise StoreUnavailable(
                f"the session store did not answer Redis {what} within {self.timeout} s"
            ) from None
        except RedisTimeoutError as exc:
            # redis-py's socket_timeout (by default the same bound) can fire first; the
            # operator should read the same "did not answer" either way.
            raise StoreUnavailable(
                f"the session store did not answer Redis {what} within {self.timeout} s"
            ) from exc
        except (RedisError, RedisClusterException) as exc:
            raise StoreUnavailable(f"Redis {what} failed: {type(exc).__name__}: {exc}") from exc
        took = time.monotonic() - began
        if took >= self._slow.threshold:
            self._slow.record(what, took)
        return result

    async def _write(self, what: str, command: Callable[[Any], Any]) -> Any:
        """Run the write ``command(client)``; with ``wait_replicas``, then ``WAIT`` for them.

        ``WAIT`` counts the replicas that have the writes sent *on its connection*, so the
        write and the ``WAIT`` go together in one pipeline (one connection, no MULTI).
        """
        if not self.wait_replicas:
            return await self._call(what, lambda: command(self._client))
        return await self._call(what + " + WAIT", lambda: self._write_and_wait(what, command))

    async def _write_and_wait(self, what: str, command: Callable[[Any], Any]) -> Any:
        async with self._client.pipeline(transaction=False) as pipe:
            command(pipe)
            pipe.wait(self.wait_replicas, self._wait_ms)
            result, acknowledged = await pipe.execute()
        if acknowledged < self.wait_replicas:
            raise StoreUnavailable(
                f"Redis {what} was written on the primary, but {acknowledged} of the "
                f"{self.wait_replicas} replicas wait_replicas asks for acknowledged it "
                f"within {self.wait_timeout} s: a failover now could lose it"
            )
        return result

    async def _run_script(self, what: str, script: _Script, key: str, *args: Any) -> Any:
        """Run ``script`` on ``key``: ``EVAL`` until the server has it, then ``EVALSHA``.

        A store sends a script's text until one call of it succeeds (a burst of first calls,
        on a cold pool or a cold server, costs no extra round trip), and its SHA1 after.
        When the server has lost it (restarted, ``SCRIPT FLUSH``, a failover, a cluster node
        not called before), the ``NOSCRIPT`` answer costs one more round trip, within the
        one call's timeout, and the store sends the text again until a call succeeds.
        """

        def evalsha(redis: Any) -> Any:
            return redis.evalsha(script.sha, 1, key, *args)

        def eval_(redis: Any) -> Any:
            return redis.eval(script.text, 1, key, *args)

        loaded = self._loaded_scripts
        if not self.wait_replicas:

            async def run() -> Any:
                if script.sha in loaded:
                    try:
                        return await evalsha(self._client)
                    except NoScriptError:
                        loaded.discard(script.sha)
                result = await eval_(self._client)
                loaded.add(script.sha)
                return result

            return await self._call(what, run)

        async def run_and_wait() -> Any:
            if script.sha in loaded:
                try:
                    return await self._write_and_wait(what, evalsha)
                except NoScriptError:  # the script did not run, so nothing was written
                    loaded.discard(script.sha)
            result = await self._write_and_wait(what, eval_)
            loaded.add(script.sha)
            return result

        return await self._call(what + " + WAIT", run_and_wait)

    async def _when_ready(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        if self._cluster:
            await self._cluster_ready()
        return await operation()

    async def _cluster_ready(self) -> None:
        # Commands sent to an async RedisCluster before initialize() has found the
        # slots go to random nodes (redis-py 8.1). Concurrent ones then draw MOVED
        # replies, and every fifth MOVED makes the client close all its connections,
        # in-flight ones included: other commands fail with AttributeError. So every
        # call first awaits initialize(), which returns at once once initialized.
        # A single-server client never awaits this (checked once, in __init__).
        await cast("RedisCluster", self._client).initialize()

    async def load(self, key: str) -> bytes | None:
        """Return the bytes under ``key`` (GET), or ``None`` when missing or expired."""
        value = await self._call("GET", lambda: self._client.get(self.namespace + key))
        # Always bytes or None: __init__ refuses clients that decode replies.
        return cast("bytes | None", value)

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        """Store ``data`` for ``ttl`` seconds (SET EX); with ``replace``, only over a live key (XX).

        :returns: whether it was written (``False`` only with ``replace`` and no live key).
        """
        check_ttl(ttl)
        result = await self._write(
            "SET", lambda redis: redis.set(self.namespace + key, data, ex=ttl, xx=replace)
        )
        return bool(result)

    async def load_versioned(self, key: str) -> tuple[bytes, bytes] | None:
        """The bytes under ``key`` (GET) and their version: the bytes themselves."""
        value = await self.load(key)
        return None if value is None else (value, value)

    async def save_if(self, key: str, data: bytes, *, ttl: int, version: bytes | int) -> bool:
        """Store ``data`` for ``ttl`` seconds only if the value is still ``version``.

        One Lua script (GET, compare, SET EX): atomic, one round trip, one key.
        """
        check_ttl(ttl)
        if not isinstance(version, bytes):
            return False  # not a version this store handed out
        result = await self._run_script(
            "save_if", _SAVE_IF, self.namespace + key, version, data, ttl
        )
        return bool(result)

    async def add(self, key: str, data: bytes, *, ttl: int) -> bool:
        """Store ``data`` for ``ttl`` seconds only if no live key is there (SET NX EX)."""
        check_ttl(ttl)
        result = await self._write(
            "SET NX", lambda redis: redis.set(self.namespace + key, data, ex=ttl, nx=True)
        )
        return bool(result)

    async def touch(self, key: str, *, ttl: int) -> bool:
        """Reset ``key``'s time to live to ``ttl`` (EXPIRE); return whether it existed."""
        check_ttl(ttl)
        result = await self._write("EXPIRE", lambda redis: redis.expire(self.namespace + key, ttl))
        return bool(result)

    async def delete(self, key: str) -> bool:
        """Remove ``key`` (DEL); return whether it was there (a missing key is no error)."""
        removed = await self._write("DEL", lambda redis: redis.delete(self.namespace + key))
        return bool(removed)

    async def index_add(self, index: str, member: str, *, expires_at: int) -> None:
        """Add ``member`` to ``index`` until ``expires_at`` (ZADD), or move its expiry.

        The same atomic script moves the index key's own expiry to its latest member
        plus :attr:`index_grace` seconds.
        """
        key = self._index_key(index)
        await self._run_script(
            "index ZADD", _INDEX_ADD, key, expires_at, member.encode(), self.index_grace
        )

    async def index_remove(self, index: str, member: str) -> None:
        """Remove ``member`` from ``index`` (ZREM); missing members are not an error."""
        key = self._index_key(index)
        await self._write("index ZREM", lambda redis: redis.zrem(key, member.encode()))

    async def index_members(self, index: str, *, now: int) -> dict[str, int]:
        """The live members of ``index`` with their expiry; prunes those expired at ``now``.

        One MULTI on the single index key: ZREMRANGEBYSCORE -inf now, then ZRANGE
        WITHSCORES. A member whose expiry equals ``now`` counts as expired.
        """
        key = self._index_key(index)

        async def prune_and_read() -> list[Any]:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zrange(key, 0, -1, withscores=True)
                return await pipe.execute()

        _, rows = await self._call("index MULTI", prune_and_read)
        # RESP2 gives (member, score) tuples and RESP3 gives [member, score] lists.
        return {member.decode(): int(score) for member, score in rows}

    async def ping(self) -> None:
        """PING the server (on a cluster, every primary), within ``timeout``.

        :raises StoreUnavailable: when Redis does not answer, refuses, or needs a password.
        """
        if self._cluster:
            cluster = cast("RedisCluster", self._client)
            await self._call("PING", lambda: cluster.ping(target_nodes=RedisCluster.PRIMARIES))
        else:
            await self._call("PING", lambda: self._client.ping())

    async def aclose(self) -> None:
        """Close the client if this store built it (from_url); idempotent.

        A client passed to the constructor is left open (see "Ownership" above). After
        aclose(), every operation raises StoreUnavailable.
        """
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()
