"""What SQLiteStore runs on its thread: the SQL, the schema check and one batch's transaction.

Everything here takes a ``sqlite3.Connection`` and blocks; :mod:`.sqlite` calls it through
its :class:`~._sqlite_worker.Worker`. The table name is the one identifier written into SQL,
checked by the store before it gets here; every value is a parameter.

A batch's callers may give up (time out, be cancelled) while it runs. :func:`transaction`
never commits for one that did: before ``COMMIT`` it claims every caller under a lock, and if
one gave up meanwhile it rolls the whole transaction back and runs the others again. A
caller that gives up is thus told "not written" unless its commit had already begun
(:func:`abandon` says which).
"""

# S608 flags SQL built with f-strings: only the checked table name is.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError

__all__ = ["META_TABLE", "SCHEMA_VERSION", "Pending", "Statements", "abandon", "transaction"]

logger: logging.Logger = logging.getLogger("asgisession")

#: The schema version this code writes. A table of a newer version is refused.
SCHEMA_VERSION = 1
#: One row per store table: its name and schema version (a file may hold several stores).
META_TABLE = "asgisession_schema"

Outcome = tuple[bool, Any]  # (True, result) or (False, the exception)

_WAITING, _ABANDONED, _COMMITTING = "waiting", "abandoned", "committing"
_CLAIMS = threading.Lock()  # guards Pending.state between the event loop and the threads


@dataclass(eq=False)
class Pending:
    """One caller's operation: what to run, whether it writes, and until when it waits."""

    run: Callable[[sqlite3.Connection], Any]
    writes: bool
    #: time.monotonic() after which a batch stops waiting for the lock on its behalf (a bit
    #: after the caller gives up), or None: the caller waits as long as it takes.
    deadline: float | None
    state: str = field(default=_WAITING)
    #: Where a queued caller waits for its outcome (a caller run at once awaits the hop).
    future: asyncio.Future[Any] = field(init=False, repr=False)


def abandon(pending: Pending) -> bool:
    """Mark ``pending`` given up; whether that was in time for nothing to be written."""
    with _CLAIMS:
        if pending.state == _COMMITTING:
            return False
        pending.state = _ABANDONED
        return True


def transaction(
    batch: list[Pending], writes: bool, busy_ms: int, db: sqlite3.Connection
) -> list[tuple[Pending, Outcome]]:
    """Run the operations of the callers still waiting in one transaction; their outcomes.

    An error in one operation fails only its caller; one that ends the transaction, or a
    failed commit, raises and so fails the whole batch.
    """
    while live := [p for p in batch if p.state == _WAITING]:
        _begin(db, writes, live, busy_ms)
        outcomes: list[tuple[Pending, Outcome]] = []
        try:
            for pending in live:
                try:
                    outcomes.append((pending, (True, pending.run(db))))
                except Exception as exc:
                    if not db.in_transaction:  # it took the transaction with it: all void
                        raise
                    outcomes.append((pending, (False, exc)))  # only that statement undone
            if writes:
                gave_up = False
                with _CLAIMS:
                    for pending in live:
                        if pending.state != _WAITING:
                            gave_up = True
                    if not gave_up:
                        for pending in live:
                            pending.state = _COMMITTING
                if gave_up:  # roll back, and run the others again without it
                    rollback(db)
                    batch = live
                    continue
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
        return outcomes
    return []


def _begin(db: sqlite3.Connection, writes: bool, live: list[Pending], busy_ms: int) -> None:
    """``BEGIN``, or ``BEGIN IMMEDIATE`` waiting for the lock no longer than callers wait.

    The connection's busy timeout is ``busy_ms`` already; a batch whose callers have waited
    long enough that it matters (an eighth of it) sets a shorter one for its ``BEGIN``.
    """
    if not writes:
        db.execute("BEGIN")
        return
    wait_ms = busy_ms
    latest = max((p.deadline for p in live if p.deadline is not None), default=None)
    if latest is not None and all(p.deadline is not None for p in live):
        wait_ms = max(0, int((latest - time.monotonic()) * 1000))
    if wait_ms + busy_ms // 8 >= busy_ms:  # the usual case: no pragma to set
        db.execute("BEGIN IMMEDIATE")
        return
    db.execute(f"PRAGMA busy_timeout = {wait_ms}")
    try:
        db.execute("BEGIN IMMEDIATE")
    finally:
        db.execute(f"PRAGMA busy_timeout = {busy_ms}")


