"""The thread a SQLiteStore runs sqlite3 on: one thread and one connection per store.

sqlite3 blocks, so the store never calls it on the event loop: each call is a *hop* to this
thread and back. The store needs a whole batch (``BEGIN``, the operations of many callers,
``COMMIT``) in one hop. aiosqlite's public API takes one hop per statement, and reaching a
batch through it meant using its private internals, so the store owns its thread instead:
a plain ``threading.Thread`` fed by a ``queue.SimpleQueue``, which answers through
``loop.call_soon_threadsafe`` as aiosqlite does.

Owning it also fixes two hazards aiosqlite left to its callers: an answer for an event loop
that has closed meanwhile is dropped (aiosqlite's thread died of it and never answered
again), and the thread is a daemon, so a store nobody closed does not keep the interpreter
from exiting (SQLite's journal makes an interrupted transaction roll back on next open).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Worker"]

_T = TypeVar("_T")
_Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


class Worker:
    """Runs functions of a sqlite3 connection, one at a time, on a thread of its own.

    The connection is opened by the first job, on the thread, so an open error reaches
    the caller of that job like any other sqlite3 error.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], name: str) -> None:
        self._connect = connect
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._db: sqlite3.Connection | None = None
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[[sqlite3.Connection], _T]
    ) -> asyncio.Future[_T]:
        """Queue ``fn(connection)``; the future gets its result or exception.

        Cancelling the future does not stop ``fn``: whatever it must not leave half done,
        it finishes or undoes on the thread.
        """
        future: asyncio.Future[_T] = loop.create_future()
        self._jobs.put((fn, future, loop))
        return future

    def stop(self) -> None:
        """Let the thread close the connection and end once the queued jobs are done."""
        self._jobs.put(None)

    async def close(self, loop: asyncio.AbstractEventLoop) -> None:
        """:meth:`stop`, then wait until the connection is closed."""
        done = self.submit(loop, _close)
        self.stop()
        with contextlib.suppress(sqlite3.Error):
            await done

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future, loop = job
            try:
                if self._db is None:
                    self._db = self._connect()
                outcome: tuple[bool, Any] = (True, fn(self._db))
            except BaseException as exc:
                outcome = (False, exc)
            # A loop that has closed (RuntimeError) has nobody waiting for this answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, outcome)
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None


def _close(db: sqlite3.Connection) -> None:
    db.close()


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():  # its caller gave up
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
