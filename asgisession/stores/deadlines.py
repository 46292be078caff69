"""One timer per store for the deadlines of all its calls in flight (Python 3.11+).

A store call bounded by ``asyncio.timeout`` pays for a timer of its own: two awaited
context-manager methods and a ``TimerHandle`` pushed onto the event loop's heap, whose
comparisons run in Python, then cancelled and left there until the loop sweeps it. Against
a loopback round trip to Redis or memcached that was most of what a store added to the raw
client (see ``docs/benchmarks.md``). :class:`Deadlines` instead keeps a store's calls in a set
and runs one timer for all of them, so a call costs a set insert and removal.

The guarantee is the same as ``asyncio.timeout``'s, with a coarser clock: a call still
running ``timeout`` seconds after it started has its task cancelled, and the block it runs
in raises ``TimeoutError`` (unless the task was also cancelled by someone else, which then
propagates as ``CancelledError``). The timer wakes at the earliest deadline in flight, but
no more often than every eighth of the timeout, so a call is cut off between ``timeout`` and
``timeout * 1.125`` seconds after it started (plus whatever the event loop lags).

Python 3.10 has no ``Task.uncancel``, which telling our cancellation from a caller's needs;
there the stores keep ``asyncio.wait_for``.
"""

from __future__ import annotations

import asyncio
import math
import sys
from types import TracebackType

__all__ = ["Deadlines"]

#: The timer wakes at most every ``timeout / SLACK_DIVISOR`` seconds while calls are in flight.
SLACK_DIVISOR = 8
#: A call whose deadline is this close (seconds) when the timer fires counts as due: the
#: event loop runs a timer up to its clock resolution early.
_EARLY = 0.001


class Deadlines:
    """Cuts off each call of one store ``timeout`` seconds after it started.

    Use as ``with deadlines.bound(): await ...`` inside a task, on Python 3.11+.
    """

    __slots__ = ("_calls", "_loop", "_slack", "_timer", "timeout")

    timeout: float

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._slack = timeout / SLACK_DIVISOR
        self._calls: set[_Call] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def bound(self) -> _Call:
        """A context manager bounding the awaits inside it by ``timeout``."""
        return _Call(self)

    def _add(self, call: _Call, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            # First use, or a new event loop (calls of the old one can never finish).
            if self._timer is not None:
                self._timer.cancel()
            self._calls.clear()
            self._loop = loop
            self._timer = None
        self._calls.add(call)
        if self._timer is None:
            self._timer = loop.call_at(call.deadline, self._check)

    def _check(self) -> None:
        """Cancel the calls past their deadline; wake again for the earliest of the rest."""
        self._timer = None
        loop = self._loop
        if loop is None:  # pragma: no cover - a timer exists only after _add set the loop
            return
        now = loop.time()
        due = now + _EARLY
        earliest = math.inf
        for call in self._calls:  # cancel() only schedules: the set does not change here
            if call.expired:
                continue
            if call.deadline <= due:
                call.expire()
            elif call.deadline < earliest:
                earliest = call.deadline
        if earliest != math.inf:
            self._timer = loop.call_at(max(earliest, now + self._slack), self._check)


class _Call:
    """One bounded call: entered in a task, cancelled by :meth:`Deadlines._check` when late."""

    __slots__ = ("_cancelling", "_deadlines", "_task", "deadline", "expired")

    _task: asyncio.Task[object]
    _cancelling: int
    deadline: float
    expired: bool

    def __init__(self, deadlines: Deadlines) -> None:
        self._deadlines = deadlines
        self.expired = False

    def __enter__(self) -> None:
        if sys.version_info >= (3, 11):
            task = asyncio.current_task()
            if task is None:
                raise RuntimeError("a bounded store call must run inside an asyncio task")
            self._task = task
            self._cancelling = task.cancelling()
            loop = task.get_loop()
            self.deadline = loop.time() + self._deadlines.timeout
            self._deadlines._add(self, loop)
        else:
            raise RuntimeError("Deadlines needs Python 3.11+ (Task.uncancel)")

    def expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._deadlines._calls.discard(self)
        if self.expired and sys.version_info >= (3, 11):
            # As asyncio.timeout does: our cancellation becomes TimeoutError, unless the
            # task was cancelled by someone else too.
            if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc
