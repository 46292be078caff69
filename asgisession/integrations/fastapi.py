"""FastAPI dependencies that hand a path operation its session and a CSRF token.

::

    from asgisession.integrations.fastapi import CSRFToken, SessionDep

    @app.get("/form")
    async def form(session: SessionDep, token: CSRFToken) -> dict[str, str]:
        return {"user": session.get("user", ""), "authenticity_token": token}

Both work in HTTP and WebSocket routes (they take Starlette's ``HTTPConnection``).
``get_session`` loads a server-side session first if the middleware deferred it
(``defer_load``), so the handler can use it synchronously.
"""

from __future__ import annotations

from typing import Annotated

try:
    from fastapi import Depends
    from starlette.requests import HTTPConnection
except ImportError as _missing:  # pragma: no cover - exercised without FastAPI installed
    from ._common import missing_framework

    raise missing_framework("fastapi", "fastapi", _missing) from _missing

from .._scope import session_from_scope
from ..csrf import csrf_token
from ..session import Session

__all__ = ["CSRFToken", "SessionDep", "get_csrf_token", "get_session"]


async def get_session(connection: HTTPConnection) -> Session:
    """The request's :class:`~asgisession.session.Session`, loaded.

    :raises ConfigurationError: when no :class:`~asgisession.SessionMiddleware` wraps the app.
    :raises StoreUnavailable: when a deferred server-side load fails (the middleware turns it
        into a 503).

    .. versionadded:: 0.1
    """
    session = session_from_scope(connection.scope)
    await session.load()
    return session


async def get_csrf_token(connection: HTTPConnection) -> str:
    """A masked CSRF token for this request's session (:func:`~asgisession.csrf_token`).

    The first token of a session creates its secret, which is a session write.

    .. versionadded:: 0.1
    """
    await session_from_scope(connection.scope).load()
    return csrf_token(connection.scope)


#: ``session: SessionDep`` in a path operation's parameters.
SessionDep = Annotated[Session, Depends(get_session)]
#: ``token: CSRFToken`` in a path operation's parameters.
CSRFToken = Annotated[str, Depends(get_csrf_token)]
