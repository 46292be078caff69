"""Scenarios run inside a ``django-admin startproject`` project (see test_django_project.py).

Copied into the project and run as ``python django_driver.py <scenario>``, with the
project's settings: Django's settings are per process, and the test process has its own.
The views below join the project's URLs through ``ROOT_URLCONF = "__main__"`` (the project's
configuration itself is left as docs/frameworks.md made it). Each scenario asserts and exits
0, or fails with a traceback the test shows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django.setup()

import httpx  # noqa: E402 - after django.setup()
from django.conf import settings  # noqa: E402
from django.contrib import admin, messages  # noqa: E402
from django.contrib.auth import alogin, authenticate, login, logout  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import path  # noqa: E402

from asgisession import SessionMiddleware  # noqa: E402
from asgisession._types import Receive, Scope, Send  # noqa: E402
from asgisession.errors import CookieOverflow, SerializationError  # noqa: E402
from asgisession.integrations import django_engine  # noqa: E402
from asgisession.stores import from_url  # noqa: E402

USER, PASSWORD = "admin", "a-long-test-password"


def public(request: HttpRequest) -> dict[str, Any]:
    return {k: v for k, v in request.session.items() if not k.startswith("_")}


def me(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": request.user.get_username(), "data": public(request)})


def do_login(request: HttpRequest) -> JsonResponse:
    user = authenticate(request, username=USER, password=PASSWORD)
    assert user is not None
    before = request.session.session_key
    login(request, user)
    request.session["cart"] = ["apple"]
    return JsonResponse({"changed_key": before != request.session.session_key})


async def do_alogin(request: HttpRequest) -> JsonResponse:
    user = await User.objects.aget(username=USER)
    await alogin(request, user, backend="django.contrib.auth.backends.ModelBackend")
    await request.session.aset("cart", ["pear"])
    return JsonResponse({"user": user.get_username()})


def do_logout(request: HttpRequest) -> JsonResponse:
    logout(request)
    return JsonResponse({})


def add_message(request: HttpRequest) -> HttpResponse:
    messages.success(request, "saved!")
    return HttpResponse("added")


def show_messages(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"messages": [str(m) for m in messages.get_messages(request)]})


def expiry(request: HttpRequest, value: str) -> HttpResponse:
    parsed: Any = {"none": None, "day": timedelta(days=1), "year": timedelta(days=365)}.get(
        value, value
    )
    if isinstance(parsed, str):
        parsed = int(parsed)
    try:
        request.session.set_expiry(parsed)
    except ValueError as exc:
        return HttpResponse(str(exc), status=400)
    request.session["marked"] = value
    return HttpResponse("set")


def expiry_info(request: HttpRequest) -> JsonResponse:
    session = request.session
    return JsonResponse(
        {"close": session.get_expire_at_browser_close(), "age": session.get_expiry_age()}
    )


def write(request: HttpRequest) -> JsonResponse:
    request.session["from"] = "django"
    return JsonResponse(public(request))


def interrupt(request: HttpRequest) -> HttpResponse:
    """Loads the session, has another request delete it, then writes to it."""
    assert "_auth_user_id" in request.session
    django_engine.SessionStore(request.session.session_key).delete()
    request.session["late"] = True
    return HttpResponse("written?")


def big(request: HttpRequest) -> HttpResponse:
    request.session["blob"] = "x" * 5000
    return HttpResponse("too big for a cookie")


def bad(request: HttpRequest) -> HttpResponse:
    request.session["when"] = object()
    return HttpResponse("not JSON")


def not_saved(request: HttpRequest, error: Exception) -> HttpResponse | None:
    """``ASGISESSION_ON_COMMIT_ERROR``: a page for an overflow, the default for the rest."""
    if isinstance(error, CookieOverflow):
        return HttpResponse(f"<p>not saved: {type(error).__name__}</p>", status=400)
    return None


urlpatterns = [
    path("admin/", admin.site.urls),
    path("me", me),
    path("login", do_login),
    path("alogin", do_alogin),
    path("logout", do_logout),
    path("message/add", add_message),
    path("message/show", show_messages),
    path("expiry/<str:value>", expiry),
    path("write", write),
    path("expiry-info", expiry_info),
    path("big", big),
    path("bad", bad),
    path("interrupt", interrupt),
]


def admin_login_token(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def clients() -> None:
    """The test Client and AsyncClient: the admin's form, auth, messages."""
    client = Client(enforce_csrf_checks=True)  # Django's CSRF in the loop, as in a browser
    token = admin_login_token(client.get("/admin/login/").content.decode())
    form = {"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": token}
    response = client.post("/admin/login/?next=/admin/", form)
    assert 302 == response.status_code, response.content
    assert "/admin/" == response.headers["Location"]
    page = client.get("/admin/")
    assert 200 == page.status_code
    assert b"Site administration" in page.content

    client = Client()
    assert {"user": "", "data": {}} == client.get("/me").json()
    client.get("/write")
    first = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert {"changed_key": True} == client.get("/login").json()  # login() cycles the key
    assert first != client.cookies[settings.SESSION_COOKIE_NAME].value
    expected = {"user": USER, "data": {"from": "django", "cart": ["apple"]}}
    assert expected == client.get("/me").json()
    client.get("/message/add")
    assert {"messages": ["saved!"]} == client.get("/message/show").json()
    assert {"messages": []} == client.get("/message/show").json()  # shown once
    client.get("/logout")
    assert {"user": "", "data": {}} == client.get("/me").json()

    client.force_login(User.objects.get(username=USER))  # the Client's own session save
    assert USER == client.get("/me").json()["user"]

    asyncio.run(async_clients())


