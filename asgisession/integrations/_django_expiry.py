"""The engine's ``set_expiry``: Django's values, checked, enforced and shared with the core.

Django keeps a ``set_expiry()`` choice in the session data as ``_session_expiry``: ``0``
(the browser closes), seconds (counted from each save), or an ISO datetime (``timedelta``
and ``datetime`` become one). asgisession's ``Session.set_expiry`` keeps its choice as
``_expiry`` (:data:`asgisession.expiry.EXPIRY_KEY`): ``0`` or the unix second it ends.
A session crosses between the engine and asgisession's ``SessionMiddleware`` (same secret,
cookie name and store), so each save by the engine writes both (:func:`with_core_expiry`),
and each load maps the core's into Django's (:func:`with_django_expiry`) when the core
changed it since the engine wrote it: the ``_expiry`` the engine would have written for the
``_session_expiry`` it holds (seconds counted from the save that sealed the cookie) is not
the one there.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

from django.utils import timezone as django_timezone

from ..expiry import EXPIRY_KEY, expiry_of

__all__ = ["DJANGO_KEY", "checked", "expired", "with_core_expiry", "with_django_expiry"]

#: Where Django's SessionBase keeps a ``set_expiry()`` value in the session data.
DJANGO_KEY = "_session_expiry"


def checked(value: Any, age: int) -> Any:
    """``value`` for Django's ``set_expiry``, refused past ``age`` (``SESSION_COOKIE_AGE``).

    :raises ValueError: for a lifetime longer than ``age``.
    :raises TypeError: for a value Django's ``set_expiry`` does not take.
    """
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, datetime):
        seconds = (value - django_timezone.now()).total_seconds()
    elif isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"set_expiry({value!r}): give seconds, a timedelta or a datetime.")
    else:
        seconds = value
    if seconds > age:
        raise ValueError(
            f"set_expiry({value!r}) is longer than SESSION_COOKIE_AGE ({age} s), the longest "
            "a session may live; raise that instead."
        )
    return value


def expired(expiry: Any, issued_at: int | None, now: int) -> bool:
    """Whether Django's ``_session_expiry`` value has passed (checked on load)."""
    if isinstance(expiry, str):
        try:
            return datetime.fromisoformat(expiry).timestamp() <= now
        except ValueError:
            return True
    if isinstance(expiry, int) and expiry > 0 and issued_at is not None:
        return issued_at + expiry <= now
    return False


def core_expiry(expiry: Any, saved_at: int) -> int | None:
    """The core's ``_expiry`` for Django's ``_session_expiry`` value, saved at ``saved_at``."""
    if isinstance(expiry, bool) or expiry is None:
        return None
    if isinstance(expiry, int):
        return 0 if expiry <= 0 else saved_at + expiry
    if isinstance(expiry, str):
        try:
            return math.ceil(datetime.fromisoformat(expiry).timestamp())
        except ValueError:
            return None
    return None


def with_core_expiry(data: dict[str, Any], now: int) -> dict[str, Any]:
    """``data`` as the engine saves it at ``now``: the core's ``_expiry`` beside Django's."""
    end = core_expiry(data.get(DJANGO_KEY), now)
    written = {key: value for key, value in data.items() if key != EXPIRY_KEY}
    if end is not None:
        written[EXPIRY_KEY] = end
    return written


def with_django_expiry(data: dict[str, Any], issued_at: int | None) -> dict[str, Any]:
    """``data`` as loaded, with the core's choice in Django's key where the core changed it.

    ``issued_at``: when the cookie was sealed (the engine's save, if the engine wrote it).
    """
    choice = expiry_of(data)
    if issued_at is not None and core_expiry(data.get(DJANGO_KEY), issued_at) == choice:
        return data  # as the engine wrote it (or neither side chose)
    if DJANGO_KEY not in data and choice is None:
        return data
    mapped = {key: value for key, value in data.items() if key != DJANGO_KEY}
    if choice == 0:
        mapped[DJANGO_KEY] = 0
    elif choice is not None:
        mapped[DJANGO_KEY] = datetime.fromtimestamp(choice, timezone.utc).isoformat()
    return mapped
