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
This runs only when a save was refused: a request whose save goes through pays nothing.

When both requests changed the same key, ``on_conflict`` decides (even when they wrote
the same value: two requests that each add one to a counter both write ``n + 1``, and
taking either would lose the other's increment):
``"this_request"`` (the default) keeps this request's value, the rule without merging;
``"error"`` saves nothing and raises :class:`~asgisession.errors.SessionConflict`, which
the middleware hands to ``on_commit_error``.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import anyio

from ..errors import ConfigurationError
from ..serializer import Serializer

__all__ = ["MAX_SAVES", "ConflictRule", "backoff", "check_rule", "merge"]

#: How many times a save is tried before the request gives up (SessionConflict): each
#: refused try means another request saved the session in between. Tries after the first
#: wait a random moment (up to 1 ms, doubling), so contenders spread out.
MAX_SAVES = 10
#: What decides when both requests changed one key (see the module docstring).
ConflictRule = Literal["this_request", "error"]
_MISSING: Any = object()


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

    The first retry reads again at once: one other writer is the usual case.
    """
    if attempt:
        await anyio.sleep(random.uniform(0, 0.0005 * 2 ** min(attempt, 9)))  # noqa: S311


def _same(a: Any, b: Any, serializer: Serializer) -> bool:
    """Whether two values serialise alike (``1 == True`` in Python, not in a session)."""
    if a is _MISSING or b is _MISSING:
        return a is b
    return bool(a == b) and serializer.dumps({"": a}) == serializer.dumps({"": b})