async def async_clients() -> None:
    client = AsyncClient()
    assert {"user": "", "data": {}} == (await client.get("/me")).json()
    await client.get("/alogin")
    assert {"user": USER, "data": {"cart": ["pear"]}} == (await client.get("/me")).json()
    await client.get("/message/add")
    assert {"messages": ["saved!"]} == (await client.get("/message/show")).json()
    await client.get("/logout")
    assert {"user": "", "data": {}} == (await client.get("/me")).json()


class Clock:
    """Stands in for the engine's ``time`` module, so a test can move time forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


def set_cookie(response: HttpResponseBase) -> str:
    return str(response.cookies[settings.SESSION_COOKIE_NAME])


def expiry_cases() -> None:
    """set_expiry: the cookie's attributes, and the server's refusal once it has passed."""
    clock = Clock()
    django_engine.time = clock  # type: ignore[attr-defined,assignment]
    client = Client()
    cookie = set_cookie(client.get("/expiry/0"))
    assert "Max-Age" not in cookie
    assert "expires" not in cookie.lower()
    cookie = set_cookie(client.get("/expiry/60"))
    assert "Max-Age=60" in cookie, cookie
    cookie = set_cookie(client.get("/expiry/day"))
    assert "Max-Age=86399" in cookie or "Max-Age=86400" in cookie, cookie
    refused = client.get("/expiry/year")
    assert 400 == refused.status_code
    assert b"SESSION_COOKIE_AGE" in refused.content
    cookie = set_cookie(client.get("/expiry/none"))
    assert f"Max-Age={settings.SESSION_COOKIE_AGE}" in cookie, cookie

    # Enforced on the server: a minute later a 60-second session is gone, a default one not.
    short, default = Client(), Client()
    short.get("/expiry/60")
    default.get("/expiry/none")
    clock.offset = 61
    assert {} == short.get("/me").json()["data"]
    assert {"marked": "none"} == default.get("/me").json()["data"]
    # Past SESSION_COOKIE_AGE the browser-close session is refused too.
    ended = Client()
    ended.get("/expiry/0")
    clock.offset += settings.SESSION_COOKIE_AGE + 1
    assert {} == ended.get("/me").json()["data"]
    # A client cannot extend its session: the expiry is inside the seal.
    clock.offset = 0
    forged = Client()
    forged.get("/expiry/60")
    value = forged.cookies[settings.SESSION_COOKIE_NAME].value
    middle = len(value) // 2
    flipped = value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]
    forged.cookies[settings.SESSION_COOKIE_NAME] = flipped
    assert {} == forged.get("/me").json()["data"]


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A non-Django app: ``/read`` shows the session, ``/write`` writes to it."""
    session = scope["session"]
    await session.load()
    if scope["path"] == "/write":
        session["from"] = "asgi"
    body = repr(sorted(dict(session).items())).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def asgi_expiry_app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/info``: the core's view of the session's expiry; ``/choose/<0|120|none>``:
    ``Session.set_expiry``; ``/write``: a write."""
    session = scope["session"]
    await session.load()
    path_ = scope["path"]
    if path_.startswith("/choose/"):
        value = path_.removeprefix("/choose/")
        session.set_expiry(None if value == "none" else int(value))
    elif path_ == "/write":
        session["from"] = "asgi"
    body = json.dumps({"close": session.expires_at_browser_close, "age": session.expiry_age})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


def max_age(set_cookie: str | None) -> int | None:
    """The Max-Age of a Set-Cookie line; ``None`` without one (or without the line)."""
    match = re.search(r"max-age=(\d+)", set_cookie or "", re.IGNORECASE)
    return int(match.group(1)) if match else None


def near(expected: int, actual: Any) -> bool:
    return isinstance(actual, int) and expected - 2 <= actual <= expected


def assert_max_age(close: bool, seconds: int, set_cookie: str | None) -> None:
    """No Max-Age for a browser-close cookie; else about ``seconds``."""
    assert set_cookie, "no Set-Cookie"
    if close:
        assert max_age(set_cookie) is None, set_cookie
    else:
        assert near(seconds, max_age(set_cookie)), set_cookie


def expiry_crossing(store_url: str) -> None:
    """A set_expiry choice crosses between the engine and asgisession's SessionMiddleware."""
    store = None if store_url == "cookie" else store_url
    age = settings.SESSION_COOKIE_AGE
    name = settings.SESSION_COOKIE_NAME
    with override_settings(ASGISESSION_STORE=store):
        # The engine chooses; the core reads it and keeps it when it writes.
        for value, close, seconds in (("0", True, age), ("60", False, 60)):
            client = Client()
            client.get(f"/expiry/{value}")
            cookie = client.cookies[name].value
            info, written = asyncio.run(asgi_expiry(store, ["/info", "/write"], cookie))
            assert close == info[0]["close"], (value, info)
            assert near(seconds, info[0]["age"]), (value, info)
            if store is None:  # the cookie format writes a new cookie: its Max-Age says it
                assert_max_age(close, seconds, written[1])
        # The core chooses; the engine reads it, and Django's cookie says it.
        for value, close, seconds in (("0", True, age), ("120", False, 120), ("none", False, age)):
            client = Client()
            client.get("/expiry/60")  # a choice of the engine's, which the core's replaces
            cookie = client.cookies[name].value
            _, written = asyncio.run(asgi_expiry(store, [f"/choose/{value}"], cookie))
            client.cookies[name] = written[0] or cookie
            info = client.get("/expiry-info").json()
            assert close == info["close"], (value, info)
            assert near(seconds, info["age"]), (value, info)
            assert_max_age(close, seconds, str(client.get("/write").cookies[name]))


