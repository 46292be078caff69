"""Litestar: ``request.session`` is asgisession's session; this module adds the rest.

Litestar's ``request.session`` returns ``scope["session"]`` as it is, so reading and writing
``request.session[...]`` needs no adapter. Two things do:

- ``request.set_session(data)`` and ``request.clear_session()`` *replace*
  ``scope["session"]`` (with a dict, or with Litestar's ``Empty``). :class:`SessionSync`
  carries such a replacement into asgisession's session just before the response starts:
  a mapping becomes the session's new contents, ``Empty`` or ``None`` a
  :meth:`~asgisession.session.Session.reset` (logout).
- Litestar types ``request.session`` as a ``dict``; :func:`provide_session` hands a handler
  the typed :class:`~asgisession.session.Session` (for ``regenerate()``), as a dependency.

::

    litestar_app = Litestar(
        route_handlers=[...], dependencies={"session": Provide(provide_session)}
    )
    app = SessionMiddleware(SessionSync(litestar_app), secret_key_base=secret_key_base_from_env())
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

try:
    from litestar.connection import ASGIConnection
    from litestar.types import Empty
except ImportError as _missing:  # pragma: no cover - exercised without Litestar installed
    from ._common import missing_framework

    raise missing_framework("litestar", "litestar", _missing) from _missing

from .._scope import session_from_scope
from .._types import AnyASGIApp, ASGIApp, Message, Receive, Scope, Send
from ..session import Session

__all__ = ["SessionSync", "provide_session", "session_of"]

_START = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})


def session_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Session:
    """The connection's asgisession :class:`~asgisession.session.Session`, typed as such.

    :raises ConfigurationError: when no :class:`~asgisession.SessionMiddleware` wraps the app.

    .. versionadded:: 0.1
    """
    return session_from_scope(connection.scope)


async def provide_session(request: ASGIConnection[Any, Any, Any, Any]) -> Session:
    """A Litestar dependency (``Provide(provide_session)``): the session, loaded.

    A server-side session the middleware deferred (``defer_load``) is loaded here.

    .. versionadded:: 0.1
    """
    session = session_from_scope(request.scope)
    await session.load()
    return session


class SessionSync:
    """Make ``set_session()`` and ``clear_session()`` change asgisession's session.

    Put it between :class:`~asgisession.SessionMiddleware` and the Litestar app: it
    remembers the session the middleware put in the scope and, when the app replaced it,
    applies the replacement before the response starts, which is when the middleware writes
    the cookie.

    .. versionadded:: 0.1
    """

    def __init__(self, app: AnyASGIApp) -> None:
        self.app: ASGIApp = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        original = scope.get("session")
        if not isinstance(original, Session):
            await self.app(scope, receive, send)
            return
        session: Session = original

        async def send_wrapper(message: Message) -> None:
            if message["type"] in _START and scope.get("session") is not session:
                _apply(session, scope.get("session"))
                scope["session"] = session
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _apply(session: Session, replacement: object) -> None:
    if isinstance(replacement, Mapping):
        data = dict(replacement)
    elif dataclasses.is_dataclass(replacement) and not isinstance(replacement, type):
        data = dataclasses.asdict(replacement)
    elif replacement is None or replacement is Empty:
        session.reset()  # clear_session()
        return
    else:
        raise TypeError(
            f"set_session() got a {type(replacement).__name__}; asgisession stores a dict "
            "(or a dataclass) of JSON-compatible values."
        )
    session.clear()
    session.update(data)
