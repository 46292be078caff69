"""A real Quart app made the cookie; asgisession reads it and re-issues its own."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import quart

from asgisession import Rotation
from asgisession.migrate import FlaskCookies
from asgisession.stores.base import Store
from asgisession.tagged import TaggedJSON

from .helpers import Recorder, send_cookie, target

pytestmark = pytest.mark.anyio

OLD_SECRET = "the Quart app's SECRET_KEY"
DATA = {
    "user": "ada",
    "seen": (1, 2),
    "at": datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc),
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: Quart's test client runs on asyncio."""
    return "asyncio"


async def quart_cookie(data: dict[str, Any]) -> str:
    """The session cookie a real Quart app sets after putting ``data`` in its session."""
    app = quart.Quart(__name__)
    app.secret_key = OLD_SECRET

    @app.get("/login")
    async def login() -> str:
        quart.session.update(data)
        return "ok"

    response = await app.test_client().get("/login")
    (header,) = response.headers.getlist("Set-Cookie")
    name, _, rest = header.partition("=")
    assert "session" == name
    return rest.split(";", 1)[0]


async def test_a_quart_session_stays_logged_in_and_comes_back_in_our_format(
    secret: str, store: Store | None
) -> None:
    value = await quart_cookie(DATA)
    recorder = Recorder()
    tagged = TaggedJSON()
    source = FlaskCookies(secret_key=OLD_SECRET, serializer=tagged)
    app = target(recorder, secret, store, Rotation(write="encrypted", read=[source]),
                 serializer=tagged)  # fmt: skip
    reply = await send_cookie(app, "session", value)
    await send_cookie(target(recorder, secret, store, serializer=tagged), "session",
                      reply.value("session"))  # fmt: skip
    assert [DATA, DATA] == recorder.seen
    assert tuple is type(recorder.seen[-1]["seen"])


async def test_a_quart_cookie_under_another_secret_is_an_empty_session(
    secret: str, store: Store | None
) -> None:
    value = await quart_cookie(DATA)
    recorder = Recorder()
    source = FlaskCookies(secret_key="not the Quart app's secret")
    app = target(recorder, secret, store, Rotation(write="encrypted", read=[source]))
    reply = await send_cookie(app, "session", value)
    assert (200, [{}], {}) == (reply.status, recorder.seen, reply.set_cookies)
