"""Django's ``SessionMiddleware`` for the engine: a store outage answers 503, not 500.

It takes the place of ``django.contrib.sessions.middleware.SessionMiddleware`` in
``MIDDLEWARE`` (a subclass, so Django's checks such as ``admin.E410`` still find it)::

    MIDDLEWARE[MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware")] = (
        "asgisession.integrations.django_middleware.SessionMiddleware"
    )

Why a subclass of Django's, and not a middleware of its own placed around it: Django wraps
every middleware in ``convert_exception_to_response``, so an exception never leaves the
middleware it was raised in; an outer middleware sees only the 500 page Django made of it,
after Django logged it as an error and signalled it (the test ``Client`` then re-raises
it). The two places a session's store call fails are both here:

- while the view (or its template) reads or writes the session: :meth:`process_exception`,
  which Django calls before it turns the exception into a 500, answers 503;
- while ``process_response`` saves the session: caught around Django's own.

A failure met elsewhere (another middleware's own code, such as ``messages`` storing after
the view) becomes Django's 500 first; :meth:`process_response` then replaces that 5xx, as
asgisession's ASGI middleware does.

The 503 is plain text with ``Retry-After`` (``ASGISESSION_RETRY_AFTER``, 5 s) and no
``Set-Cookie``: the user keeps the cookie they have. Two more settings:

- ``ASGISESSION_ON_STORE_ERROR = "anonymous"``: a failed load serves an empty session
  instead, which is never saved (and the cookie is neither rewritten nor deleted).
- ``ASGISESSION_ON_COMMIT_ERROR``: a view (dotted path or callable) called as
  ``view(request, error)`` when the session cannot be saved (:class:`~asgisession.CookieOverflow`,
  :class:`~asgisession.SerializationError`, :class:`~asgisession.StoreUnavailable`); the
  response it returns is sent instead of the app's, or ``None`` for the default: a failed
  save answers 503, the other errors are raised into Django (its 500 page).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.utils.module_loading import import_string

from ..errors import ConfigurationError, CookieOverflow, SerializationError, StoreUnavailable
from .django_engine import SessionStore

__all__ = ["CommitErrorView", "SessionMiddleware"]

logger: logging.Logger = logging.getLogger("asgisession")

#: What ``ASGISESSION_ON_COMMIT_ERROR`` names: ``(request, error) -> response or None``.
CommitErrorView = Callable[[HttpRequest, Exception], "HttpResponse | None"]

_UNAVAILABLE = "Service Unavailable: the session store cannot be reached. Try again shortly.\n"


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's ``SessionMiddleware``, answering a session store that fails with 503.

    .. versionadded:: 0.2
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        super().__init__(get_response)
        policy = getattr(settings, "ASGISESSION_ON_STORE_ERROR", "unavailable")
        if policy not in ("unavailable", "anonymous"):
            raise ConfigurationError(
                f"ASGISESSION_ON_STORE_ERROR = {policy!r}; use 'unavailable' or 'anonymous'."
            )
        self.on_store_error: Literal["unavailable", "anonymous"] = (
            "anonymous" if policy == "anonymous" else "unavailable"
        )
        self.retry_after: int = int(getattr(settings, "ASGISESSION_RETRY_AFTER", 5))
        hook = getattr(settings, "ASGISESSION_ON_COMMIT_ERROR", None)
        self.on_commit_error: CommitErrorView | None = (
            import_string(hook) if isinstance(hook, str) else hook
        )

    def process_request(self, request: HttpRequest) -> None:
        """Django's, then the store-error policy for this request's session."""
        super().process_request(request)
        if isinstance(request.session, SessionStore):
            request.session.on_store_error = self.store_error_policy(request)

    def store_error_policy(self, request: HttpRequest) -> Literal["unavailable", "anonymous"]:
        """What a failed load does for ``request``: ``ASGISESSION_ON_STORE_ERROR``."""
        return self.on_store_error

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """The view met the session's store failure: 503 instead of Django's 500."""
        if isinstance(exception, StoreUnavailable) and _failed(request):
            logger.warning("session store unavailable: %s", exception)
            return self.unavailable()
        return None

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        """Django's save, or none for a failed session; a failed save answered as documented."""
        session = getattr(request, "session", None)
        if isinstance(session, SessionStore) and session.store_error is not None:
            if session.read_only or response.status_code < 500:
                # Nothing of a session that did not load is saved, nor its cookie deleted.
                patch_vary_headers(response, ("Cookie",))
                return response
            return self._replaced(response)
        try:
            return super().process_response(request, response)
        except StoreUnavailable as exc:
            return self._commit_failed(request, exc) or self.unavailable()
        except (CookieOverflow, SerializationError) as exc:
            answer = self._commit_failed(request, exc)
            if answer is None:
                raise
            return answer

    def unavailable(self) -> HttpResponse:
        """The 503 a store outage gets: plain text, ``Retry-After``, no cookie, not cached."""
        response = HttpResponse(_UNAVAILABLE, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(self.retry_after)
        response["Cache-Control"] = "no-store"
        return response

    def _replaced(self, response: HttpResponse) -> HttpResponse:
        """A 5xx the app sent after meeting the failure: its own 503 kept, the rest replaced."""
        if response.status_code == 503:
            if not response.has_header("Retry-After"):
                response["Retry-After"] = str(self.retry_after)
            return response
        logger.warning("session store unavailable: the app's %d sent as 503", response.status_code)
        return self.unavailable()

    def _commit_failed(self, request: HttpRequest, error: Exception) -> HttpResponse | None:
        unavailable = isinstance(error, StoreUnavailable)
        answer = self.on_commit_error(request, error) if self.on_commit_error else None
        if answer is not None:
            log = logger.warning if unavailable else logger.error
            log("session not saved; ASGISESSION_ON_COMMIT_ERROR answered: %s", error)
        elif unavailable:
            logger.warning("session store unavailable: %s", error)
        return answer


def _failed(request: HttpRequest) -> bool:
    session = getattr(request, "session", None)
    return isinstance(session, SessionStore) and session.store_error is not None
