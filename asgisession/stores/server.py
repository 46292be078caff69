"""Deprecated: the server-side backend is now :mod:`asgisession.backends.server`.

A backend turns a cookie into a session; :mod:`asgisession.stores` keeps only byte stores.
This module (the one exception to "nothing under stores/ imports a backend") goes away
in 0.3.
"""

from __future__ import annotations

from .._deprecated import moved
from ..backends.server import SESSION_ID_BYTES, ServerBackend

__all__ = ["SESSION_ID_BYTES", "ServerBackend"]

moved("asgisession.stores.server", "asgisession.backends.server")
