"""SQLiteStore: sessions in one SQLite file, the embedded default for server-side sessions.

aiosqlite runs sqlite3 on one worker thread per connection, and every call is a *hop* to
that thread and back, which costs several times the point read it carries (measured in
``benchmarks/sqlite_hops.py``). So the store coalesces. A call made while nothing is in
flight runs at once, in its caller's task, in one hop, as a plain aiosqlite call would.
Calls made while a hop is in flight queue up; when it lands, one flusher task runs all of
them in ONE hop and ONE transaction, resolves each caller's future with its own result, and
repeats until the queue is empty. Under load, many calls share each hop.

Invariants:

1. At most one hop is in flight per store, and operations run in the order they were
   called (a caller that gave up before its turn is skipped).
2. Expired rows are never served. Every read, ``replace`` and ``touch`` says
   ``expires_at > now``; the sweep deletes the rows later.
3. One transaction per hop: ``BEGIN IMMEDIATE`` when it writes (the write lock is taken
   up front, so a transaction never has to upgrade and fail with "database is locked"; the
   busy timeout does the waiting), a plain ``BEGIN`` when it only reads. An error in one
   operation fails only its caller; an error that ends the transaction, or a failed
   commit, fails the whole batch, so no caller hears of a write that was rolled back.
4. WAL journal with ``synchronous=NORMAL``: readers never wait for the writer, and a commit
   costs no fsync (a power cut may lose the last commits, never the file).
5. The sweep deletes expired rows ``sweep_batch`` at a time, each chunk its own short
   transaction and hop. It piggybacks on normal calls, at most once per ``sweep_interval``,
   and only when the queue is empty, so a queued operation never waits behind more than
   one chunk.
6. Values are always SQL parameters. The table name is the one identifier written into
   SQL, and it must match ``[A-Za-z_][A-Za-z0-9_]*``.
7. Nothing happens at import or construction: the connection and the schema are made on
   first use, on the worker thread, for the loop that uses them. sqlite3 errors become
   :class:`~asgisession.errors.StoreUnavailable` and drop the connection, so a later call
   reopens it once the cause is gone.
"""

# S608 flags SQL built with f-strings. Here only the table name is, after _TABLE_NAME
# checked it; every value is a parameter (invariant 5).
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar, cast

import aiosqlite

from ..errors import ConfigurationError, StoreUnavailable
from .base import ClosingStore, check_ttl

__all__ = ["META_TABLE", "SCHEMA_VERSION", "SQLiteStore"]

logger: logging.Logger = logging.getLogger("asgisession")

#: The schema version this code writes. A table of a newer version is refused.
SCHEMA_VERSION = 1
#: One row per store table: its name and schema version (a file may hold several stores).
META_TABLE = "asgisession_schema"
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,57}")
#: The most operations in one batch; bounds how long a transaction holds the write lock.
_MAX_BATCH = 256

_T = TypeVar("_T")
_Op = Callable[[sqlite3.Connection], Any]
_Outcome = tuple[bool, Any]  # (True, result) or (False, the exception)


@dataclass(eq=False)
class _Pending(Generic[_T]):
    run: Callable[[sqlite3.Connection], _T]
    writes: bool
    future: asyncio.Future[_T]


