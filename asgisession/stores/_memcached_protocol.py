"""memcached's text protocol on connections borrowed from an aiomcache pool.

Why this exists instead of calling ``aiomcache.Client``: aiomcache 0.8 puts a connection
back into its pool when a command is cancelled (or times out) mid-reply, because its
``acquire`` wrapper marks a connection broken only on ``Exception``, and ``CancelledError``
is not one. The late reply is then read by the next command on that connection: a miss for
a key that exists, an old value, or a ``replace`` reported as stored that was not. It also
spins forever, without yielding to the event loop, if the server closes the connection in
the middle of a one-line reply (aio-libs/aiomcache#502).

So :class:`MemcachedStore <asgisession.stores.memcached.MemcachedStore>` keeps aiomcache's
client and pool (connecting, pool size, closing) and uses only this module on the wire:

* :class:`Borrower` takes a connection from the pool, runs one command on it, and closes
  (never pools) a connection whose command did not finish, whatever stopped it.
* :func:`exchange` and :func:`retrieve` speak the few text commands the store needs, and
  check every reply: a reply for another key, or one the command cannot produce, raises
  :class:`Unexpected` and the connection is closed, so it is never served.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiomcache.pool import Connection, MemcachePool

__all__ = ["Borrower", "ServerError", "Slots", "Unexpected", "exchange", "retrieve", "version"]

logger: logging.Logger = logging.getLogger("asgisession")

_T = TypeVar("_T")

#: What follows a value's bytes in a one-key get reply: the block's CRLF, then END.
_VALUE_END = b"\r\nEND\r\n"


class Unexpected(Exception):
    """A reply this store never asked for: the connection is out of step or not memcached."""


class ServerError(Unexpected):
    """memcached answered ``ERROR``, ``CLIENT_ERROR ...`` or ``SERVER_ERROR ...``."""


async def _reply(conn: Connection) -> bytes:
    """Read one reply line, without its CRLF."""
    try:
        line = await conn.reader.readline()
    except ValueError as exc:  # a line past the reader's limit: not a memcached reply
        raise Unexpected("reply line too long") from exc
    if not line.endswith(b"\r\n"):  # EOF; aiomcache loops forever here (#502)
        raise ConnectionResetError("memcached closed the connection mid-reply")
    line = line[:-2]
    if line == b"ERROR" or line.startswith((b"CLIENT_ERROR", b"SERVER_ERROR")):
        raise ServerError(line.decode("ascii", "replace"))
    return line


async def _send(conn: Connection, request: bytes) -> None:
    """Write one whole request; wait for the socket only if it did not all go out at once."""
    # One write per command: asyncio sockets are TCP_NODELAY, so each write() can leave as
    # a packet of its own, and a set split in three costs memcached three reads.
    writer = conn.writer
    writer.write(request)
    # A small request goes straight into the socket, leaving nothing to drain. A large
    # value that is still buffered is waited for.
    if writer.transport.get_write_buffer_size():
        await writer.drain()


async def exchange(
    conn: Connection, line: bytes, *expected: bytes, data: bytes | None = None
) -> bytes:
    """Send one command (with its data block, if any); return its reply, one of ``expected``."""
    await _send(conn, line + b"\r\n" if data is None else b"".join((line, b"\r\n", data, b"\r\n")))
    reply = await _reply(conn)
    if reply not in expected:
        raise Unexpected(f"unexpected reply {reply[:60]!r} to {line.split(b' ', 1)[0]!r}")
    return reply


async def version(conn: Connection) -> bytes:
    """``version``: the server's version string; the cheapest full round trip."""
    await _send(conn, b"version\r\n")
    line = await _reply(conn)
    if not line.startswith(b"VERSION "):
        raise Unexpected(f"unexpected reply {line[:60]!r} to 'version'")
    return line[len(b"VERSION ") :]


async def retrieve(conn: Connection, key: bytes, *, cas: bool) -> tuple[bytes | None, int]:
    """``get`` (or ``gets``) one key: its value or ``None``, and its CAS token (0 if none)."""
    await _send(conn, (b"gets " if cas else b"get ") + key + b"\r\n")
    line = await _reply(conn)
    if line == b"END":
        return None, 0
    # VALUE <key> <flags> <bytes> [<cas unique>]
    parts = line.split(b" ")
    if (
        len(parts) != (5 if cas else 4)
        or parts[0] != b"VALUE"
        or parts[1] != key  # a reply for another key: out of step, never served
        or not all(part.isdigit() for part in parts[2:])
    ):
        raise Unexpected(f"unexpected reply {line[:60]!r} to a get")
    # The value, its CRLF and the closing END in one read: exactly what is left of the
    # reply to a one-key get, so nothing of a later reply is consumed.
    size = int(parts[3])
    block = await conn.reader.readexactly(size + len(_VALUE_END))
    if not block.endswith(_VALUE_END):
        raise Unexpected("malformed value block")
    return block[:size], int(parts[4]) if cas else 0


