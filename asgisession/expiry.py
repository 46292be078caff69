"""The rules of a session's own expiry (``Session.set_expiry``), read in one place.

A session may end when the browser closes (its cookie gets no Max-Age) or at an end of its
own, up to the middleware's ``lifetime``; ``Session.set_expiry`` takes Django's values.
The choice is kept in the session's data, under the reserved key :data:`EXPIRY_KEY`
(``0``, or the unix second the session ends), not in a new field of the sealed frame. The
data is authenticated wherever it lives (sealed in the cookie, or on the server where the
client never sees it), so every backend and every cookie format carries the choice as it
is, Rails' included, and no wire format changes. The end is also written where every
expiry is, the sealed ``expires_at`` (Rails' ``exp``), so the cookie's own check enforces
it before any data is read; the backends check it against the data too
(``SealedCookie._check_chosen_end``), which refuses an older cookie of a server-side
session (same id, a later end). See ``docs/expiry.md``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import ExpiryTooLong

if TYPE_CHECKING:
    from .backends.base import SessionBackend

__all__ = ["EXPIRY_KEY", "ExpiryPolicy", "chosen_end", "expiry_of", "policy_of", "session_end"]

#: The session key of ``Session.set_expiry``'s choice: ``0`` (the cookie ends when the
#: browser closes) or the unix second the session ends. Absent: the middleware's default.
EXPIRY_KEY = "_expiry"


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    """The middleware's expiry settings a session needs for ``Session.set_expiry``.

    The middleware makes one, once; a session made without one knows no ``lifetime`` (so
    no bound on ``Session.set_expiry`` and no default end) and reads the system clock.

    .. versionadded:: 0.2
    """

    #: The longest a session may live, in seconds (the middleware's ``lifetime``).
    lifetime: int | None = None
    #: Whether the cookie ends with the browser unless the session chooses otherwise
    #: (the middleware's ``max_age=None``).
    browser_close: bool = False
    #: The current unix time (the middleware's ``clock``).
    clock: Callable[[], float] = time.time


def policy_of(backend: SessionBackend, clock: Callable[[], float]) -> ExpiryPolicy:
    """The policy of the sessions ``backend`` loads: its lifetime, its cookie's default end.

    One rule for the middleware and :class:`~asgisession.sessions.Sessions`, so a session
    opened outside ASGI bounds ``Session.set_expiry`` exactly as one in a request does.
    """
    lifetime = getattr(backend, "lifetime", None)
    return ExpiryPolicy(
        lifetime if isinstance(lifetime, int) else None, backend.cookie.max_age is None, clock
    )


def expiry_of(data: Mapping[str, Any]) -> int | None:
    """The session's own expiry in ``data``: ``None``, ``0``, or the unix second it ends.

    ``None`` is the default, ``0`` ends with the browser. A value no
    ``Session.set_expiry`` wrote (a foreign session's key of the same name) counts as
    the default.
    """
    value = data.get(EXPIRY_KEY)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def session_end(
    data: Mapping[str, Any], *, expires_at: int | None, restart: bool, now: int, lifetime: int
) -> int:
    """The unix second a session written at ``now`` ends on the server.

    The end ``Session.set_expiry`` chose, but never more than ``lifetime`` from now (a
    lifetime lowered since then holds from the next request that writes the session) nor,
    unless it starts over, later than the end it had; else ``lifetime`` from now for a new
    session (``expires_at`` is ``None``) or one that starts over (``restart``: regenerated,
    or its expiry changed); else the end it had (``expires_at``).
    """
    chosen = expiry_of(data) if EXPIRY_KEY in data else None  # usually not: no frame then
    if chosen:
        end = min(chosen, now + lifetime)
        return end if restart or expires_at is None else min(end, expires_at)
    if restart or expires_at is None:
        return now + lifetime
    return expires_at


def chosen_end(value: float | timedelta | datetime, policy: ExpiryPolicy) -> int:
    """What ``Session.set_expiry(value)`` stores: ``0``, or the unix second the session ends.

    :raises ExpiryTooLong: past ``policy.lifetime``.
    :raises ValueError: for a negative or non-finite number, a naive or past datetime.
    :raises TypeError: for any other type.
    """
    now = policy.clock()
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(
                f"set_expiry({value!r}): give an aware datetime (with a tzinfo), or seconds."
            )
        seconds = value.timestamp() - now
        if seconds <= 0:
            raise ValueError(
                f"set_expiry({value.isoformat()}) is in the past; to end the session now, "
                "call session.reset()."
            )
    elif isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(
            f"set_expiry() takes seconds, a timedelta, an aware datetime or None, not "
            f"{type(value).__name__}."
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"set_expiry({value!r}): give 0 or a positive number of seconds.")
    if seconds == 0:
        return 0
    lifetime = policy.lifetime
    if lifetime is not None and seconds > lifetime:
        raise ExpiryTooLong(
            f"set_expiry asks for {seconds:.0f} s; no session may live longer than the "
            f"middleware's lifetime={lifetime} s. Raise SessionMiddleware(lifetime=...) "
            "to allow it, or ask for less."
        )
    return int(now) + math.ceil(seconds)