async def asgi_expiry(
    store_url: str | None, paths: list[str], value: str
) -> tuple[list[dict[str, Any]], list[str | None]]:
    """The JSON of each of ``paths`` in asgisession's SessionMiddleware, and the new cookie
    (or ``None``) and Set-Cookie line (or ``None``) of the last."""
    store = from_url(store_url) if store_url else None
    name = settings.SESSION_COOKIE_NAME
    app = SessionMiddleware(
        asgi_expiry_app,
        secret_key_base=settings.ASGISESSION_SECRET_KEY_BASE,
        cookie_name=name,
        store=store,
    )
    transport = httpx.ASGITransport(app=app)
    answers: list[dict[str, Any]] = []
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for path_ in paths:
                response = await c.get(path_, headers={"cookie": f"{name}={value}"})
                assert 200 == response.status_code, response.text
                answers.append(response.json())
            return answers, [response.cookies.get(name), response.headers.get("set-cookie")]
    finally:
        if store is not None:
            await store.aclose()


def interop(store_url: str) -> None:
    """The engine and asgisession's SessionMiddleware read each other's sessions."""
    store = None if store_url == "cookie" else store_url
    with override_settings(ASGISESSION_STORE=store):
        client = Client()
        client.get("/write")
        client.get("/login")
        name = settings.SESSION_COOKIE_NAME
        value = client.cookies[name].value
        read, written = asyncio.run(asgi_side(store, name, value))
        assert "('from', 'django')" in read, read
        assert "('_auth_user_id'," in read, read
        client.cookies[name] = written
        data = client.get("/me").json()
        assert {"user": USER, "data": {"from": "asgi", "cart": ["apple"]}} == data


