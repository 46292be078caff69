"""asgisession's CSRF protection in a Django project whose sessions use the engine.

The second recipe of docs/frameworks.md: asgisession's :class:`~asgisession.CSRFMiddleware`
(with Django's field and header names) checks requests that come through ASGI, and Django's
``CsrfViewMiddleware`` stays for those that do not (``runserver``, the test ``Client``).

- :class:`CSRFBridge` (a Django middleware) lets Django's CSRF check pass a request whose
  token proves asgisession's secret, checked here again, so Django never refuses what
  asgisession passed, and nothing passes unchecked when ``CSRFMiddleware`` is missing.
- :func:`csrf_context` (a template context processor) makes ``{% csrf_token %}`` render
  asgisession's token under ASGI, in Django's ``csrfmiddlewaretoken`` field; under WSGI it
  leaves Django's token in place.
- At login and logout (``django.contrib.auth``'s signals) asgisession's session gets a new
  identity, so tokens handed out before stop working, as Django's own rotate.

asgisession's session here is its own cookie (``SessionMiddleware``'s ``cookie_name``,
``"session"`` unless changed), apart from Django's session cookie, and holds the CSRF secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import SimpleLazyObject

from ..csrf import SAFE_METHODS
from ..csrf.tokens import SESSION_KEY, _decode_secret, csrf_token, token_matches
from ..session import Session

__all__ = ["DJANGO_FIELD", "DJANGO_HEADER", "CSRFBridge", "csrf_context"]

#: The form field Django's ``{% csrf_token %}`` posts: give it to ``CSRFMiddleware(field_name=)``.
DJANGO_FIELD = "csrfmiddlewaretoken"
#: The header Django's docs have scripts send: give it to ``CSRFMiddleware(header_name=)``.
DJANGO_HEADER = "X-CSRFToken"


def _asgi_session(request: HttpRequest) -> Session | None:
    session = getattr(request, "scope", {}).get("session")
    return session if isinstance(session, Session) else None


class CSRFBridge:
    """Django middleware: Django's CSRF check accepts what asgisession's accepted.

    Put it anywhere in ``MIDDLEWARE`` (it acts before any view runs).

    .. versionadded:: 0.2
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Mark the request as checked when its token proves asgisession's secret."""
        if request.method not in SAFE_METHODS and _proves_secret(request):
            # Django's own flag (what its test Client sets): CsrfViewMiddleware and
            # @csrf_protect then accept the request.
            request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        return self.get_response(request)


def _proves_secret(request: HttpRequest) -> bool:
    session = _asgi_session(request)
    if session is None:
        return False
    secret = _decode_secret(session.get(SESSION_KEY))
    if secret is None:
        return False
    token = request.META.get(settings.CSRF_HEADER_NAME)
    if not isinstance(token, str) or not token_matches(secret, token):
        token = request.POST.get(DJANGO_FIELD)
    return isinstance(token, str) and token_matches(secret, token)


def csrf_context(request: HttpRequest) -> Mapping[str, Any]:
    """Template context processor: ``csrf_token`` is asgisession's under ASGI.

    .. versionadded:: 0.2
    """
    scope = getattr(request, "scope", None)
    if scope is None or _asgi_session(request) is None:
        return {}
    return {"csrf_token": SimpleLazyObject(lambda: csrf_token(scope))}


def _new_identity(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    session = _asgi_session(request) if request is not None else None
    if session is not None:
        session.regenerate()


user_logged_in.connect(_new_identity, dispatch_uid="asgisession.django_csrf.login")
user_logged_out.connect(_new_identity, dispatch_uid="asgisession.django_csrf.logout")
