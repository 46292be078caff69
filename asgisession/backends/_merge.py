"""Saving a server session that a parallel request changed meanwhile: a key-level merge.

A request saves its session with a compare-and-set
(:class:`~asgisession.stores.base.SupportsVersioned`). When another request wrote the
record after this one loaded it, the save is refused; the record is read again and this
request's own changes are put on top of what is there now:

- a key this request set (or changed inside a list or dict) takes this request's value;
- a key this request deleted is deleted;
- a key this request left as it loaded it keeps what the other request wrote;
- ``clear()``, ``reset()`` and ``regenerate()`` do not merge: they delete the record (and
  ``regenerate()`` moves the data to a new one), as before.

What this request changed is found by comparing its data with the payload it loaded, key
by key, so deletes and changes inside nested values count as well as ``session[k] = v``.
This runs only when a save was refused, or is sure to be: a request whose save goes
through pays nothing.

Retries (measured with ``benchmarks/hot_session.py``): a save refused once, or that finds
another request of its process saving the same record, waits its turn (:class:`Turn`):
within a process, the saves of one record after the first take turns, each reading the
record and merging before it tries. Racing instead, N requests of one process refused
each other until each had saved, and the one that backed off fell behind every save that
started meanwhile (p99 of 16 writers of one session: ~200 ms, and "saved over it" at
the end of the tries). What remains is other processes' saves: a refused try waits a
random moment before the next, at most :data:`MAX_WAIT` (:func:`backoff`), and after
:data:`MAX_SAVES` tries the request saves over the record (``"this_request"``) or raises
(``"error"``).

When both requests changed the same key, ``on_conflict`` decides (even when they wrote
the same value: two requests that each add one to a counter both write ``n + 1``, and
taking either would lose the other's increment):
``"this_request"`` (the default) keeps this request's value, the rule without merging;
``"error"`` saves nothing and raises :class:`~asgisession.errors.SessionConflict`, which
the middleware hands to ``on_commit_error``.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from typing import Any, Literal

import anyio

from ..errors import ConfigurationError
from ..serializer import Serializer

__all__ = [
    "FIRST_WAIT",
    "MAX_SAVES",
    "MAX_WAIT",
    "WAIT_FOR_TURN",
    "ConflictRule",
    "Turn",
    "backoff",
    "check_rule",
    "merge",
    "most_waited",
]

#: How many times a save is tried before the request gives up (SessionConflict): each
#: refused try means another request saved the session in between. Tries after the
#: second wait a random moment first (:func:`backoff`), so contenders spread out.
MAX_SAVES = 16
#: The longest wait before the third try; it doubles with each try after, up to
#: :data:`MAX_WAIT`. Some loopback round trips of a store: enough to spread a few
#: contenders, too short to matter to the one who waits.
FIRST_WAIT = 0.0002
#: The longest wait before any one try. With :data:`FIRST_WAIT` doubling up to here, the
#: waits of all :data:`MAX_SAVES` tries together stay under 50 ms (:func:`most_waited`).
MAX_WAIT = 0.004
#: What decides when both requests changed one key (see the module docstring).
ConflictRule = Literal["this_request", "error"]
_MISSING: Any = object()

#: How long a save waits for its turn (:class:`Turn`) before it goes ahead without it.
WAIT_FOR_TURN = 0.1


class _Saving(threading.local):
    """The saves in progress in this thread (its event loop), by (store, key).

    Each holds the queue of those waiting their turn (``None`` until one waits: the usual
    save takes its turn at once, and allocates nothing). Per thread, as an event may be
    set only from its own loop.
    """

    def __init__(self) -> None:
        self.turns: dict[tuple[int, str], deque[anyio.Event] | None] = {}


_saving = _Saving()


class Turn:
    """``async with Turn(store, key) as waited``: one save of a record at a time per loop.

    Saves take their turns in the order they came. Requests of one process that race each
    other's compare-and-set only refuse each other (and the loser pays a read, a merge and
    another try, then maybe again); queued, each tries once, over what the one before it
    wrote. ``waited`` says whether another request held the turn. A request waits at most
    :data:`WAIT_FOR_TURN`, then saves without its turn (the compare-and-set still guards
    it): a store that hangs must not make the queue wait one store timeout per request.
    Other processes (and threads) are not queued: their saves are what the retries are for.
    """

    __slots__ = ("_held", "_slot", "_turns")

    def __init__(self, store: object, key: str) -> None:
        self._slot = (id(store), key)
        self._turns = _saving.turns
        self._held = False

    @staticmethod
    def free(store: object, key: str) -> bool:
        """Whether no request of this thread is saving ``key`` in ``store`` now."""
        return (id(store), key) not in _saving.turns

    async def __aenter__(self) -> bool:
        slot, _turns = self._slot, self._turns
        if slot not in _turns:
            _turns[slot] = None
            self._held = True
            return False
        queue = _turns[slot]
        if queue is None:
            queue = _turns[slot] = deque()
        event = anyio.Event()
        queue.append(event)
        try:
            with anyio.move_on_after(WAIT_FOR_TURN):
                await event.wait()
        except BaseException:
            if event.is_set():  # handed the turn, then cancelled: hand it on
                self._pass()
            else:
                queue.remove(event)
            raise
        if event.is_set():
            self._held = True
        else:  # waited long enough: save without the turn
            queue.remove(event)
        return True

    async def __aexit__(self, *exc_info: object) -> None:
        if self._held:
            self._held = False
            self._pass()

    def _pass(self) -> None:
        queue = self._turns[self._slot]
        if queue:
            queue.popleft().set()
        else:  # None, or emptied by waits that ran out
            del self._turns[self._slot]


def check_rule(on_conflict: str) -> ConflictRule:
    """``on_conflict`` if it names a rule; else ConfigurationError."""
    if on_conflict == "this_request":
        return "this_request"
    if on_conflict == "error":
        return "error"
    raise ConfigurationError(f"on_conflict={on_conflict!r}; use 'this_request' or 'error'.")


def merge(
    base: dict[str, Any],
    mine: dict[str, Any],
    theirs: dict[str, Any],
    serializer: Serializer,
) -> tuple[dict[str, Any], list[str]]:
    """``theirs`` with the changes from ``base`` to ``mine`` on top, and the keys in conflict.

    A key is in conflict when ``theirs`` changed it from ``base`` too (to any value);
    ``mine``'s value is in the result either way.
    """
    merged = dict(theirs)
    conflicts: list[str] = []
    for key in base.keys() | mine.keys():
        was, now = base.get(key, _MISSING), mine.get(key, _MISSING)
        if _same(was, now, serializer):
            continue
        if not _same(theirs.get(key, _MISSING), was, serializer):
            conflicts.append(key)
        if now is _MISSING:
            merged.pop(key, None)
        else:
            merged[key] = now
    return merged, conflicts


async def backoff(attempt: int) -> None:
    """Wait a random moment before try ``attempt + 2`` (jitter, not security).

    The first retry reads again at once: one other writer is the usual case. After that, up
    to :data:`FIRST_WAIT`, doubling, but never more than :data:`MAX_WAIT`: the contenders
    are the other processes' saves of this session (this process's own take turns, see
    :class:`Turn`), each a store round trip or two, and they do not pause while this one
    waits; a long wait only leaves this request behind every save that starts meanwhile.
    """
    if attempt:
        await anyio.sleep(random.uniform(0, _longest_wait(attempt)))  # noqa: S311


def _longest_wait(attempt: int) -> float:
    return min(MAX_WAIT, FIRST_WAIT * float(2 ** min(attempt - 1, 16)))


def most_waited() -> float:
    """The longest a save can spend in :func:`backoff`, over all its tries (seconds)."""
    return sum(_longest_wait(attempt) for attempt in range(1, MAX_SAVES))


def _same(a: Any, b: Any, serializer: Serializer) -> bool:
    """Whether two values serialise alike (``1 == True`` in Python, not in a session)."""
    if a is _MISSING or b is _MISSING:
        return a is b
    return bool(a == b) and serializer.dumps({"": a}) == serializer.dumps({"": b})