def rollback(db: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any, ignoring a failure to."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


class Statements:
    """Every SQL statement of one store, built once."""

    def __init__(self, table: str) -> None:
        t = self.table = table
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
        self.replace_if = (
            f"UPDATE {t} SET data = ?, expires_at = ? WHERE key = ? AND expires_at > ? AND data = ?"
        )
        self.touch = f"UPDATE {t} SET expires_at = ? WHERE key = ? AND expires_at > ?"
        self.add = (
            f"INSERT INTO {t} (key, data, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) "
            "DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at "
            f"WHERE {t}.expires_at <= ?"
        )
        self.delete = f"DELETE FROM {t} WHERE key = ?"
        self.delete_live = f"DELETE FROM {t} WHERE key = ? AND expires_at > ?"
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

    # -- the operations, each run inside a batch's transaction ---------------------------

    def load_row(self, key: str, now: float, db: sqlite3.Connection) -> bytes | None:
        row = db.execute(self.load, (key, now)).fetchone()
        return None if row is None else bytes(row[0])

    def save_row(
        self,
        key: str,
        data: bytes,
        expires_at: float,
        replace: bool,
        now: float,
        db: sqlite3.Connection,
    ) -> bool:
        if replace:  # only a live row: a deleted session must stay deleted (base.py, rule 3)
            return db.execute(self.replace, (data, expires_at, key, now)).rowcount == 1
        db.execute(self.upsert, (key, data, expires_at))
        return True

    def delete_row(self, key: str, now: float, db: sqlite3.Connection) -> bool:
        """Delete ``key``; whether it was live (an expired row goes too, unreported)."""
        if db.execute(self.delete_live, (key, now)).rowcount == 1:
            return True
        db.execute(self.delete, (key,))
        return False

    @staticmethod
    def rowcount(sql: str, params: tuple[object, ...], db: sqlite3.Connection) -> int:
        return db.execute(sql, params).rowcount

    def members(self, index: str, now: int, db: sqlite3.Connection) -> dict[str, int]:
        db.execute(self.index_prune, (index, now))
        rows = db.execute(self.index_members, (index, now)).fetchall()
        return {str(member): int(expires_at) for member, expires_at in rows}

    def sweep_chunk(self, now: float, limit: int, db: sqlite3.Connection) -> int:
        deleted = db.execute(self.sweep, (now, limit)).rowcount
        if deleted < limit:
            deleted += db.execute(self.index_sweep, (now, limit - deleted)).rowcount
        return deleted

    # -- opening --------------------------------------------------------------------------

    def setup(self, path: str, busy_timeout: float, db: sqlite3.Connection) -> None:
        """Set the connection's pragmas and create or check the versioned schema."""
        _set_wal(db, path, busy_timeout)
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("BEGIN IMMEDIATE")  # two processes starting at once create it once
        try:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {META_TABLE} "
                "(table_name TEXT PRIMARY KEY COLLATE NOCASE, version INTEGER NOT NULL)"
            )
            row = db.execute(
                f"SELECT version FROM {META_TABLE} WHERE table_name = ?", (self.table,)
            ).fetchone()
            if row is None:
                taken = db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND lower(name) IN (lower(?), lower(?))",
                    (self.table, self.index_table),
                ).fetchone()
                if taken is not None:
                    raise ConfigurationError(
                        f"{path!r} already has a table {taken[0]!r} that asgisession "
                        "did not create; give SQLiteStore another table= or file."
                    )
                for statement in self.schema:
                    db.execute(statement)
                db.execute(f"INSERT INTO {META_TABLE} VALUES (?, ?)", (self.table, SCHEMA_VERSION))
            elif row[0] != SCHEMA_VERSION:
                # Version 1 is the first; a later one adds its migration step here.
                newer = isinstance(row[0], int) and row[0] > SCHEMA_VERSION
                raise ConfigurationError(
                    f"table {self.table!r} in {path!r} has schema version {row[0]!r}; "
                    f"this asgisession knows version {SCHEMA_VERSION}. "
                    + ("Upgrade asgisession, or" if newer else f"Fix its row in {META_TABLE}, or")
                    + " give SQLiteStore another file or table."
                )
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise


def _set_wal(db: sqlite3.Connection, path: str, busy_timeout: float) -> None:
    # The mode is stored in the file. Switching skips the busy handler: two processes
    # opening a new file at once get "database is locked" at once. So retry until the
    # busy timeout, as SQLite would for any other lock.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    if mode != "wal" and path != ":memory:":
        logger.warning("SQLiteStore %s runs in journal mode %r, not WAL", path, mode)
