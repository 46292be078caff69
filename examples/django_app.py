"""asgisession in Django through the 0.1 adapter: ``request.session`` is asgisession's session.

    SECRET_KEY_BASE=... python -m uvicorn --factory examples.django_app:create_app

Routes as in examples/raw_asgi_app.py. The settings live here to keep the example in one
file; in a project, ``MIDDLEWARE`` goes in settings.py and ``create_app`` in asgi.py.

This adapter serves ASGI requests only. For a Django project, prefer the session engine
(``SESSION_ENGINE = "asgisession.integrations.django"``): docs/frameworks.md shows its two
recipes, tested on a ``django-admin startproject`` project.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import path

from asgisession import CSRFMiddleware, SessionMiddleware, csrf_token, secret_key_base_from_env

if not settings.configured:
    settings.configure(
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        MIDDLEWARE=["asgisession.integrations.django.SessionMiddleware"],
        USE_TZ=True,
    )


def public(request: HttpRequest) -> JsonResponse:
    data = {k: v for k, v in request.session.items() if not k.startswith("_")}
    return JsonResponse(data)


def csrf(request: ASGIRequest) -> JsonResponse:
    return JsonResponse({"token": csrf_token(request.scope)})


def counter(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    request.session["count"] = request.session.get("count", 0) + 1
    return JsonResponse({"count": request.session["count"]})


def login(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    user = json.loads(request.body)["user"]
    request.session.cycle_key()  # what django.contrib.auth.login calls: a new identity
    request.session["user"] = user
    return public(request)


def logout(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    request.session.flush()  # what django.contrib.auth.logout calls
    return JsonResponse({})


def me(request: HttpRequest) -> JsonResponse:
    return public(request)


urlpatterns = [
    path("csrf", csrf),
    path("counter", counter),
    path("login", login),
    path("logout", logout),
    path("me", me),
]


def create_app(secret_key_base: str | None = None) -> SessionMiddleware:
    secret = secret_key_base or secret_key_base_from_env()
    return SessionMiddleware(CSRFMiddleware(get_asgi_application()), secret_key_base=secret)
