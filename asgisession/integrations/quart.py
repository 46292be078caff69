"""Quart: a ``SessionInterface`` that makes ``quart.session`` asgisession's session.

::

    app = Quart(__name__)
    install(app)  # app.session_interface = AsgiSessionInterface()
    app.asgi_app = SessionMiddleware(  # Quart's hook: test_client() and quart run see it
        CSRFMiddleware(app.asgi_app), secret_key_base=secret_key_base_from_env()
    )

    @app.post("/login")
    async def login() -> dict[str, str]:
        session.regenerate()          # quart.session, now asgisession's
        session["user"] = "alice"
        return dict(session)

Quart's own cookie session is replaced: no ``app.secret_key`` is needed for sessions, and
the cookie is written by :class:`~asgisession.SessionMiddleware` when the response starts
(or the WebSocket is accepted). Lifetime and cookie options are the middleware's, so
``session.permanent`` is always true and setting it changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

try:
    from quart import Quart
    from quart.sessions import SessionInterface, SessionMixin
    from quart.wrappers import BaseRequestWebsocket, Response
    from werkzeug.wrappers import Response as WerkzeugResponse
except ImportError as _missing:  # pragma: no cover - exercised without Quart installed
    from ._common import missing_framework

    raise missing_framework("quart", "quart", _missing) from _missing

from .._scope import session_from_scope
from ..session import Session

__all__ = ["AsgiSessionInterface", "QuartSession", "install"]


class QuartSession(SessionMixin):
    """``quart.session``: a Flask-style session mixin over asgisession's session.

    Mapping operations, :meth:`regenerate`, :meth:`reset` and :meth:`load` go to the
    :class:`~asgisession.session.Session` in :attr:`asgi`, which keeps tracking changes.

    .. versionadded:: 0.1
    """

    def __init__(self, session: Session) -> None:
        #: The request's asgisession session.
        self.asgi = session

    def __getitem__(self, key: str) -> Any:
        return self.asgi[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.asgi[key] = value

    def __delitem__(self, key: str) -> None:
        del self.asgi[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.asgi)

    def __len__(self) -> int:
        return len(self.asgi)

    def __contains__(self, key: object) -> bool:
        return key in self.asgi

    def clear(self) -> None:
        """Remove every key (:meth:`reset` also gives the session a new identity)."""
        self.asgi.clear()

    @property
    def modified(self) -> bool:
        """Whether the session changed; setting it true forces a write."""
        return self.asgi.modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self.asgi.modified = value

    @property
    def new(self) -> bool:  # type: ignore[override]  # a class attribute in Flask
        """Whether no valid session came in with the request."""
        return self.asgi.is_new

    @property
    def permanent(self) -> bool:
        """Always true: the cookie's lifetime is ``SessionMiddleware``'s ``max_age``."""
        return True

    @permanent.setter
    def permanent(self, value: bool) -> None:
        pass

    def regenerate(self) -> None:
        """New identity, data kept: call it at login (see ``Session.regenerate``)."""
        self.asgi.regenerate()

    def reset(self) -> None:
        """Drop all data and the identity: call it at logout (see ``Session.reset``)."""
        self.asgi.reset()

    async def load(self) -> None:
        """Load a server-side session the middleware deferred (``defer_load``)."""
        await self.asgi.load()

    def __repr__(self) -> str:
        return f"<QuartSession {self.asgi!r}>"


class AsgiSessionInterface(SessionInterface):
    """Set as ``app.session_interface``: ``quart.session`` becomes asgisession's.

    Opening costs nothing (the session loads on first use); saving is the middleware's.

    .. versionadded:: 0.1
    """

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> QuartSession:
        """Wrap the session :class:`~asgisession.SessionMiddleware` put in the scope.

        :raises ConfigurationError: when no ``SessionMiddleware`` wraps the Quart app.
        """
        return QuartSession(session_from_scope(request.scope))

    async def save_session(
        self,
        app: Quart,
        session: SessionMixin,
        response: Response | WerkzeugResponse | None,
    ) -> None:
        """Nothing to do: the middleware writes the cookie when the response starts."""


def install(app: Quart) -> None:
    """Make ``quart.session`` asgisession's in ``app`` (sets ``app.session_interface``).

    The same as ``app.session_interface = AsgiSessionInterface()``, which a type checker
    refuses because Quart declares that attribute as its own cookie interface.

    .. versionadded:: 0.1
    """
    app.session_interface = AsgiSessionInterface()  # type: ignore[assignment]