class Slots:
    """At most ``n`` holders at once; waiters are served first come, first served.

    An ``asyncio.Semaphore`` with a synchronous fast path: taking a free slot when nobody
    waits costs no coroutine, where ``async with semaphore`` costs three. A released slot
    is handed straight to the first waiter, so a newcomer never overtakes it.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, n: int) -> None:
        self._free = n
        self._waiters: deque[asyncio.Future[None]] = deque()

    def take_now(self) -> bool:
        """Take a slot if one is free and nobody waits; whether it was taken."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a slot handed over by :meth:`give`."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot, then cancelled before running: pass it on
            elif waiter in self._waiters:  # give() drops cancelled waiters it meets
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Release a slot: to the first waiter still waiting, else back to the free ones."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class Borrower:
    """Runs commands on connections of one aiomcache pool, at most its size at once.

    At most pool-size commands are in flight (:class:`Slots`, which also hands connections
    over first come, first served). A command that finds no idle connection, while the pool
    and the connections being opened number fewer than its size, opens one more: so the
    pool grows with demand, one connection per waiting command, and a burst on an idle
    pool opens as many connections as commands run at once, never more.

    The connection is opened in a task of its own (:meth:`_open`), which puts it into the
    pool when done: a command whose deadline passes while it connects still gives up at the
    deadline, and the connection serves the next command. aiomcache's own ``acquire`` is not
    used: it opens all ``minsize`` connections one after the other on first use, inside the
    first command's deadline, and past that never opens another.
    """

    __slots__ = ("_change", "_opening", "_pool", "_size", "_slots", "_tasks", "closing")

    def __init__(self, pool: MemcachePool, size: int) -> None:
        #: Set when the pool is closing: connections are then closed, not pooled, after use.
        self.closing = False
        self._pool = pool
        self._size = size
        self._slots = Slots(size)
        self._opening = 0  # connections being opened
        # Resolved when a connection is released or an opening ends, for the commands
        # that wait for one of those (see _acquire); None while nobody waits.
        self._change: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, command: Callable[[Connection], Awaitable[_T]]) -> _T:
        """Run ``command`` on a pooled connection, waiting for one if all are busy."""
        pool, slots = self._pool, self._slots
        if not slots.take_now():
            await slots.take()
        try:
            conn = self._idle() or await self._acquire()
            finished = False
            try:
                result = await command(conn)
                finished = True
                return result
            finally:
                if not finished:
                    # The reply may be unread or half-read: never let another command see it.
                    logger.debug("closing a memcached connection whose command did not finish")
                if not finished or self.closing:
                    # aiomcache's release() closes, instead of pooling, a connection whose
                    # reader holds an exception.
                    conn.reader.set_exception(ConnectionAbortedError("not reusable"))
                pool.release(conn)
                if self._change is not None:
                    self._changed()
        finally:
            slots.give()

    async def _acquire(self) -> Connection:
        """An idle connection of the pool, opening one if none is idle and there is room.

        With none idle and no room (the others are in use, or being opened for commands
        that gave up), wait until one is released or an opening ends, then look again.
        """
        pool = self._pool
        while True:
            conn = self._idle()
            if conn is not None:
                return conn
            if not self.closing and pool.size() + self._opening < self._size:
                # The opening goes on if this command gives up; its error is this command's.
                await asyncio.shield(self._start_opening())
                continue
            if self.closing:
                raise ConnectionAbortedError("the store is closing")
            if self._change is None:
                self._change = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._change)

    def _idle(self) -> Connection | None:
        """The idle connection used last, taken (no await: the common case costs no coroutine).

        Last in, first out, as redis-py's pool: calls one after another keep to one warm
        connection (and one memcached worker thread), where taking the oldest would rotate
        them over every connection the pool ever opened (10% slower per call at 50).
        """
        pool = self._pool
        idle: asyncio.Queue[Connection] = pool._pool
        # The queue is unbounded (nobody waits to put), so taking from its end directly
        # leaves its bookkeeping as get_nowait() would.
        held = idle._queue  # type: ignore[attr-defined]
        while held:
            conn: Connection = held.pop()
            if conn.reader.at_eof() or conn.reader.exception() is not None:
                pool._do_close(conn)  # closed by the server while idle
                continue
            pool._in_use.add(conn)
            return conn
        return None

    def _changed(self) -> None:
        change, self._change = self._change, None
        if change is not None and not change.done():
            change.set_result(None)

    def _start_opening(self) -> asyncio.Task[None]:
        self._opening += 1
        task = asyncio.ensure_future(self._open())
        self._tasks.add(task)
        task.add_done_callback(self._opened)
        return task

    async def _open(self) -> None:
        pool = self._pool
        reader, writer = await asyncio.open_connection(pool._host, pool._port, **pool.conn_args)
        conn = Connection(reader, writer)
        if self.closing:
            pool._do_close(conn)
        else:
            pool._pool.put_nowait(conn)

    def _opened(self, task: asyncio.Task[None]) -> None:
        self._opening -= 1
        self._tasks.discard(task)
        self._changed()
        if not task.cancelled():
            task.exception()  # raised in the command that waited, if it still did

    def cancel_opening(self) -> None:
        """Stop the connections still being opened (the pool is closing)."""
        for task in list(self._tasks):
            task.cancel()
        self._changed()
