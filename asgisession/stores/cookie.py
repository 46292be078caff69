"""Deprecated: the cookie backend is now :mod:`asgisession.backends.cookie`.

A backend turns a cookie into a session; :mod:`asgisession.stores` keeps only byte stores.
This module (the one exception to "nothing under stores/ imports a backend") goes away
in 0.3.
"""

from __future__ import annotations

from .._deprecated import moved
from ..backends.base import MAX_CANDIDATES, SealedCookie
from ..backends.cookie import CookieBackend

__all__ = ["MAX_CANDIDATES", "CookieBackend", "SealedCookie"]

moved("asgisession.stores.cookie", "asgisession.backends.cookie")