class SQLiteStore(ClosingStore):
    """Keeps sessions in a SQLite file: durable, shared by the workers of one machine.

    :param path: the database file; created, with its tables, on first use.
    :param table: the sessions table; the user index lives in ``<table>_index``.
    :param busy_timeout: seconds a write waits for another connection's lock.
    :param sweep_interval: the fewest seconds between two sweeps of expired rows.
    :param sweep_batch: the most rows one sweep transaction deletes.
    :param clock: returns unix time; for tests.
    :raises ConfigurationError: for a bad setting; also on first use, for a table written
        by a newer asgisession or by something else.

    The store owns its connection: :meth:`aclose` closes it, and the next call opens a new
    one, in whichever event loop makes it. Close the store when the app stops (``async
    with``, or the lifespan): aiosqlite's thread is not a daemon, so an open store keeps
    the interpreter from exiting. A store serves one event loop at a time; a call from a
    new loop lets the old loop's connection go and opens another.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = "asgisession_sessions",
        busy_timeout: float = 5.0,
        sweep_interval: float = 60,
        sweep_batch: int = 500,
        clock: Callable[[], float] = time.time,
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
        _check_number("busy_timeout", busy_timeout, minimum=0.0)
        _check_number("sweep_interval", sweep_interval, minimum=0.0, exclusive=True)
        if isinstance(sweep_batch, bool) or not isinstance(sweep_batch, int) or sweep_batch < 1:
            raise ConfigurationError(f"sweep_batch={sweep_batch!r}; give a whole number > 0.")
        self.path: str = os.fspath(path)
        self.table = table
        self.busy_timeout = busy_timeout
        self.sweep_interval = sweep_interval
        self.sweep_batch = sweep_batch
        self._clock = clock
        self._sql = _Statements(table)
        self._conn: aiosqlite.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[_Pending[Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._leading = False  # a lone call is in flight in its caller's task
        self._closing = False
        self._idle: asyncio.Future[None] | None = None  # aclose() waits on it for a lone call
        self._sweeping = False
        self._last_sweep = -math.inf
        self._hops = 0  # thread hops taken; tests and benchmarks read it

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, table={self.table!r})"

    async def load(self, key: str) -> bytes | None:
        """Return the bytes under ``key``, or ``None`` when missing or expired."""
        return await self._call(partial(self._load, key, self._clock()), writes=False)

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        """Store ``data`` for ``ttl`` seconds; with ``replace``, only over a live key."""
        now = self._clock()
        run = partial(self._save, key, bytes(data), now + check_ttl(ttl), replace, now)
        return await self._call(run, writes=True)

    async def touch(self, key: str, *, ttl: int) -> bool:
        """Reset a live ``key``'s time to live; return whether it existed."""
        now = self._clock()
        run = partial(self._rowcount, self._sql.touch, (now + check_ttl(ttl), key, now))
        return await self._call(run, writes=True) == 1

    async def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        await self._call(partial(self._rowcount, self._sql.delete, (key,)), writes=True)

    async def index_add(self, index: str, member: str, *, expires_at: int) -> None:
        """Add ``member`` to ``index`` until ``expires_at``, or move its expiry."""
        params = (index, member, expires_at)
        await self._call(partial(self._rowcount, self._sql.index_add, params), writes=True)

    async def index_remove(self, index: str, member: str) -> None:
        """Remove ``member`` from ``index`` if present."""
        params = (index, member)
        await self._call(partial(self._rowcount, self._sql.index_remove, params), writes=True)

    async def index_members(self, index: str, *, now: int) -> dict[str, int]:
        """The live members of ``index``; expired ones are deleted on the way."""
        return await self._call(partial(self._members, index, now), writes=True)

    async def sweep(self) -> int:
        """Delete every expired row now, ``sweep_batch`` per transaction; return the count.

        The store already sweeps by itself as it is used; this is for a shutdown hook, a
        cron job, or a test.
        """
        self._last_sweep = self._clock()
        total = 0
        while True:
            chunk = partial(self._sweep_chunk, self._clock(), self.sweep_batch)
            deleted = await self._call(chunk, writes=True)
            total += deleted
            if deleted < self.sweep_batch:
                return total

    async def aclose(self) -> None:
        """Finish the operations in flight and queued, then close the connection.

        Safe to call again; a call after it opens a new connection.
        """
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
        conn, self._conn = self._conn, None
        if conn is not None:
            await _close_quietly(conn)

    # -- the queue (event loop side) ------------------------------------------------------

    async def _call(self, run: Callable[[sqlite3.Connection], _T], *, writes: bool) -> _T:
        """Run one operation: at once when nothing is in flight, else in the next batch."""
        loop = self._bind()
        if self._leading or self._pending or self._flushing():
            # Whoever is in flight (a lone call, or the flusher) starts or runs the next batch.
            future: asyncio.Future[_T] = loop.create_future()
            self._pending.append(_Pending(run, writes, future))
            return await future
        # Idle: this call runs in its own task, in one hop, with no flusher task to start and
        # wake; calls that arrive meanwhile queue, and it hands them to a flusher after.
        self._leading = True
        try:
            [outcome] = await self._execute([run], writes)
        finally:
            self._leading = False
            self._kick()
            if self._idle is not None and not self._idle.done():
                self._idle.set_result(None)  # aclose() is waiting for this call
        return cast("_T", self._result(outcome))

    def _flushing(self) -> bool:
        return self._flusher is not None and not self._flusher.done()

    def _kick(self) -> None:
        """Start a flusher if there is queued work or a sweep is due and none is running."""
        if self._flushing() or self._loop is None:
            return
        if self._pending or (not self._closing and self._sweep_due()):
            self._flusher = self._loop.create_task(self._drain(self._pending))

    def _result(self, outcome: _Outcome) -> Any:
        ok, value = outcome
        if ok:
            return value
        if isinstance(value, sqlite3.Error):
            raise self._unavailable(value) from value
        raise value

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (a second asyncio.run(), a test's loop). The old loop keeps its
            # queue and flusher. Its connection is let go, not reused: aiosqlite's thread dies
            # when a call ends after its loop closed, and a dead thread never answers again.
            self._loop, self._pending, self._flusher = loop, [], None
            self._leading, self._idle = False, None
            if self._conn is not None:
                self._conn.stop()
                self._conn = None
        return loop

    async def _drain(self, pending: list[_Pending[Any]]) -> None:
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

    async def _run_batch(self, batch: list[_Pending[Any]]) -> None:
        try:
            outcomes = await self._execute([p.run for p in batch], any(p.writes for p in batch))
        except asyncio.CancelledError:
            for pending in batch:
                pending.future.cancel()
            raise
        except Exception as exc:  # StoreUnavailable, ConfigurationError, or a bug: tell all
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():
                continue
            try:
                pending.future.set_result(self._result(outcome))
            except Exception as exc:
                pending.future.set_exception(exc)

    def _sweep_due(self) -> bool:
        if self._conn is None:  # piggyback only on a working connection
            return False
        if not self._sweeping:
            now = self._clock()
            if now - self._last_sweep < self.sweep_interval:
                return False
            self._last_sweep, self._sweeping = now, True
        return True

    async def _sweep_step(self) -> None:
        chunk = partial(self._sweep_chunk, self._clock(), self.sweep_batch)
        try:
            [(ok, deleted)] = await self._execute([chunk], True)
        except Exception as exc:  # a sweep must never stop the flusher
            ok, deleted = False, exc
        if not ok:
            logger.warning("SQLiteStore sweep of %s failed, retrying later: %s", self.path, deleted)
        self._sweeping = ok and deleted >= self.sweep_batch  # a full chunk: maybe more left

    # -- the connection -------------------------------------------------------------------

    async def _execute(self, ops: Sequence[_Op], writes: bool) -> list[_Outcome]:
        """Run ``ops`` in one transaction in one hop, opening the connection if needed."""
        conn = self._conn if self._conn is not None else await self._open()
        try:
            self._hops += 1
            return await _hop(conn, partial(_transaction, ops, writes))
        except (sqlite3.Error, ValueError) as exc:  # ValueError: aiosqlite's "closed"
            if self._conn is conn:
                self._conn = None
            await _close_quietly(conn)
            raise self._unavailable(exc) from exc

    async def _open(self) -> aiosqlite.Connection:
        try:
            # isolation_level=None: sqlite3 opens no transactions of its own; we BEGIN.
            conn = await aiosqlite.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, factory=_Connection
            )
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        try:
            self._hops += 1
            await _hop(conn, self._setup)
        except BaseException as exc:
            await _close_quietly(conn)
            if isinstance(exc, sqlite3.Error):
                raise self._unavailable(exc) from exc
            raise
        self._conn = conn
        return conn

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(
            f"SQLite database {self.path!r} is unavailable: {exc}. Check that its directory "
            "exists and is writable, that the file is a SQLite database, that the disk has "
            f"room, and that no other connection holds a write lock for over {self.busy_timeout} s."
        )

    # -- on the worker thread -------------------------------------------------------------

    def _setup(self, db: sqlite3.Connection) -> None:
        """Set the connection's pragmas and create or check the versioned schema."""
        if isinstance(db, _Connection) and db.open_error is not None:
            raise db.open_error
        self._set_wal(db)
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("BEGIN IMMEDIATE")  # two processes starting at once create it once
        try:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {META_TABLE} "
                "(table_name TEXT PRIMARY KEY COLLATE NOCASE, version INTEGER NOT NULL)"
            )
            row = db.execute(
                f"SELECT version FROM {META_TABLE} WHERE table_name = ?",
                (self.table,),
            ).fetchone()
            if row is None:
                taken = db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND lower(name) IN (lower(?), lower(?))",
                    (self.table, self._sql.index_table),
                ).fetchone()
                if taken is not None:
                    raise ConfigurationError(
                        f"{self.path!r} already has a table {taken[0]!r} that asgisession "
                        "did not create; give SQLiteStore another table= or file."
                    )
                for statement in self._sql.schema:
                    db.execute(statement)
                db.execute(f"INSERT INTO {META_TABLE} VALUES (?, ?)", (self.table, SCHEMA_VERSION))
            elif row[0] != SCHEMA_VERSION:
                # Version 1 is the first; a later one adds its migration step here.
                newer = isinstance(row[0], int) and row[0] > SCHEMA_VERSION
                raise ConfigurationError(
                    f"table {self.table!r} in {self.path!r} has schema version {row[0]!r}; "
                    f"this asgisession knows version {SCHEMA_VERSION}. "
                    + ("Upgrade asgisession, or" if newer else f"Fix its row in {META_TABLE}, or")
                    + " give SQLiteStore another file or table."
                )
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise

    def _set_wal(self, db: sqlite3.Connection) -> None:
        # The mode is stored in the file. Switching skips the busy handler: two processes
        # opening a new file at once get "database is locked" at once. So retry until the
        # busy timeout, as SQLite would for any other lock.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        if mode != "wal" and self.path != ":memory:":
            logger.warning("SQLiteStore %s runs in journal mode %r, not WAL", self.path, mode)

    def _load(self, key: str, now: float, db: sqlite3.Connection) -> bytes | None:
        row = db.execute(self._sql.load, (key, now)).fetchone()
        return None if row is None else bytes(row[0])

    def _save(
        self,
        key: str,
        data: bytes,
        expires_at: float,
        replace: bool,
        now: float,
        db: sqlite3.Connection,
    ) -> bool:
        if replace:  # only a live row: a deleted session must stay deleted (base.py, rule 3)
            return db.execute(self._sql.replace, (data, expires_at, key, now)).rowcount == 1
        db.execute(self._sql.upsert, (key, data, expires_at))
        return True

    @staticmethod
    def _rowcount(sql: str, params: tuple[object, ...], db: sqlite3.Connection) -> int:
        return db.execute(sql, params).rowcount

    def _members(self, index: str, now: int, db: sqlite3.Connection) -> dict[str, int]:
        db.execute(self._sql.index_prune, (index, now))
        rows = db.execute(self._sql.index_members, (index, now)).fetchall()
        return {str(member): int(expires_at) for member, expires_at in rows}

    def _sweep_chunk(self, now: float, limit: int, db: sqlite3.Connection) -> int:
        deleted = db.execute(self._sql.sweep, (now, limit)).rowcount
        if deleted < limit:
            deleted += db.execute(self._sql.index_sweep, (now, limit - deleted)).rowcount
        return deleted


