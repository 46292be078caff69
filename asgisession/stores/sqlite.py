"""SQLiteStore: sessions in one SQLite file, the embedded default for server-side sessions.

sqlite3 blocks, so the store runs it on a thread of its own (:mod:`._sqlite_worker`), and
every call is a *hop* to that thread and back, which costs several times the point read it
carries (``benchmarks/sqlite_hops.py`` measures both). So the store coalesces. A call made
while nothing is in flight runs at once, in its caller's task, in one hop. Calls made while
a hop is in flight queue up; when it lands, one flusher task runs all of them in ONE hop and
ONE transaction, resolves each caller's future with its own result, and repeats until the
queue is empty. Under load, many calls share each hop.

Invariants:

1. At most one batch is in flight per store, and operations run in the order they were
   called (a caller that gave up before its turn is skipped).
2. Expired rows are never served. Every read, ``replace`` and ``touch`` says
   ``expires_at > now``; the sweep deletes the rows later.
3. One transaction per hop: ``BEGIN IMMEDIATE`` when it writes (the write lock is taken
   up front, so a transaction never has to upgrade and fail with "database is locked"; the
   busy timeout does the waiting), a plain ``BEGIN`` when it only reads. An error in one
   operation fails only its caller; an error that ends the transaction, or a failed
   commit, fails the whole batch, so no caller hears of a write that was rolled back.
4. Every call is bounded by ``timeout``; a caller that gives up (late, or cancelled) is
   never written for: its batch rolls back and runs again without it, unless its commit
   had begun (:mod:`._sqlite_statements`). A batch waits for another connection's write
   lock no longer than its callers wait.
5. WAL journal with ``synchronous=NORMAL``: readers never wait for the writer, and a commit
   costs no fsync (a power cut may lose the last commits, never the file).
6. The sweep deletes expired rows ``sweep_batch`` at a time, each chunk its own short
   transaction and hop. It piggybacks on normal calls, at most once per ``sweep_interval``,
   and only when the queue is empty, so a queued operation never waits behind more than
   one chunk.
7. Nothing happens at import or construction: the thread, the connection and the schema
   are made on first use. sqlite3 errors become
   :class:`~asgisession.errors.StoreUnavailable` and drop the connection, so a later call
   reopens it once the cause is gone.

The store runs on asyncio only: its thread answers through the asyncio event loop.

It runs past 300 lines because batching many callers' operations into one transaction, with
timeouts that never leave half a batch committed, is one job; the SQL and the thread are in
``_sqlite_statements.py`` and ``_sqlite_worker.py``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import unquote

from ..errors import ConfigurationError, StoreUnavailable
from . import _urls
from ._slow import QUARTER_OF_TIMEOUT, SlowCalls, threshold
from ._sqlite_statements import (
    META_TABLE,
    SCHEMA_VERSION,
    Outcome,
    Pending,
    Statements,
    abandon,
    transaction,
)
from ._sqlite_worker import Worker
from .base import ClosingStore, asyncio_only, check_ttl
from .deadlines import Deadlines

__all__ = ["META_TABLE", "SCHEMA_VERSION", "SQLiteStore"]

logger: logging.Logger = logging.getLogger("asgisession")

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,57}")
#: The most operations in one batch; bounds how long a transaction holds the write lock.
_MAX_BATCH = 256

_T = TypeVar("_T")


class SQLiteStore(ClosingStore):
    """Keeps sessions in a SQLite file: durable, shared by the workers of one machine.

    :param path: the database file; created, with its tables, on first use.
    :param table: the sessions table; the user index lives in ``<table>_index``.
    :param timeout: seconds each call may take, its wait in the queue included, before it
        raises :class:`~asgisession.errors.StoreUnavailable` (nothing of it written), or
        ``None`` for no bound.
    :param busy_timeout: seconds a write waits for another connection's lock (no longer
        than ``timeout`` allows).
    :param sweep_interval: the fewest seconds between two sweeps of expired rows.
    :param sweep_batch: the most rows one sweep transaction deletes.
    :param clock: returns unix time; for tests.
    :param slow_after: a call that completes in this many seconds or more is logged at
        WARNING (store, operation, duration) and counted in :attr:`slow_calls`; a quarter
        of ``timeout`` by default, ``None`` for never.
    :raises ConfigurationError: for a bad setting; also on first use, for a table written
        by a newer asgisession or by something else, or under an event loop other than
        asyncio's.

    The store owns its thread and connection: :meth:`aclose` closes them, and the next call
    opens new ones. Close the store when the app stops (``async with``, or the lifespan),
    so the file is closed cleanly; the thread is a daemon, so a store left open does not
    keep the interpreter from exiting. A store serves one event loop at a time; a call from
    a new loop lets the old loop's connection go and opens another.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       ``timeout``; the store runs sqlite3 on a thread of its own instead of aiosqlite's.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = "asgisession_sessions",
        timeout: float | None = 2.0,
        busy_timeout: float = 5.0,
        sweep_interval: float = 60,
        sweep_batch: int = 500,
        clock: Callable[[], float] = time.time,
        slow_after: float | None = QUARTER_OF_TIMEOUT,
    ) -> None:
        if (
            not isinstance(table, str)
            or not _TABLE_NAME.fullmatch(table)
            or table.lower().startswith("sqlite_")
            or table.lower() == META_TABLE
        ):
            raise ConfigurationError(
                f"table={table!r}; it is written into SQL, so use up to 58 letters, digits "
                "and underscores, not starting with a digit or 'sqlite_'."
            )
        if timeout is not None:
            _check_number("timeout", timeout, minimum=0.0, exclusive=True)
        _check_number("busy_timeout", busy_timeout, minimum=0.0)
        _check_number("sweep_interval", sweep_interval, minimum=0.0, exclusive=True)
        if isinstance(sweep_batch, bool) or not isinstance(sweep_batch, int) or sweep_batch < 1:
            raise ConfigurationError(f"sweep_batch={sweep_batch!r}; give a whole number > 0.")
        self.path: str = os.fspath(path)
        self.table = table
        self.timeout = timeout
        self.busy_timeout = busy_timeout
        self.sweep_interval = sweep_interval
        self.sweep_batch = sweep_batch
        self._clock = clock
        self._sql = Statements(table)
        # A write waits for another connection's lock no longer than its caller waits, plus a
        # quarter, so that the caller's own timeout is what it hears.
        self._grace = 1.25
        waits = busy_timeout if timeout is None else min(busy_timeout, timeout * self._grace)
        self._busy_ms = int(waits * 1000)
        self._deadlines = None if timeout is None else Deadlines(timeout)
        self._slow = SlowCalls("SQLite", threshold(slow_after, timeout))
        self._worker: Worker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._leading = False  # a lone call is in flight in its caller's task
        self._closing = False
        self._idle: asyncio.Future[None] | None = None  # aclose() waits on it for a lone call
        self._sweeping = False
        self._last_sweep = -math.inf
        self._hops = 0  # thread hops taken; tests and benchmarks read it

    @property
    def slow_calls(self) -> Counter[str]:
        """Calls that completed in ``slow_after`` seconds or more, by operation."""
        return self._slow.counts

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteStore:
        """A store from ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``.

        As in SQLAlchemy, the path is what follows the third slash: a fourth makes it
        absolute. The query may set ``timeout`` and ``slow_after`` (seconds, or ``none``),
        ``busy_timeout``, ``sweep_interval``, ``sweep_batch`` and ``table``; ``options`` are
        the constructor's keywords, and one option may not come both ways.

        :raises ConfigurationError: for another scheme, a host, no path, or a bad parameter.
        """
        parts = _urls.split(url, ("sqlite",), "SQLiteStore")
        if parts.netloc:
            raise ConfigurationError(
                f"{_urls.redact(url)!r}: a SQLite URL has no host ({parts.netloc!r}); use "
                "sqlite:///relative/path.db or sqlite:////absolute/path.db."
            )
        path = unquote(parts.path[1:])  # the third slash ends the empty host
        if not path or path.endswith("/"):
            raise ConfigurationError(
                f"{_urls.redact(url)!r}: name the database file, as in sqlite:///sessions.db."
            )
        converters: dict[str, _urls.Converter] = {
            "timeout": _urls.as_seconds_or_none,
            "busy_timeout": _urls.as_seconds,
            "slow_after": _urls.as_seconds_or_none,
            "sweep_interval": _urls.as_seconds,
            "sweep_batch": _urls.as_int(1),
            "table": _urls.as_str,
        }
        query = _urls.query_options(url, parts, converters)
        return cls(path, **_urls.merge(url, query, options))

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, table={self.table!r})"

    async def load(self, key: str) -> bytes | None:
        """Return the bytes under ``key``, or ``None`` when missing or expired."""
        run = partial(self._sql.load_row, key, self._clock())
        return await self._call("a load", run, writes=False)

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        """Store ``data`` for ``ttl`` seconds; with ``replace``, only over a live key."""
        now = self._clock()
        run = partial(self._sql.save_row, key, bytes(data), now + check_ttl(ttl), replace, now)
        return await self._call("a save", run, writes=True)

    async def load_versioned(self, key: str) -> tuple[bytes, bytes] | None:
        """The bytes under ``key`` and their version (the bytes themselves), or ``None``."""
        value = await self.load(key)
        return None if value is None else (value, value)

    async def save_if(self, key: str, data: bytes, *, ttl: int, version: bytes | int) -> bool:
        """Store ``data`` for ``ttl`` seconds only if the live row still holds ``version``.

        One ``UPDATE ... WHERE key = ? AND data = ?``, atomic in its transaction.
        """
        if not isinstance(version, bytes):
            return False  # not a version this store handed out
        now = self._clock()
        params = (bytes(data), now + check_ttl(ttl), key, now, version)
        run = partial(self._sql.rowcount, self._sql.replace_if, params)
        return await self._call("a save_if", run, writes=True) == 1

    async def add(self, key: str, data: bytes, *, ttl: int) -> bool:
        """Store ``data`` for ``ttl`` seconds only if no live key is there.

        One ``INSERT``; a conflicting row is overwritten only when it has expired.
        """
        now = self._clock()
        run = partial(
            self._sql.rowcount, self._sql.add, (key, bytes(data), now + check_ttl(ttl), now)
        )
        return await self._call("an add", run, writes=True) == 1

    async def touch(self, key: str, *, ttl: int) -> bool:
        """Reset a live ``key``'s time to live; return whether it existed."""
        now = self._clock()
        run = partial(self._sql.rowcount, self._sql.touch, (now + check_ttl(ttl), key, now))
        return await self._call("a touch", run, writes=True) == 1

    async def delete(self, key: str) -> bool:
        """Remove ``key`` if present; return whether it was there and live."""
        run = partial(self._sql.delete_row, key, self._clock())
        return await self._call("a delete", run, writes=True)

    async def index_add(self, index: str, member: str, *, expires_at: int) -> None:
        """Add ``member`` to ``index`` until ``expires_at``, or move its expiry."""
        run = partial(self._sql.rowcount, self._sql.index_add, (index, member, expires_at))
        await self._call("an index_add", run, writes=True)

    async def index_remove(self, index: str, member: str) -> None:
        """Remove ``member`` from ``index`` if present."""
        run = partial(self._sql.rowcount, self._sql.index_remove, (index, member))
        await self._call("an index_remove", run, writes=True)

    async def index_members(self, index: str, *, now: int) -> dict[str, int]:
        """The live members of ``index``; expired ones are deleted on the way."""
        run = partial(self._sql.members, index, now)
        return await self._call("an index_members", run, writes=True)

    async def ping(self) -> None:
        """Take the write lock and let it go (``BEGIN IMMEDIATE``; ``COMMIT``), within ``timeout``.

        A write transaction that writes nothing: it opens the file (creating it and its
        tables) if need be, and fails when the file cannot be written or another connection
        holds the write lock for longer than the store waits.

        :raises StoreUnavailable: saying which, and what to check.
        """
        await self._call("a ping", _nothing, writes=True)

    async def sweep(self) -> int:
        """Delete every expired row now, ``sweep_batch`` per transaction; return the count.

        The store already sweeps by itself as it is used; this is for a shutdown hook, a
        cron job, or a test. Each chunk is one call, bounded by ``timeout``.
        """
        self._last_sweep = self._clock()
        total = 0
        while True:
            chunk = partial(self._sql.sweep_chunk, self._clock(), self.sweep_batch)
            deleted = await self._call("a sweep", chunk, writes=True)
            total += deleted
            if deleted < self.sweep_batch:
                return total

    async def aclose(self) -> None:
        """Finish the operations in flight and queued, then close the connection.

        Safe to call again; a call after it opens a new connection.
        """
        if self._loop is None:  # never used: nothing to wait for or close
            return
        loop = self._bind()
        self._closing = True  # no new sweep chunks; queued operations still run
        try:
            while self._leading or self._flushing():
                if self._flusher is not None and self._flushing():
                    await asyncio.wait({self._flusher})
                else:  # a lone call in flight; it may leave queued calls to a flusher
                    if self._idle is None or self._idle.done():
                        self._idle = loop.create_future()
                    await asyncio.wait({self._idle})
        finally:
            self._closing, self._idle = False, None
        worker, self._worker = self._worker, None
        if worker is not None:
            await worker.close(loop)

    # -- a call: its bound, then the queue (event loop side) ------------------------------

    async def _call(
        self, what: str, run: Callable[[sqlite3.Connection], _T], *, writes: bool
    ) -> _T:
        """Run one operation within ``timeout``: at once when idle, else in the next batch."""
        self._bind()  # first: under Trio, the error that says why
        deadlines = self._deadlines
        began = time.monotonic()
        if deadlines is None:
            result = await self._submit(Pending(run, writes, None))
            self._check_slow(what, began)
            return cast("_T", result)
        pending = Pending(run, writes, began + deadlines.timeout * self._grace)
        try:
            if sys.version_info >= (3, 11):
                with deadlines.bound():
                    result = await self._submit(pending)
            else:
                result = await asyncio.wait_for(self._submit(pending), deadlines.timeout)
        except (TimeoutError, asyncio.TimeoutError):  # distinct classes on Python 3.10
            outcome = "nothing was written" if abandon(pending) else "it may have been written"
            raise StoreUnavailable(
                f"SQLite database {self.path!r} did not answer {what} within {self.timeout} s "
                f"({outcome}). Another connection may hold its write lock, or the disk is slow."
            ) from None
        self._check_slow(what, began)
        return cast("_T", result)

    def _check_slow(self, what: str, began: float) -> None:
        took = time.monotonic() - began
        if took >= self._slow.threshold:
            self._slow.record(what, took)

    async def _submit(self, pending: Pending) -> Any:
        loop = cast("asyncio.AbstractEventLoop", self._loop)
        try:
            if self._leading or self._pending or self._flushing():
                # Whoever is in flight (a lone call, or the flusher) runs the next batch.
                pending.future = loop.create_future()
                self._pending.append(pending)
                return await pending.future
            # Idle: this call runs in its own task, in one hop, with no flusher task to start
            # and wake; calls that arrive meanwhile queue, and it hands them to a flusher after.
            self._leading = True
            try:
                [(_, outcome)] = await self._execute([pending], pending.writes)
            finally:
                self._leading = False
                self._kick()
                if self._idle is not None and not self._idle.done():
                    self._idle.set_result(None)  # aclose() is waiting for this call
            return self._result(outcome)
        except asyncio.CancelledError:
            abandon(pending)  # late or cancelled: its batch must not commit it
            raise

    def _flushing(self) -> bool:
        return self._flusher is not None and not self._flusher.done()

    def _kick(self) -> None:
        """Start a flusher if there is queued work or a sweep is due and none is running."""
        if self._flushing() or self._loop is None:
            return
        if self._pending or (not self._closing and self._sweep_due()):
            self._flusher = self._loop.create_task(self._drain(self._pending))

    def _result(self, outcome: Outcome) -> Any:
        ok, value = outcome
        if ok:
            return value
        if isinstance(value, sqlite3.Error):
            raise self._unavailable(value) from value
        raise value

    def _bind(self) -> asyncio.AbstractEventLoop:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise asyncio_only(
                "SQLiteStore", "its sqlite3 thread answers through asyncio"
            ) from None
        if loop is not self._loop:
            # A new event loop (a second asyncio.run(), a test's loop). The old loop keeps its
            # queue and flusher; its thread closes the connection once its jobs are done.
            self._loop, self._pending, self._flusher = loop, [], None
            self._leading, self._idle = False, None
            if self._worker is not None:
                self._worker.stop()
                self._worker = None
        return loop

    async def _drain(self, pending: list[Pending]) -> None:
        """Run queued operations a batch per hop until none are left, then sweep if due."""
        yielded = False
        while True:
            if pending:
                batch = [p for p in pending[:_MAX_BATCH] if not p.future.done()]
                del pending[:_MAX_BATCH]  # a caller that gave up (cancelled) is skipped
                if batch:
                    await self._run_batch(batch)
                yielded = False
            elif not yielded:
                # The callers just answered run next; one that calls again at once queues
                # here, rather than finding the store idle and taking a hop of its own.
                yielded = True
                await asyncio.sleep(0)
            elif not self._closing and self._sweep_due():
                await self._sweep_step()
            else:
                return

    async def _run_batch(self, batch: list[Pending]) -> None:
        try:
            outcomes = await self._execute(batch, any(p.writes for p in batch))
        except asyncio.CancelledError:
            for pending in batch:
                abandon(pending)
                pending.future.cancel()
            raise
        except Exception as exc:  # StoreUnavailable, ConfigurationError, or a bug: tell all
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        for pending, outcome in outcomes:
            if pending.future.done():
                continue
            try:
                pending.future.set_result(self._result(outcome))
            except Exception as exc:
                pending.future.set_exception(exc)

    def _sweep_due(self) -> bool:
        if self._worker is None:  # piggyback only on a working connection
            return False
        if not self._sweeping:
            now = self._clock()
            if now - self._last_sweep < self.sweep_interval:
                return False
            self._last_sweep, self._sweeping = now, True
        return True

    async def _sweep_step(self) -> None:
        chunk = partial(self._sql.sweep_chunk, self._clock(), self.sweep_batch)
        try:
            [(_, (ok, deleted))] = await self._execute([Pending(chunk, True, None)], True)
        except Exception as exc:  # a sweep must never stop the flusher
            ok, deleted = False, exc
        if not ok:
            logger.warning("SQLiteStore sweep of %s failed, retrying later: %s", self.path, deleted)
        self._sweeping = ok and deleted >= self.sweep_batch  # a full chunk: maybe more left

    # -- the thread -----------------------------------------------------------------------

    async def _execute(self, batch: list[Pending], writes: bool) -> list[tuple[Pending, Outcome]]:
        """Run ``batch`` in one transaction in one hop, opening the connection if needed."""
        worker = self._worker if self._worker is not None else await self._open()
        self._hops += 1
        try:
            return await worker.submit(
                cast("asyncio.AbstractEventLoop", self._loop),
                partial(transaction, batch, writes, self._busy_ms),
            )
        except sqlite3.Error as exc:
            if self._worker is worker:
                self._worker = None
            worker.stop()
            raise self._unavailable(exc) from exc

    async def _open(self) -> Worker:
        worker = Worker(self._connect, f"asgisession SQLiteStore {self.path}")
        self._hops += 1
        try:
            loop = cast("asyncio.AbstractEventLoop", self._loop)
            await worker.submit(loop, partial(self._sql.setup, self.path, self._busy_ms / 1000))
        except BaseException as exc:
            worker.stop()
            if isinstance(exc, sqlite3.Error):
                raise self._unavailable(exc) from exc
            raise
        self._worker = worker
        return worker

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: sqlite3 opens no transactions of its own; we BEGIN.
        return sqlite3.connect(self.path, timeout=self._busy_ms / 1000, isolation_level=None)

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        waited = self._busy_ms / 1000
        return StoreUnavailable(
            f"SQLite database {self.path!r} is unavailable: {exc}. Check that its directory "
            "exists and is writable, that the file is a SQLite database, that the disk has "
            f"room, and that no other connection holds a write lock for over {waited:g} s."
        )


def _nothing(db: sqlite3.Connection) -> None:
    """The operation of a ping: the transaction around it is the test."""


def _check_number(name: str, value: float, *, minimum: float, exclusive: bool = False) -> None:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (value > minimum if exclusive else value >= minimum)
    )
    if not ok:
        bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        raise ConfigurationError(f"{name}={value!r}; give a finite number of seconds {bound}.")