async def asgi_side(store_url: str | None, name: str, value: str) -> tuple[str, str]:
    store = from_url(store_url) if store_url else None
    app = SessionMiddleware(
        asgi_app,
        secret_key_base=settings.ASGISESSION_SECRET_KEY_BASE,
        cookie_name=name,
        store=store,
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            cookie = {"cookie": f"{name}={value}"}
            read = (await c.get("/read", headers=cookie)).text
            written = (await c.get("/write", headers=cookie)).cookies.get(name)
            return read, written or value  # a server session keeps its id: no new cookie
    finally:
        if store is not None:
            await store.aclose()


def edges(store_url: str) -> None:
    """A key rotation re-seals; overflow raises; a session ended elsewhere stays ended."""
    old, new = settings.ASGISESSION_SECRET_KEY_BASE, secrets.token_hex(32)
    name = settings.SESSION_COOKIE_NAME
    client = Client()
    client.get("/write")
    before = client.cookies[name].value
    with override_settings(ASGISESSION_SECRET_KEY_BASE=[new, old]):
        response = client.get("/me")
        assert {"from": "django"} == response.json()["data"]
        assert name in response.cookies  # re-issued under the newest secret
    with override_settings(ASGISESSION_SECRET_KEY_BASE=new):
        assert {"from": "django"} == client.get("/me").json()["data"]
        client.cookies[name] = before
        assert {} == client.get("/me").json()["data"]  # the old seal needs the old secret

    overflow: CookieOverflow | None = None
    try:
        Client().get("/big")
    except CookieOverflow as exc:
        overflow = exc
    assert overflow is not None, "5,000 bytes fit in a cookie"
    assert "blob" in str(overflow)

    with override_settings(ASGISESSION_STORE=store_url):
        tab = Client()
        tab.get("/login")
        other_tab = Client()
        other_tab.cookies[name] = tab.cookies[name].value
        other_tab.get("/logout")  # deletes the record
        # The next request finds no record: a new, anonymous session, nothing of the old.
        assert {"from": "django"} == tab.get("/write").json()
        tab.get("/login")
        # The record goes while the request runs: Django's SessionInterrupted (a 400), as
        # with its database backend; the session is not written back.
        assert 400 == tab.get("/interrupt").status_code
        assert {"user": "", "data": {}} == tab.get("/me").json()


class Records(logging.Handler):
    """The records of the ``asgisession`` logger, to check what an outage logs."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        logging.getLogger("asgisession").addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def assert_unavailable(response: Any, what: str) -> None:
    """503, Retry-After, no session cookie, the plain text that says why."""
    assert 503 == response.status_code, (what, response.status_code, response.content[:300])
    assert "5" == response.headers["Retry-After"], what
    assert settings.SESSION_COOKIE_NAME not in response.cookies, what
    assert b"session store" in response.content, what


def outage(live: str, down: str) -> None:
    """The store fails (``down``: a stopped Redis, or a SQLite file that cannot be opened):
    503 with the test Client and AsyncClient, DEBUG on and off, at load and at save."""
    name = settings.SESSION_COOKIE_NAME
    records = Records()
    for debug in (True, False):
        with override_settings(DEBUG=debug, ASGISESSION_STORE=live):
            client = Client()
            client.get("/write")
            cookie = client.cookies[name].value
        with override_settings(DEBUG=debug, ASGISESSION_STORE=down):
            assert_unavailable(client.get("/me"), f"load, DEBUG={debug}")
            assert_unavailable(client.get("/write"), f"load to write, DEBUG={debug}")
            assert cookie == client.cookies[name].value
            assert_unavailable(Client().get("/write"), f"save, DEBUG={debug}")
            async_client = AsyncClient()
            async_client.cookies[name] = cookie
            assert_unavailable(asyncio.run(async_client.get("/me")), f"async, DEBUG={debug}")
            # Met in another middleware's own code (messages stored after the view): Django's
            # 500 first, which asgisession's middleware replaces (the Client would re-raise).
            storage = "django.contrib.messages.storage.session.SessionStorage"
            with override_settings(MESSAGE_STORAGE=storage):
                late = Client(raise_request_exception=False)
                late.cookies[name] = cookie
                assert_unavailable(late.get("/message/add"), f"in messages, DEBUG={debug}")
            with override_settings(ASGISESSION_ON_STORE_ERROR="anonymous"):
                anonymous = Client()  # a new Client: its handler reads the settings
                anonymous.cookies[name] = cookie
                served = anonymous.get("/write")
                assert 200 == served.status_code, served.content
                assert {"from": "django"} == served.json()
                assert name not in served.cookies  # neither rewritten nor deleted
        with override_settings(DEBUG=debug, ASGISESSION_STORE=live):
            assert {"from": "django"} == client.get("/me").json()["data"]  # kept throughout
    assert any("session store unavailable" in message for message in records.messages)


def commit_errors() -> None:
    """CookieOverflow and SerializationError at save: Django's 500 (the test Client re-raises
    it), or the page ``ASGISESSION_ON_COMMIT_ERROR`` returns; never a Set-Cookie."""
    name = settings.SESSION_COOKIE_NAME
    for route, error in (("/big", CookieOverflow), ("/bad", SerializationError)):
        for debug in (True, False):
            with override_settings(DEBUG=debug):
                client = Client(raise_request_exception=False)
                client.get("/write")
                cookie = client.cookies[name].value
                response = client.get(route)
                assert 500 == response.status_code, (route, debug)
                assert name not in response.cookies
                assert (b"Traceback" in response.content) == debug  # the debug page, or not
                assert {"from": "django"} == client.get("/me").json()["data"]
                assert cookie == client.cookies[name].value
                raised: Exception | None = None
                try:
                    Client().get(route)
                except error as exc:
                    raised = exc
                assert raised is not None, route
        with override_settings(ASGISESSION_ON_COMMIT_ERROR="__main__.not_saved"):
            client = Client()
            client.get("/write")
            if error is CookieOverflow:
                response = client.get(route)
                assert 400 == response.status_code
                assert b"<p>not saved: CookieOverflow</p>" == response.content
                assert name not in response.cookies
            else:  # the hook returned None: the default, raised into Django
                raised = None
                try:
                    client.get(route)
                except SerializationError as exc:
                    raised = exc
                assert raised is not None
            assert {"from": "django"} == client.get("/me").json()["data"]


def revoke(store_url: str) -> None:
    """Log out everywhere: every session of the user ends, listed in the core's index."""
    from asgisession import user_sessions as core_user_sessions
    from asgisession.errors import ConfigurationError
    from asgisession.integrations.django_users import revoke_user, user_sessions

    async def listed_by_the_core(user: object) -> int:
        store = from_url(store_url)
        try:
            return len(await core_user_sessions(store, user))
        finally:
            await store.aclose()

    pk = User.objects.get(username=USER).pk
    with override_settings(ASGISESSION_STORE=store_url, ASGISESSION_USER_KEY="_auth_user_id"):
        phone, laptop, gone = Client(), Client(), Client()
        for client in (phone, laptop, gone):
            client.get("/login")  # auth.login: cycle_key, then the user's key in the session
        gone.get("/logout")
        assert 2 == len(user_sessions(pk))
        assert 2 == asyncio.run(listed_by_the_core(pk))  # one index, the core's
        assert USER == phone.get("/me").json()["user"]
        assert 2 == revoke_user(pk)
        for client in (phone, laptop):
            assert {"user": "", "data": {}} == client.get("/me").json()
        assert [] == user_sessions(pk)
        phone.get("/login")  # logged in again after: a new session, listed, not revoked
        assert USER == phone.get("/me").json()["user"]
        assert 1 == len(user_sessions(pk))
    with override_settings(ASGISESSION_STORE=None, ASGISESSION_USER_KEY="_auth_user_id"):
        refused: Exception | None = None
        try:
            Client().get("/me")
        except ConfigurationError as exc:
            refused = exc
        assert refused is not None
        assert "ASGISESSION_STORE" in str(refused)


def main() -> None:
    setup_test_environment()
    scenarios: dict[str, Callable[[], None]] = {
        "clients": clients,
        "expiry": expiry_cases,
        "interop": lambda: interop(sys.argv[2]),
        "edges": lambda: edges(sys.argv[2]),
        "outage": lambda: outage(sys.argv[2], sys.argv[3]),
        "commit_errors": commit_errors,
        "expiry_crossing": lambda: expiry_crossing(sys.argv[2]),
        "revoke": lambda: revoke(sys.argv[2]),
    }
    with override_settings(ROOT_URLCONF="__main__"):
        scenarios[sys.argv[1]]()
    print("ok", sys.argv[1])


if __name__ == "__main__":
    main()
