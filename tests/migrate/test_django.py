"""Django's signed_cookies engine made the cookie (a real request through Django's
SessionMiddleware); asgisession reads it with Django's own signing and re-issues its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.conf import UserSettingsHolder, settings
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from asgisession import Rotation
from asgisession.errors import RejectReason
from asgisession.migrate import DjangoSignedCookies
from asgisession.stores.base import Store

from .helpers import Recorder, send_cookie, target

pytestmark = pytest.mark.anyio

OLD_SECRET = "the Django app's SECRET_KEY, long enough for Django's checks"
DATA = {"_auth_user_id": "7", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend"}
#: Repetitive enough that Django's engine compresses it (the value starts with ".").
BIG = {**DATA, "history": [f"/page/{i % 5}" for i in range(200)]}
_PENDING: dict[str, Any] = {}


def login(request: HttpRequest) -> HttpResponse:
    request.session.update(_PENDING)
    if "expiry" in request.GET:
        request.session.set_expiry(int(request.GET["expiry"]))
    return HttpResponse("ok")


urlpatterns = [path("login", login)]


@pytest.fixture(scope="module")
def django_settings() -> Iterator[None]:
    """Django's own SessionMiddleware on its signed_cookies engine, for this module.

    The settings are swapped as ``override_settings`` swaps them, without its signals: on
    the way out they would read the SECRET_KEY that other modules' settings leave empty.
    """
    if not settings.configured:
        settings.configure(USE_TZ=True)
    django.setup()
    saved = settings._wrapped
    ours = UserSettingsHolder(saved)
    ours.SECRET_KEY = OLD_SECRET
    ours.ROOT_URLCONF = __name__
    ours.ALLOWED_HOSTS = ["testserver"]
    ours.MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
    ours.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings._wrapped = ours
    try:
        yield
    finally:
        settings._wrapped = saved


def django_cookie(data: dict[str, Any], query: str = "") -> str:
    """The ``sessionid`` cookie Django sets after the view put ``data`` in the session."""
    _PENDING.clear()
    _PENDING.update(data)
    response = Client().get("/login" + query)
    assert 200 == response.status_code
    value: str = response.cookies["sessionid"].value
    return value


@pytest.fixture
def small(django_settings: None) -> str:
    return django_cookie(DATA)


@pytest.fixture
def compressed(django_settings: None) -> str:
    value = django_cookie(BIG)
    assert value.startswith(".")
    return value


def migrating(**options: Any) -> Rotation:
    return Rotation(write="encrypted", read=[DjangoSignedCookies(secret_key=OLD_SECRET, **options)])


async def test_a_django_session_stays_logged_in_and_comes_back_in_our_format(
    secret: str, store: Store | None, small: str
) -> None:
    recorder = Recorder()
    app = target(recorder, secret, store, migrating(), cookie_name="sessionid")
    reply = await send_cookie(app, "sessionid", small)
    again = target(recorder, secret, store, cookie_name="sessionid")
    await send_cookie(again, "sessionid", reply.value("sessionid"))
    assert [DATA, DATA] == recorder.seen


async def test_a_compressed_django_session_opens(
    secret: str, store: Store | None, compressed: str
) -> None:
    recorder = Recorder()
    app = target(recorder, secret, store, migrating(), cookie_name="sessionid")
    await send_cookie(app, "sessionid", compressed)
    assert [BIG] == recorder.seen


async def test_djangos_per_session_expiry_key_is_not_carried(
    secret: str, store: Store | None, django_settings: None
) -> None:
    """The engine ignores _session_expiry on load (Django #19201); so does the migration."""
    value = django_cookie(DATA, "?expiry=60")
    recorder = Recorder()
    app = target(recorder, secret, store, migrating(), cookie_name="sessionid")
    await send_cookie(app, "sessionid", value)
    assert [DATA] == recorder.seen


async def test_djangos_fallback_keys_open_cookies_of_an_older_secret(
    secret: str, store: Store | None, small: str
) -> None:
    recorder = Recorder()
    source = DjangoSignedCookies(secret_key="the newer Django secret", fallback_keys=[OLD_SECRET])
    app = target(recorder, secret, store, Rotation(write="encrypted", read=[source]),
                 cookie_name="sessionid")  # fmt: skip
    await send_cookie(app, "sessionid", small)
    assert [DATA] == recorder.seen


async def test_an_expired_django_cookie_is_an_empty_session(
    secret: str, store: Store | None, small: str
) -> None:
    for offset, expected in ((590, [DATA]), (601, [{}])):
        recorder = Recorder()
        app = target(recorder, secret, store, migrating(max_age=600), cookie_name="sessionid",
                     now=time.time() + offset)  # fmt: skip
        await send_cookie(app, "sessionid", small)
        assert expected == recorder.seen
    assert {RejectReason.EXPIRED: 1} == app.rejections


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda v: v[:-2] + ("xy" if v[-2:] != "xy" else "yx"), id="signature"),
        pytest.param(lambda v: "e30" + v[v.index(":") :], id="data"),
        pytest.param(lambda v: "." + v, id="compressed-flag"),
        pytest.param(lambda v: v.replace(":", "", 1), id="shape"),
    ],
)
async def test_a_tampered_django_cookie_is_an_empty_session(
    secret: str, store: Store | None, small: str, spoil: Any
) -> None:
    recorder = Recorder()
    app = target(recorder, secret, store, migrating(), cookie_name="sessionid")
    reply = await send_cookie(app, "sessionid", spoil(small))
    assert (200, [{}], {}) == (reply.status, recorder.seen, reply.set_cookies)


async def test_a_django_cookie_under_another_secret_is_an_empty_session(
    secret: str, store: Store | None, small: str
) -> None:
    recorder = Recorder()
    source = DjangoSignedCookies(secret_key="another Django app's secret")
    app = target(recorder, secret, store, Rotation(write="encrypted", read=[source]),
                 cookie_name="sessionid")  # fmt: skip
    reply = await send_cookie(app, "sessionid", small)
    assert (200, [{}], {}) == (reply.status, recorder.seen, reply.set_cookies)
