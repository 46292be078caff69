"""SessionMiddleware's keyword shortcuts and deprecated keywords, resolved in one place.

- The session cookie is described by one :class:`~asgisession.cookies.CookieOptions`
  (``cookie=``); the flat keywords (``cookie_name``, ``max_age``, ``path``, ``domain``,
  ``secure``, ``httponly``, ``samesite``, ``partitioned``) are shortcuts for its fields.
  Giving both is refused: which one would win is not obvious. The flat keywords default to
  :data:`DEFAULT`, so "given" is told from "left alone" even when a value equals the default.
- ``store_timeout`` is deprecated: the store times its own calls (see
  :mod:`asgisession.stores.timed` for what the keyword still does until 0.3).
"""

from __future__ import annotations

import sys
import warnings
from types import FrameType
from typing import Any, Final

from .cookies import CookieOptions
from .errors import ConfigurationError

__all__ = ["DEFAULT", "OLD_STORE_TIMEOUT", "cookie_options", "store_timeout"]


class _Default:
    """A keyword left alone (its value comes from elsewhere)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<default>"


#: The default of the flat cookie keywords and of ``store_timeout``: "not given".
DEFAULT: Final[Any] = _Default()
#: What ``store_timeout`` was by default in 0.1; a store of your own keeps it until 0.3.
OLD_STORE_TIMEOUT = 2.0

#: The flat keywords and the CookieOptions field each one sets.
_FIELDS = {
    "cookie_name": "name", "max_age": "max_age", "path": "path", "domain": "domain",
    "secure": "secure", "httponly": "httponly", "samesite": "samesite",
    "partitioned": "partitioned",
}  # fmt: skip


def cookie_options(cookie: CookieOptions | None, **flat: Any) -> CookieOptions:
    """The session cookie's options: ``cookie`` as given, or built from the flat keywords.

    :raises ConfigurationError: when both are given, naming them, or ``cookie`` is not a
        CookieOptions; and for any invalid field (CookieOptions checks them).
    """
    given = {name: value for name, value in flat.items() if value is not DEFAULT}
    if cookie is not None:
        if given:
            names = ", ".join(f"{name}=" for name in given)
            raise ConfigurationError(
                f"cookie= and {names} both describe the session cookie; give the latter "
                f"inside CookieOptions(...) (as {', '.join(_FIELDS[n] + '=' for n in given)}) "
                "or leave cookie= out."
            )
        if not isinstance(cookie, CookieOptions):
            raise ConfigurationError(f"cookie={cookie!r}; give a CookieOptions(...).")
        return cookie
    return CookieOptions(**{_FIELDS[name]: value for name, value in given.items()})


def store_timeout(value: float | None) -> float | None:
    """The deprecated ``store_timeout``: warn when given, check it, apply the old default."""
    if value is DEFAULT:
        return OLD_STORE_TIMEOUT
    warnings.warn(
        "SessionMiddleware(store_timeout=...) is deprecated since asgisession 0.2 and goes "
        "away in 0.3: set timeout= on the store (RedisStore, MemcachedStore, SQLiteStore), "
        "which times its own calls; the bundled stores ignore store_timeout already.",
        DeprecationWarning,
        stacklevel=_caller_stacklevel(),
    )
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
    ):
        raise ConfigurationError(f"store_timeout={value!r}; give seconds > 0, or None.")
    return value


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside asgisession: the app's own call.

    Counted, not fixed, so that a wrapper around the constructor (such as
    :func:`asgisession._peer_names.peer_keywords`) does not hide a warning in our code.
    """
    level = 1
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "asgisession":
        level += 1
        frame = frame.f_back
    return level
