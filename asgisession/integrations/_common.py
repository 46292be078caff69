"""What every adapter shares: finding the session in a scope, and naming a missing framework."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ..session import Session

__all__ = ["missing_framework", "session_from_scope"]


def session_from_scope(scope: Mapping[str, Any]) -> Session:
    """The asgisession :class:`Session` in ``scope``; a clear error when there is none.

    :raises ConfigurationError: when no :class:`~asgisession.SessionMiddleware` wraps the
        app, or something else replaced ``scope["session"]``.
    """
    session = scope.get("session")
    if isinstance(session, Session):
        return session
    if session is None:
        raise ConfigurationError(
            "no session in this request's scope: wrap the whole ASGI app in "
            "asgisession.SessionMiddleware (outside the framework's own middleware)."
        )
    raise ConfigurationError(
        f"scope['session'] is a {type(session).__name__}, not asgisession's Session: another "
        "session middleware runs inside asgisession's; remove it."
    )


def missing_framework(module: str, package: str, error: ImportError) -> ImportError:
    """An ImportError that says which package a framework adapter needs."""
    message = (
        f"asgisession.integrations.{module} needs {package}, which is not installed "
        f"({error}): pip install {package}"
    )
    return ImportError(message, name=error.name)
