# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""asgisession.testing with Django's test ``Client``, kept small.

Django's test client calls Django's handler directly, so no ASGI middleware runs: the
views here open the session with :class:`asgisession.Sessions` themselves (what a Django
session engine built on asgisession does), read the cookie from ``request.COOKIES`` and
set it with ``response.set_cookie``. The test then uses the helpers as a Django test would:
``client.cookies[name] = make_cookie_sync(...)`` and ``read_session_sync(sessions, response)``.
"""

from __future__ import annotations

import pytest
from django.http import HttpRequest, JsonResponse
from django.test import Client, override_settings
from django.urls import path

import examples.django_app  # noqa: F401 - configures Django's settings
from asgisession import Sessions
from asgisession.testing import make_cookie_sync, read_session_sync

pytestmark = pytest.mark.integration

SESSIONS: list[Sessions] = []


async def bump(request: HttpRequest) -> JsonResponse:
    sessions = SESSIONS[0]
    session = await sessions.load(cookie=request.COOKIES.get(sessions.cookie.name))
    session["n"] = session.get("n", 0) + 1
    response = JsonResponse(dict(session))
    set_cookie = await sessions.commit(session, secure=False)
    if set_cookie is not None:
        value = set_cookie.split(";", 1)[0].partition("=")[2]
        response.set_cookie(sessions.cookie.name, value, httponly=True, samesite="Lax")
    return response


urlpatterns = [path("bump", bump)]


@override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=[])
def test_django_test_client(secret: str) -> None:
    sessions = Sessions(secret_key_base=secret)
    SESSIONS[:] = [sessions]
    client = Client()
    client.cookies[sessions.cookie.name] = make_cookie_sync(sessions, {"n": 1})
    response = client.get("/bump")
    assert {"n": 2} == response.json()
    session = read_session_sync(sessions, response)
    assert session is not None
    assert {"n": 2} == dict(session)
    assert {"n": 3} == client.get("/bump").json()  # the client kept the new cookie
