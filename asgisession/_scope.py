"""Finding what :class:`~asgisession.SessionMiddleware` put in a request's scope.

The helpers that need the session (CSRF tokens, the flash, the framework adapters) and the
cookie jar all fail the same way when the middleware is missing or wrapped inside the app
instead of around it: one :class:`~asgisession.errors.ConfigurationError`, one message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError
from .session import Session

__all__ = ["NO_MIDDLEWARE", "session_from_scope"]

#: What a helper says when no SessionMiddleware ran around the app for this request.
NO_MIDDLEWARE = (
    "no asgisession session in this request's scope: wrap the whole ASGI app in "
    "asgisession.SessionMiddleware, outside every middleware and helper that uses the "
    "session (CSRFMiddleware, the framework's own middleware): "
    "SessionMiddleware(CSRFMiddleware(app), secret_key_base=...). With add_middleware "
    "(Starlette, FastAPI) the middleware added last runs outermost: call "
    "app.add_middleware(CSRFMiddleware) first, then app.add_middleware(SessionMiddleware, ...)."
)


def session_from_scope(scope: Mapping[str, Any]) -> Session:
    """The asgisession :class:`~asgisession.session.Session` of this request's scope.

    :raises ConfigurationError: when no :class:`~asgisession.SessionMiddleware` wraps the
        app, or another session middleware replaced ``scope["session"]``.
    """
    session = scope.get("session")
    if isinstance(session, Session):
        return session
    if session is None:
        raise ConfigurationError(NO_MIDDLEWARE)
    raise ConfigurationError(
        f"scope['session'] is a {type(session).__name__}, not asgisession's Session: another "
        "session middleware runs inside asgisession's; remove it."
    )
