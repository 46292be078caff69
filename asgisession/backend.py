"""Deprecated: :class:`SessionBackend` is now in :mod:`asgisession.backends.base`."""

from __future__ import annotations

from ._deprecated import moved
from .backends.base import SessionBackend

__all__ = ["SessionBackend"]

moved("asgisession.backend", "asgisession.backends")
