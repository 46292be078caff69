"""PostgresStore: sessions in a PostgreSQL table, through an asyncpg connection pool.

For sites that run PostgreSQL already and want sessions shared by every app machine,
durable across restarts, without another service. Each operation is one statement on a
pooled connection, in its own implicit transaction (:mod:`._postgres_statements` has the
SQL); expiry follows the database server's clock, so the app machines agree on it.

Invariants:

1. Expired rows are never served: every read, ``replace`` and ``touch`` says
   ``expires_at > now()``; the sweep deletes the rows later.
2. Nothing happens at import or construction. The first call creates the pool and the
   versioned schema (its table, the user index table and their expiry indexes), once per
   pool; a table of a newer schema version, or one asgisession did not create, is refused
   with :class:`~asgisession.errors.ConfigurationError`.
3. Every call is bounded by ``timeout``: the wait for a pooled connection, connecting, and
   the statement. A call cut off mid-statement terminates its connection instead of
   handing it back (asyncpg would otherwise send a cancel request over a new connection,
   to a server that may not answer); the pool opens another when one is needed. The
   connections' ``statement_timeout`` is ``timeout`` too, so a statement whose caller gave
   up ends on the server as well: a write cut off by the timeout may still have landed
   (as with any network store), but never later than that.
4. A server that stops or resets its connections closes them in the pool at once, and the
   pool opens new ones when the server is back. A connection found dead only when used (a
   host that went away without a word) makes the pool replace every other idle one too, so
   one request, not one per pooled connection, hears of it. asyncpg and socket errors
   become :class:`~asgisession.errors.StoreUnavailable`.
5. The sweep deletes expired rows ``sweep_batch`` at a time (``SKIP LOCKED``, so stores
   in several processes never wait for each other), in a task of its own started after a
   call at most once per ``sweep_interval``; :meth:`aclose` stops it.

The store runs on asyncio only (asyncpg is asyncio-only); called under Trio, it raises
ConfigurationError saying so. It serves one event loop at a time: a call from a new loop
lets the old loop's pool go and opens another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlencode, urlunsplit

import asyncpg

from ..errors import ConfigurationError, StoreUnavailable
from . import _urls
from ._postgres_statements import META_TABLE, SCHEMA_VERSION, Statements, rows_changed
from .base import ClosingStore, asyncio_only, check_ttl
from .deadlines import Deadlines

__all__ = ["META_TABLE", "SCHEMA_VERSION", "PostgresStore"]

logger: logging.Logger = logging.getLogger("asgisession")

_T = TypeVar("_T")
# Lower case: PostgreSQL folds unquoted names to it. At most 44 characters, so the derived
# names (<table>_index_expires_at) stay within PostgreSQL's 63.
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,43}")
#: Connection parameters asyncpg reads from a URL's query, passed on to it as they are.
_CLIENT_QUERY = frozenset(
    {
        "sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslcrl", "sslnegotiation",
        "ssl_min_protocol_version", "ssl_max_protocol_version", "target_session_attrs",
        "passfile", "service", "servicefile", "host", "port", "user", "password", "dbname",
        "database", "krbsrvname", "gsslib", "application_name",
    }
)  # fmt: skip
#: Errors that mean the database cannot serve now (asyncpg's and the socket's).
_UNAVAILABLE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
#: Errors after which the connection it happened on is gone.
_CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)


class PostgresStore(ClosingStore):
    """Keeps sessions in a PostgreSQL table: durable, shared by every app machine.

    :param dsn: a ``postgresql://`` connection URL as asyncpg reads it; :meth:`from_url`
        also takes the store's options from its query.
    :param table: the sessions table; the user index lives in ``<table>_index``. Both are
        created on first use, in the connection's default schema (its ``search_path``).
    :param timeout: seconds each call may take, waiting for a pooled connection and
        connecting included, before it raises
        :class:`~asgisession.errors.StoreUnavailable`, or ``None`` for no bound.
    :param min_size: connections the pool keeps open (asyncpg's ``min_size``).
    :param max_size: the most connections the pool opens; more concurrent calls wait for
        one, within ``timeout``.
    :param max_inactive_connection_lifetime: seconds an idle connection above ``min_size``
        stays open.
    :param sweep_interval: the fewest seconds between two sweeps of expired rows.
    :param sweep_batch: the most rows one sweep statement deletes.
    :param connect_options: more keywords for ``asyncpg.create_pool`` (``ssl``,
        ``server_settings``, ``statement_cache_size=0`` behind PgBouncer's transaction
        pooling, ...).
    :raises ConfigurationError: for a bad setting; also on first use, for a table of a
        newer schema or one asgisession did not create, or under Trio.

    The store owns its pool: :meth:`aclose` closes it, and the next call opens a new one.

    .. versionadded:: 0.3
    """

    def __init__(
        self,
        dsn: str,
        *,
        table: str = "asgisession_sessions",
        timeout: float | None = 2.0,
        min_size: int = 1,
        max_size: int = 10,
        max_inactive_connection_lifetime: float = 300.0,
        sweep_interval: float = 60,
        sweep_batch: int = 500,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(dsn, str):
            raise ConfigurationError(f"dsn={type(dsn).__name__}; give a postgresql:// URL.")
        if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table) or table == META_TABLE:
            raise ConfigurationError(
                f"table={table!r}; it is written into SQL, so use up to 44 lower-case letters, "
                f"digits and underscores, not starting with a digit (nor {META_TABLE!r})."
            )
        if timeout is not None:
            _check_number("timeout", timeout, exclusive=True)
        _check_number("sweep_interval", sweep_interval, exclusive=True)
        _check_number("max_inactive_connection_lifetime", max_inactive_connection_lifetime)
        _check_count("min_size", min_size, 0)
        _check_count("max_size", max_size, max(1, min_size))
        _check_count("sweep_batch", sweep_batch, 1)
        self.dsn = dsn
        self.table = table
        self.timeout = timeout
        self.min_size = min_size
        self.max_size = max_size
        self.max_inactive_connection_lifetime = max_inactive_connection_lifetime
        self.sweep_interval = sweep_interval
        self.sweep_batch = sweep_batch
        self.connect_options: dict[str, Any] = dict(connect_options or {})
        self._sql = Statements(table)
        self._deadlines = None if timeout is None else Deadlines(timeout)
        self._pool: Any = None  # an asyncpg.Pool with its schema checked, once opened
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Lock | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._last_sweep = -math.inf
        self._in_flight = 0  # calls between their start and their connection's release
        self._idle: asyncio.Event | None = None  # set when _in_flight drops to 0

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresStore:
        """A store from ``postgresql://[user[:password]@]host[:port]/database``.

        ``postgres://`` works too. The query may set the store's ``timeout`` (seconds, or
        ``none``), ``table``, ``min_size``, ``max_size``, ``sweep_interval`` and
        ``sweep_batch``, and the connection parameters asyncpg reads from a URL
        (``sslmode``, ``sslrootcert``, ``target_session_attrs``, ``application_name``,
        ...), which stay in the URL handed to asyncpg. ``options`` are the constructor's
        keywords; one option may not come both ways. Nothing connects until the first call.

        :raises ConfigurationError: for another scheme, an unknown query parameter or a
            bad value, naming it (never the URL's password).
        """
        parts = _urls.split(url, ("postgresql", "postgres"), "PostgresStore")
        converters: dict[str, _urls.Converter] = dict.fromkeys(_CLIENT_QUERY, _urls.as_str)
        ours: dict[str, _urls.Converter] = {
            "timeout": _urls.as_seconds_or_none,
            "table": _urls.as_str,
            "min_size": _urls.as_int(0),
            "max_size": _urls.as_int(1),
            "sweep_interval": _urls.as_seconds,
            "sweep_batch": _urls.as_int(1),
        }
        query = _urls.query_options(url, parts, {**converters, **ours})
        store_options = {name: query.pop(name) for name in ours if name in query}
        dsn = urlunsplit(parts._replace(query=urlencode(list(query.items()))))
        return cls(dsn, **_urls.merge(url, store_options, options))

    def __repr__(self) -> str:
        return f"PostgresStore({_urls.redact(self.dsn)!r}, table={self.table!r})"

    # -- the operations --------------------------------------------------------------------

    async def load(self, key: str) -> bytes | None:
        """Return the bytes under ``key``, or ``None`` when missing or expired."""
        data = await self._call("a load", lambda c: c.fetchval(self._sql.load, key))
        return None if data is None else bytes(data)

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        """Store ``data`` for ``ttl`` seconds; with ``replace``, only over a live key."""
        check_ttl(ttl)
        sql = self._sql.replace if replace else self._sql.upsert
        status = await self._call("a save", lambda c: c.execute(sql, key, bytes(data), ttl))
        return rows_changed(status) == 1

    async def load_versioned(self, key: str) -> tuple[bytes, bytes] | None:
        """The bytes under ``key`` and their version (the bytes themselves), or ``None``."""
        value = await self.load(key)
        return None if value is None else (value, value)

    async def save_if(self, key: str, data: bytes, *, ttl: int, version: bytes | int) -> bool:
        """Store ``data`` for ``ttl`` seconds only if the live row still holds ``version``.

        One ``UPDATE ... WHERE key = $1 AND data = $4``: a row another transaction updates
        meanwhile is checked again once that one commits, so of two, one writes.
        """
        check_ttl(ttl)
        if not isinstance(version, bytes):
            return False  # not a version this store handed out
        sql = self._sql.replace_if
        status = await self._call(
            "a save_if", lambda c: c.execute(sql, key, bytes(data), ttl, version)
        )
        return rows_changed(status) == 1

    async def add(self, key: str, data: bytes, *, ttl: int) -> bool:
        """Store ``data`` for ``ttl`` seconds only if no live key is there.

        One ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` the row there has expired.
        """
        check_ttl(ttl)
        sql = self._sql.add
        status = await self._call("an add", lambda c: c.execute(sql, key, bytes(data), ttl))
        return rows_changed(status) == 1

    async def touch(self, key: str, *, ttl: int) -> bool:
        """Reset a live ``key``'s time to live; return whether it existed."""
        check_ttl(ttl)
        status = await self._call("a touch", lambda c: c.execute(self._sql.touch, key, ttl))
        return rows_changed(status) == 1

    async def delete(self, key: str) -> bool:
        """Remove ``key`` if present; return whether it was there and live."""
        live = await self._call("a delete", lambda c: c.fetchval(self._sql.delete, key))
        return bool(live)

    async def index_add(self, index: str, member: str, *, expires_at: int) -> None:
        """Add ``member`` to ``index`` until ``expires_at``, or move its expiry."""
        sql = self._sql.index_add
        await self._call("an index_add", lambda c: c.execute(sql, index, member, expires_at))

    async def index_remove(self, index: str, member: str) -> None:
        """Remove ``member`` from ``index`` if present."""
        sql = self._sql.index_remove
        await self._call("an index_remove", lambda c: c.execute(sql, index, member))

    async def index_members(self, index: str, *, now: int) -> dict[str, int]:
        """The live members of ``index``; expired ones are deleted in the same statement."""
        sql = self._sql.index_members
        rows = await self._call("an index_members", lambda c: c.fetch(sql, index, now))
        return {str(member): int(expires_at) for member, expires_at in rows}

    async def ping(self) -> None:
        """``SELECT 1`` on a pooled connection, within ``timeout``.

        The first ping opens the pool and creates or checks the schema, so a readiness
        probe also catches a refused table.

        :raises StoreUnavailable: when the database does not answer, or refuses the login.
        """
        await self._call("a ping", lambda c: c.fetchval("SELECT 1"))

    async def sweep(self) -> int:
        """Delete every expired row now, ``sweep_batch`` per statement; return the count.

        The store already sweeps by itself as it is used; this is for a shutdown hook, a
        cron job, or a test. Each statement is one call, bounded by ``timeout``.
        """
        self._last_sweep = time.monotonic()
        total = 0
        for sql in (self._sql.sweep, self._sql.index_sweep):
            while True:
                status = await self._call("a sweep", partial(_execute, sql, self.sweep_batch))
                total += (deleted := rows_changed(status))
                if deleted < self.sweep_batch:
                    break
        return total

    async def aclose(self) -> None:
        """Stop the sweep and close the pool, letting calls in flight finish; idempotent.

        Within ``timeout`` (when set): past it, the pool's connections are terminated.
        The next call opens a new pool.
        """
        if self._pool is None and self._sweeper is None:
            return  # nothing open (and no asyncio call, so this works anywhere)
        if asyncio.get_running_loop() is not self._loop:
            self._move_to(asyncio.get_running_loop())  # its sockets belong to the old loop
            return
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None and not sweeper.done():
            sweeper.cancel()
            await asyncio.wait([sweeper])  # unlike awaiting it, lets our own cancel through
        pool, self._pool = self._pool, None  # a call from now on opens a new pool
        if pool is None:
            return
        try:
            await asyncio.wait_for(self._drain_and_close(pool), self.timeout)
        except (asyncio.TimeoutError, *_UNAVAILABLE):
            pool.terminate()

    async def _drain_and_close(self, pool: Any) -> None:
        # Pool.close() would refuse the calls that have not yet acquired a connection.
        while self._in_flight and self._idle is not None:
            await self._idle.wait()
        await pool.close()

    # -- the machinery ---------------------------------------------------------------------

    async def _call(self, what: str, operation: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run ``operation`` on a pooled connection, within the timeout."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # under Trio, say so instead of failing somewhere in asyncpg
            raise asyncio_only("PostgresStore", "asyncpg is asyncio-only") from None
        if loop is not self._loop:
            self._move_to(loop)
        deadlines = self._deadlines
        try:
            if deadlines is None:
                result = await self._run(operation)
            elif sys.version_info >= (3, 11):
                with deadlines.bound():
                    result = await self._run(operation)
            else:
                result = await asyncio.wait_for(self._run(operation), deadlines.timeout)
        except (TimeoutError, asyncio.TimeoutError):  # distinct classes on Python 3.10
            raise StoreUnavailable(
                f"the session store did not answer PostgreSQL {what} within {self.timeout} s"
            ) from None
        except _UNAVAILABLE as exc:
            if isinstance(exc, _CONNECTION_LOST) and self._pool is not None:
                await self._pool.expire_connections()  # the others likely died too
            raise StoreUnavailable(
                f"PostgreSQL {what} failed: {type(exc).__name__}: {exc}. Check that the "
                f"server at {self._where()} is up and accepts this login."
            ) from exc
        if time.monotonic() - self._last_sweep >= self.sweep_interval:
            self._start_sweep(loop)
        return result

    async def _run(self, operation: Callable[[Any], Awaitable[_T]]) -> _T:
        if self._idle is None:
            self._idle = asyncio.Event()
        self._in_flight += 1
        self._idle.clear()
        try:
            pool = self._pool if self._pool is not None else await self._open()
            connection = await pool.acquire()
            try:
                return await operation(connection)
            except BaseException as exc:
                # A server's error leaves its connection usable; anything else (a cancelled
                # or timed-out statement, a lost socket) may leave a reply on the way.
                if not isinstance(exc, asyncpg.PostgresError) or isinstance(exc, _CONNECTION_LOST):
                    connection.terminate()
                raise
            finally:
                await pool.release(connection)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _open(self) -> Any:
        """Create the pool and the schema, once however many calls wait for it."""
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is not None:
                return self._pool
            pool = asyncpg.create_pool(
                self.dsn,
                min_size=self.min_size,
                max_size=self.max_size,
                max_inactive_connection_lifetime=self.max_inactive_connection_lifetime,
                **self._pool_options(),
            )
            try:
                await pool
                async with pool.acquire() as connection:
                    await self._sql.setup(connection, self._where())
            except BaseException:
                with contextlib.suppress(Exception):  # a pool that never opened refuses
                    pool.terminate()
                raise
            self._pool = pool
            return pool

    def _pool_options(self) -> dict[str, Any]:
        """The keywords for asyncpg: connect within ``timeout``, and end a statement past it."""
        options: dict[str, Any] = {"timeout": self.timeout or 60.0, **self.connect_options}
        if self.timeout is not None:
            # A statement cut off by the store's timeout may still be waiting for a lock on
            # the server, which learns that its client left only when it next writes to
            # it: the server's own bound ends it there, so it cannot commit much later.
            settings = dict(options.get("server_settings") or {})
            settings.setdefault("statement_timeout", str(math.ceil(self.timeout * 1000)))
            options["server_settings"] = settings
        return options

    def _move_to(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let the old loop's pool and sweep go: their sockets belong to that loop."""
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.terminate()
        self._sweeper = None
        self._opening = None
        self._idle = None
        self._in_flight = 0
        self._loop = loop

    def _start_sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._sweeper is not None and not self._sweeper.done():
            return
        self._last_sweep = time.monotonic()
        self._sweeper = loop.create_task(self._sweep_quietly())

    async def _sweep_quietly(self) -> None:
        try:
            deleted = await self.sweep()
        except (StoreUnavailable, ConfigurationError) as exc:  # a sweep never fails a call
            logger.warning("PostgresStore sweep of %s failed, retrying later: %s", self.table, exc)
        else:
            logger.debug("PostgresStore swept %d expired rows from %s", deleted, self.table)

    def _where(self) -> str:
        return f"{_urls.redact(self.dsn)!r}"


async def _execute(sql: str, limit: int, connection: Any) -> str:
    status: str = await connection.execute(sql, limit)
    return status


def _check_number(name: str, value: float, *, exclusive: bool = False) -> None:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (value > 0 if exclusive else value >= 0)
    )
    if not ok:
        raise ConfigurationError(
            f"{name}={value!r}; give a finite number of seconds {'>' if exclusive else '>='} 0."
        )


def _check_count(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name}={value!r}; give a whole number >= {minimum}.")