class _Connection(sqlite3.Connection):
    """A sqlite3 connection that keeps its failure to open, for the first hop to raise.

    When sqlite3.connect() raises inside aiosqlite.connect(), aiosqlite stops its thread
    without waiting for it, and the thread's last answer may reach a loop that has closed
    meanwhile, which kills the thread. Failing in the first hop instead, which we await,
    lets the store close the connection the ordinary way.
    """

    open_error: sqlite3.Error | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except sqlite3.Error as exc:
            self.open_error = exc


class _Statements:
    """Every SQL statement of one store, built once; the table name is checked already."""

    def __init__(self, table: str) -> None:
        t = table
        i = self.index_table = f"{table}_index"
        self.schema = (
            f"CREATE TABLE {t} (key TEXT PRIMARY KEY, data BLOB NOT NULL, "
            "expires_at REAL NOT NULL)",
            f"CREATE INDEX {t}_expires_at ON {t} (expires_at)",
            f"CREATE TABLE {i} (index_key TEXT NOT NULL, member TEXT NOT NULL, "
            "expires_at INTEGER NOT NULL, PRIMARY KEY (index_key, member))",
            f"CREATE INDEX {i}_expires_at ON {i} (expires_at)",
        )
        self.load = f"SELECT data FROM {t} WHERE key = ? AND expires_at > ?"
        self.upsert = (
            f"INSERT INTO {t} (key, data, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) "
            "DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at"
        )
        self.replace = f"UPDATE {t} SET data = ?, expires_at = ? WHERE key = ? AND expires_at > ?"
        self.touch = f"UPDATE {t} SET expires_at = ? WHERE key = ? AND expires_at > ?"
        self.delete = f"DELETE FROM {t} WHERE key = ?"
        self.index_add = (
            f"INSERT INTO {i} (index_key, member, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (index_key, member) DO UPDATE SET expires_at = excluded.expires_at"
        )
        self.index_remove = f"DELETE FROM {i} WHERE index_key = ? AND member = ?"
        self.index_prune = f"DELETE FROM {i} WHERE index_key = ? AND expires_at <= ?"
        self.index_members = (
            f"SELECT member, expires_at FROM {i} WHERE index_key = ? AND expires_at > ?"
        )
        self.sweep = (
            f"DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} WHERE expires_at <= ? LIMIT ?)"
        )
        self.index_sweep = (
            f"DELETE FROM {i} WHERE rowid IN (SELECT rowid FROM {i} WHERE expires_at <= ? LIMIT ?)"
        )


