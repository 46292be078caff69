"""Django (through its ASGI handler): ``request.session`` becomes asgisession's session.

In ``settings.py``, put this middleware where Django's own session middleware was::

    MIDDLEWARE = [
        "asgisession.integrations.django.SessionMiddleware",  # not django.contrib.sessions'
        ...
    ]

and in ``asgi.py`` wrap Django's handler::

    application = SessionMiddleware(get_asgi_application(), secret_key_base=...)

``request.session`` is then a :class:`DjangoSession`: Django's ``SessionBase`` interface
(``get``, ``pop``, ``setdefault``, ``flush()``, ``cycle_key()``, the async ``a...``
methods) over asgisession's :class:`~asgisession.session.Session`, so
``django.contrib.auth.login`` (which calls ``cycle_key()``) regenerates it and ``logout``
(``flush()``) resets it. Storage, expiry and the cookie belong to the ASGI middleware:
``save()`` and friends do nothing, and ``session_key`` is always ``None``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

try:
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction
    from django.contrib.sessions.backends.base import SessionBase
except ImportError as _missing:  # pragma: no cover - exercised without Django installed
    from ._common import missing_framework

    raise missing_framework("django", "django", _missing) from _missing

from .._scope import session_from_scope
from ..errors import ConfigurationError
from ..session import Session

__all__ = ["DjangoSession", "SessionMiddleware"]


class DjangoSession(SessionBase):
    """Django's ``SessionBase`` over asgisession's session; what ``request.session`` is.

    .. versionadded:: 0.1
    """

    #: Django's flags, kept for code that reads them; asgisession tracks changes itself.
    accessed: bool
    modified: bool

    def __init__(self, session: Session) -> None:
        super().__init__(session_key=None)
        #: The request's asgisession session.
        self.asgi = session
        # SessionBase keeps its loaded data here; every read and write then goes to `session`.
        self._session_cache = session

    def clear(self) -> None:
        """Remove every key, keeping the identity (``flush()`` also replaces it)."""
        self.asgi.clear()
        self.accessed = True
        self.modified = True

    def is_empty(self) -> bool:
        """Whether the session holds no data."""
        return not self.asgi

    def flush(self) -> None:
        """Drop all data and the identity (``django.contrib.auth.logout`` calls it)."""
        self.asgi.reset()
        self.accessed = True
        self.modified = True

    async def aflush(self) -> None:
        """Async :meth:`flush`."""
        self.flush()

    def cycle_key(self) -> None:
        """New identity, data kept (``django.contrib.auth.login`` calls it)."""
        self.asgi.regenerate()
        self.accessed = True
        self.modified = True

    async def acycle_key(self) -> None:
        """Async :meth:`cycle_key`."""
        self.cycle_key()

    def set_expiry(self, value: Any) -> None:
        """Nothing to do: the lifetime is ``SessionMiddleware``'s (``lifetime``, ``max_age``)."""

    async def aset_expiry(self, value: Any) -> None:
        """Nothing to do: the lifetime is ``SessionMiddleware``'s (``lifetime``, ``max_age``)."""

    # Storage is SessionMiddleware's: the methods a Django backend implements do nothing.

    def exists(self, session_key: str) -> bool:
        """Always false: there are no Django-side session keys."""
        return False

    async def aexists(self, session_key: str) -> bool:
        """Always false: there are no Django-side session keys."""
        return False

    def create(self) -> None:
        """Nothing to do: the middleware creates sessions."""

    async def acreate(self) -> None:
        """Nothing to do: the middleware creates sessions."""

    def save(self, must_create: bool = False) -> None:
        """Nothing to do: the middleware writes the cookie when the response starts."""

    async def asave(self, must_create: bool = False) -> None:
        """Nothing to do: the middleware writes the cookie when the response starts."""

    def delete(self, session_key: str | None = None) -> None:
        """Nothing to do: use :meth:`flush` to end a session."""

    async def adelete(self, session_key: str | None = None) -> None:
        """Nothing to do: use :meth:`aflush` to end a session."""

    def load(self) -> dict[str, Any]:
        """The session's data, as a dict copy."""
        return dict(self.asgi)

    async def aload(self) -> dict[str, Any]:
        """The session's data, as a dict copy."""
        await self.asgi.load()
        return dict(self.asgi)


class SessionMiddleware:
    """Django middleware (sync or async) that sets ``request.session`` to a :class:`DjangoSession`.

    It replaces ``django.contrib.sessions.middleware.SessionMiddleware``; the cookie is
    written by :class:`asgisession.SessionMiddleware` around Django's ASGI handler.

    .. versionadded:: 0.1
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        """Attach the session, then hand the request on."""
        request.session = DjangoSession(_session_of(request))
        if self._is_async:
            return self._acall(request)
        return self.get_response(request)

    async def _acall(self, request: Any) -> Any:
        response: Awaitable[Any] = self.get_response(request)
        return await response


def _session_of(request: Any) -> Session:
    scope = getattr(request, "scope", None)
    if scope is None:
        raise ConfigurationError(
            "asgisession.integrations.django needs Django's ASGI handler "
            "(get_asgi_application()) wrapped in asgisession.SessionMiddleware; this request "
            "came through WSGI."
        )
    return session_from_scope(scope)
