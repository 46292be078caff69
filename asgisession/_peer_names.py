"""Other session middlewares' keyword names, refused with ours named instead.

Someone moving from Starlette's ``SessionMiddleware`` (or starsessions, or Litestar)
writes its keywords by habit; Python's own ``TypeError`` ("unexpected keyword argument
'secret_key'") does not say what asgisession calls it. :func:`peer_keywords` checks the
keywords of a constructor before it runs, at no cost per request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["PEER_NAMES", "peer_keywords"]

P = ParamSpec("P")
R = TypeVar("R")

#: A peer's keyword, whose it is, and what to write instead.
PEER_NAMES: dict[str, tuple[str, str]] = {
    "secret_key": ("Starlette's", "secret_key_base="),
    "session_cookie": ("Starlette's", "cookie_name="),
    "same_site": ("Starlette's", "samesite="),
    "https_only": (
        "Starlette's",
        'secure= (True, or "auto", the default: Secure on https requests)',
    ),
    "cookie_same_site": ("starsessions'", "samesite="),
    "cookie_https_only": ("starsessions'", 'secure= (True, or "auto")'),
    "cookie_domain": ("starsessions'", "domain="),
    "cookie_path": ("starsessions'", "path="),
    "rolling": ("starsessions'", "idle_timeout= (seconds; the session's end moves with use)"),
    "secret": ("Litestar's", "secret_key_base="),
}


def peer_keywords(init: Callable[P, R]) -> Callable[P, R]:
    """Make ``init`` raise a TypeError naming our keyword when given a peer's."""

    @functools.wraps(init)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        if not kwargs.keys().isdisjoint(PEER_NAMES):
            name = next(name for name in kwargs if name in PEER_NAMES)
            whose, ours = PEER_NAMES[name]
            raise TypeError(
                f"SessionMiddleware got {name}= ({whose} name); asgisession calls it {ours}. "
                "docs/migrating.md maps every keyword."
            )
        return init(*args, **kwargs)

    return checked