def _transaction(ops: Sequence[_Op], writes: bool, db: sqlite3.Connection) -> list[_Outcome]:
    """Run ``ops`` in one transaction, keeping each one's result or exception."""
    db.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
    outcomes: list[_Outcome] = []
    try:
        for op in ops:
            try:
                outcomes.append((True, op(db)))
            except Exception as exc:
                if not db.in_transaction:  # it took the transaction with it: all void
                    raise
                outcomes.append((False, exc))  # one statement failed, and only it undone
        db.execute("COMMIT")
    except BaseException:
        _rollback(db)
        raise
    return outcomes


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


def _in_thread(conn: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], _T]) -> Awaitable[_T]:
    """Run ``fn(sqlite3_connection)`` on ``conn``'s worker thread: one hop.

    aiosqlite (0.20 to 0.22) has no public way to run a callable on its thread, and its
    public methods are one hop per statement. Each of them goes through
    ``Connection._execute(fn)``, so we call that directly and a whole batch is one queue
    item. ``_conn`` is the sqlite3 connection, used only on that thread.
    """
    execute = cast("Callable[[Callable[[], _T]], Awaitable[_T]]", conn._execute)
    return execute(lambda: fn(conn._conn))


async def _hop(conn: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], _T]) -> _T:
    """:func:`_in_thread`, but a cancelled caller still waits for the thread to finish.

    Cancelling the await does not stop the thread, and aiosqlite's thread dies if it then
    answers a loop that has closed meanwhile (as ``asyncio.run()`` does right after
    cancelling its tasks). A no-op queued behind the call returns once the call is done.
    """
    try:
        return await _in_thread(conn, fn)
    except asyncio.CancelledError:
        barrier = asyncio.ensure_future(_in_thread(conn, _nothing))
        while not barrier.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({barrier})
        if not barrier.cancelled():
            barrier.exception()  # retrieved, so never logged as unhandled
        raise


def _nothing(db: sqlite3.Connection) -> None:
    pass


async def _close_quietly(conn: aiosqlite.Connection) -> None:
    try:
        await conn.close()  # aiosqlite stops its thread even when the close fails
    except (sqlite3.Error, ValueError) as exc:
        logger.debug("closing a SQLite connection failed: %s", exc)


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
