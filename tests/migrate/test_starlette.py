"""Starlette's SessionMiddleware made the cookie; asgisession reads it and re-issues its own."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgisession import Rotation
from asgisession.errors import RejectReason
from asgisession.migrate import StarletteCookies
from asgisession.stores.base import Store

from .helpers import Recorder, send_cookie, target

pytestmark = pytest.mark.anyio

OLD_SECRET = "the Starlette app's secret_key"
DATA = {"user_id": 42, "name": "Zoë", "roles": ["admin"], "cart": {"items": [1, 2]}}


async def starlette_cookie(data: dict[str, Any], secret: str = OLD_SECRET, **options: Any) -> str:
    """The session cookie a real Starlette app sets after putting ``data`` in its session."""

    async def login(request: Request) -> PlainTextResponse:
        request.session.update(data)
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/login", login)],
        middleware=[Middleware(StarletteSessionMiddleware, secret_key=secret, **options)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/login")
    name, _, rest = response.headers["set-cookie"].partition("=")
    assert "session" == name
    return rest.split(";", 1)[0]


def migrating(**options: Any) -> Rotation:
    return Rotation(write="encrypted", read=[StarletteCookies(secret_key=OLD_SECRET, **options)])


async def test_a_starlette_session_stays_logged_in_and_comes_back_in_our_format(
    secret: str, store: Store | None
) -> None:
    value = await starlette_cookie(DATA)
    recorder = Recorder()
    reply = await send_cookie(target(recorder, secret, store, migrating()), "session", value)
    assert 200 == reply.status
    assert [DATA] == recorder.seen
    ours = reply.value("session")
    assert value != ours
    # Ours: a middleware that knows nothing of Starlette opens it, and sends no cookie.
    again = await send_cookie(target(recorder, secret, store), "session", ours)
    assert DATA == recorder.seen[-1]
    assert {} == again.set_cookies


def _flip_signature(value: str) -> str:
    return value[:-3] + ("AAA" if value[-3:] != "AAA" else "BBB")


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_flip_signature, id="signature"),
        pytest.param(lambda v: "e30=" + v[v.index(".") :], id="data"),  # {} under its signature
        pytest.param(lambda v: v.replace(".", "", 1), id="shape"),
        pytest.param(lambda v: "not a cookie", id="junk"),
    ],
)
async def test_a_tampered_starlette_cookie_is_an_empty_session(
    secret: str, store: Store | None, spoil: Any
) -> None:
    value = await starlette_cookie(DATA)
    recorder = Recorder()
    app = target(recorder, secret, store, migrating())
    reply = await send_cookie(app, "session", spoil(value))
    assert (200, [{}], {}) == (reply.status, recorder.seen, reply.set_cookies)
    assert 1 == sum(app.rejections.values())


async def test_a_starlette_cookie_under_another_secret_is_an_empty_session(
    secret: str, store: Store | None
) -> None:
    value = await starlette_cookie(DATA, secret="some other app's secret")
    recorder = Recorder()
    reply = await send_cookie(target(recorder, secret, store, migrating()), "session", value)
    assert (200, [{}], {}) == (reply.status, recorder.seen, reply.set_cookies)


async def test_an_expired_starlette_cookie_is_an_empty_session(
    secret: str, store: Store | None
) -> None:
    """Starlette's max_age is honoured, on the middleware's clock."""
    value = await starlette_cookie(DATA, max_age=600)
    for offset, expected in ((590, [DATA]), (601, [{}])):
        recorder = Recorder()
        app = target(recorder, secret, store, migrating(max_age=600), now=time.time() + offset)
        await send_cookie(app, "session", value)
        assert expected == recorder.seen
    assert {RejectReason.EXPIRED: 1} == app.rejections


async def test_the_migrated_session_keeps_the_starlette_expiry(
    secret: str, store: Store | None
) -> None:
    """Re-issued, it ends when the Starlette cookie would have, not a full lifetime later."""
    value = await starlette_cookie(DATA, max_age=600)
    start = time.time()
    recorder = Recorder()
    app = target(recorder, secret, store, migrating(max_age=600))
    new = (await send_cookie(app, "session", value)).value("session")
    for offset, expected in ((590, DATA), (610, {})):
        await send_cookie(target(recorder, secret, store, now=start + offset), "session", new)
        assert expected == recorder.seen[-1]


async def test_a_write_on_the_migrating_request_is_kept(secret: str, store: Store | None) -> None:
    value = await starlette_cookie(DATA)
    recorder = Recorder(add={"visits": 1})
    reply = await send_cookie(target(recorder, secret, store, migrating()), "session", value)
    recorder.add = {}
    await send_cookie(target(recorder, secret, store), "session", reply.value("session"))
    assert {**DATA, "visits": 1} == recorder.seen[-1]
