"""The matrix's Django column: the session engine with asgisession's CSRF (recipe 2).

Imported only by :func:`.matrix_frameworks.django_app`, in the served process of a Django
cell (it imports Django). The project is docs/frameworks.md's recipe 2, configured here in
one process instead of settings.py and asgi.py:

- ``request.session`` is the engine's (``SESSION_ENGINE``) over the cell's store, driven by
  asgisession's Django ``SessionMiddleware``; its cookie is named ``session``, the name the
  matrix's cases read, so asgisession's own ASGI session (which holds the CSRF secret and
  the flash) gets another name.
- asgisession's ``CSRFMiddleware`` around Django's ASGI handler checks every POST, with its
  default field and header names, which the matrix's cases send. Recipe 2 gives it Django's
  names for ``{% csrf_token %}`` templates and keeps Django's ``CsrfViewMiddleware`` (with
  ``CSRFBridge``) for requests that do not come through ASGI; a matrix cell is only ever
  served over ASGI and renders no template, so neither is here.
- Login and logout do to the session what ``django.contrib.auth`` does (a new key, or the
  session flushed, then its signal, on which recipe 2 renews the CSRF secret), without a
  user table.

The three configurations of a cell (``X-Matrix-Variant``) reach the engine through
:class:`VariantSessionMiddleware` (``anonymous``: ``ASGISESSION_ON_STORE_ERROR``) and
:func:`commit_error` (``nohook``: no ``ASGISESSION_ON_COMMIT_ERROR`` page).
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from django.conf import settings

from asgisession import csrf_token

from .matrix_apps import SESSION_ROUTES, digest, error_page_html, public, set_flash, show_flash

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="matrix-only, not used by the engine",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        USE_TZ=True,
        MIDDLEWARE=[f"{__name__}.VariantSessionMiddleware"],
        SESSION_ENGINE="asgisession.integrations.django",
        SESSION_COOKIE_NAME="session",
        ASGISESSION_SECRET_KEY_BASE=os.environ["SECRET_KEY_BASE"],
        ASGISESSION_STORE=os.environ.get("MATRIX_STORE") or None,
        ASGISESSION_ON_COMMIT_ERROR=f"{__name__}.commit_error",
    )

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

import asgisession.integrations.django_csrf  # noqa: F401 - recipe 2's signal receivers
from asgisession.integrations.django_middleware import SessionMiddleware

#: asgisession's own session cookie here (the CSRF secret, the flash): ``session`` is Django's.
ASGI_COOKIE = "asgisession"
VARIANT = "X-Matrix-Variant"


class VariantSessionMiddleware(SessionMiddleware):
    """The engine's middleware, with the store-error policy of the request's variant."""

    def store_error_policy(self, request: HttpRequest) -> Literal["unavailable", "anonymous"]:
        return "anonymous" if request.headers.get(VARIANT) == "anonymous" else "unavailable"


def commit_error(request: HttpRequest, error: Exception) -> HttpResponse | None:
    """``ASGISESSION_ON_COMMIT_ERROR``: the matrix's page, but none for ``nohook``."""
    if request.headers.get(VARIANT) == "nohook":
        return None
    return HttpResponse(error_page_html(error), status=400, content_type="text/html")


def session_view(handler: Any) -> Any:
    def view(request: HttpRequest) -> JsonResponse:
        return JsonResponse(handler(request.session))

    return view


def csrf(request: ASGIRequest) -> JsonResponse:
    return JsonResponse({"token": csrf_token(request.scope)})


def login(request: HttpRequest) -> JsonResponse:
    request.session.cycle_key()
    user_logged_in.send(sender=None, request=request, user=None)
    request.session["user"] = json.loads(request.body)["user"]
    return JsonResponse(public(request.session))


def logout(request: HttpRequest) -> JsonResponse:
    request.session.flush()
    user_logged_out.send(sender=None, request=request, user=None)
    return JsonResponse({})


def flash_(request: ASGIRequest) -> JsonResponse:
    post = request.method == "POST"
    return JsonResponse(set_flash(request.scope) if post else show_flash(request.scope))


def form(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"comment": request.POST["comment"]})


def upload(request: HttpRequest) -> JsonResponse:
    file = request.FILES["upload"]
    assert not isinstance(file, list)
    return JsonResponse(digest(file.read()))


urlpatterns = [path(route.lstrip("/"), session_view(h)) for route, h in SESSION_ROUTES.items()]
urlpatterns += [
    path("csrf", csrf),
    path("login", login),
    path("logout", logout),
    path("flash", flash_),
    path("form", form),
    path("upload", upload),
]
