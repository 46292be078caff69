"""Django: a session engine over asgisession's cookie format and stores, and the older adapter.

The way to use asgisession in Django is its session engine (docs/frameworks.md), driven by
Django's own ``SessionMiddleware``::

    SESSION_ENGINE = "asgisession.integrations.django"
    ASGISESSION_SECRET_KEY_BASE = os.environ["SECRET_KEY_BASE"]

:class:`SessionStore` lives in :mod:`asgisession.integrations.django_engine`, and
asgisession's CSRF for Django in :mod:`asgisession.integrations.django_csrf`.

The rest of this module is the adapter of 0.1, kept for projects that use it: under
Django's ASGI handler wrapped in :class:`asgisession.SessionMiddleware`, its
:class:`SessionMiddleware` (instead of Django's) makes ``request.session`` a
:class:`DjangoSession`, Django's ``SessionBase`` interface over asgisession's session. It
works only under ASGI (not ``runserver`` or the test ``Client``) and fails Django's
``admin.E410`` check: prefer the engine. Its ``set_expiry()`` is asgisession's
``Session.set_expiry`` (docs/expiry.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
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
from .django_engine import SessionStore

__all__ = ["DjangoSession", "SessionMiddleware", "SessionStore"]


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
        """The core :meth:`Session.set_expiry <asgisession.Session.set_expiry>`, in Django's name.

        It takes Django's values (``0``, seconds, a ``timedelta``, an aware ``datetime``,
        ``None``), bounded by ``SessionMiddleware``'s ``lifetime``; seconds end the session
        that long from now, however active (call it on every request for Django's
        "seconds of inactivity").

        .. versionchanged:: 0.2
           It did nothing before, then raised; it now sets the session's expiry.
        """
        self.asgi.set_expiry(value)
        self.accessed = True
        self.modified = True

    async def aset_expiry(self, value: Any) -> None:
        """Async :meth:`set_expiry`."""
        await self.asgi.load()
        self.set_expiry(value)

    def get_expiry_age(self, **kwargs: Any) -> int:
        """Seconds until the session ends: asgisession's ``Session.expiry_age``."""
        age = self.asgi.expiry_age
        return super().get_expiry_age(**kwargs) if age is None else age

    def get_expiry_date(self, **kwargs: Any) -> datetime:
        """When the session ends: asgisession's ``Session.expiry_date``."""
        date = self.asgi.expiry_date
        return super().get_expiry_date(**kwargs) if date is None else date

    def get_expire_at_browser_close(self) -> bool:
        """Whether the cookie ends with the browser: ``Session.expires_at_browser_close``."""
        return self.asgi.expires_at_browser_close

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
