"""A real Flask app made the cookie; asgisession reads it, tagged types included, and re-issues.

Flask is installed as a dependency of Quart (the test group has ``quart``).
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import time
import uuid
from typing import Any

import flask
import itsdangerous
import pytest
from markupsafe import Markup

from asgisession import Rotation
from asgisession.errors import RejectReason
from asgisession.migrate import FlaskCookies
from asgisession.serializer import JSON, Serializer
from asgisession.stores.base import Store
from asgisession.tagged import TaggedJSON

from .helpers import Recorder, send_cookie, target

pytestmark = pytest.mark.anyio

OLD_SECRET = "the Flask app's SECRET_KEY"
PLAIN = {"_user_id": "7", "_fresh": True, "csrf_token": "abc", "lookalike": {" t": "x"}}
WHEN = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
#: What Flask's tagged JSON carries beyond JSON (Markup aside): tuple, bytes, UUID, datetime.
TAGGED = {
    "point": (1, (2, 3)),
    "raw": b"\x00\xff",
    "token": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "when": WHEN,
    "nested": {"at": [WHEN]},
}


def flask_cookie(data: dict[str, Any], secret: str = OLD_SECRET, **config: Any) -> str:
    """The session cookie a real Flask app sets after putting ``data`` in its session."""
    app = flask.Flask(__name__)
    app.config.update(SECRET_KEY=secret, **config)

    @app.get("/login")
    def login() -> str:
        flask.session.update(data)
        return "ok"

    with app.test_client() as client:
        (header,) = client.get("/login").headers.getlist("Set-Cookie")
    name, _, rest = header.partition("=")
    assert "session" == name
    return rest.split(";", 1)[0]


def migrating(serializer: Serializer = JSON, **options: Any) -> Rotation:
    source = FlaskCookies(secret_key=OLD_SECRET, serializer=serializer, **options)
    return Rotation(write="encrypted", read=[source])


async def test_a_flask_session_stays_logged_in_and_comes_back_in_our_format(
    secret: str, store: Store | None
) -> None:
    value = flask_cookie(PLAIN)
    recorder = Recorder()
    reply = await send_cookie(target(recorder, secret, store, migrating()), "session", value)
    assert [PLAIN] == recorder.seen
    await send_cookie(target(recorder, secret, store), "session", reply.value("session"))
    assert PLAIN == recorder.seen[-1]


async def test_with_tagged_json_flasks_types_come_back_as_they_were(
    secret: str, store: Store | None
) -> None:
    """TaggedJSON on both sides: the tuple, bytes, UUID and datetime keep their types."""
    value = flask_cookie({**PLAIN, **TAGGED})
    recorder = Recorder()
    tagged = TaggedJSON()
    app = target(recorder, secret, store, migrating(tagged), serializer=tagged)
    reply = await send_cookie(app, "session", value)
    plain = target(recorder, secret, store, serializer=tagged)
    await send_cookie(plain, "session", reply.value("session"))
    for seen in recorder.seen:
        assert {**PLAIN, **TAGGED} == seen
        assert [type(v) for v in TAGGED.values()] == [type(seen[k]) for k in TAGGED]
        assert (tuple, int, tuple) == (
            type(seen["point"]), type(seen["point"][0]), type(seen["point"][1]),
        )  # fmt: skip


async def test_under_strict_json_tagged_values_are_left_out_by_name(
    secret: str, store: Store | None, caplog: pytest.LogCaptureFixture
) -> None:
    """The strict default would read them back changed: each such key is dropped, named."""
    value = flask_cookie({**PLAIN, **TAGGED, "note": Markup("<b>hi</b>")})
    recorder = Recorder()
    with caplog.at_level(logging.WARNING, logger="asgisession"):
        reply = await send_cookie(target(recorder, secret, store, migrating()), "session", value)
    assert [PLAIN] == recorder.seen  # logged in still: the user's keys came over
    assert 200 == reply.status
    warned = "\n".join(r.getMessage() for r in caplog.records)
    for key, kind in [
        ("point", "tuple"), ("raw", "bytes"), ("token", "UUID"), ("when", "datetime"),
        ("nested", "datetime"), ("note", "Markup"),
    ]:  # fmt: skip
        assert f"session['{key}']" in warned
        assert kind in warned
    assert "serializer=TaggedJSON()" in warned


async def test_markup_is_left_out_under_tagged_json_too(
    secret: str, store: Store | None, caplog: pytest.LogCaptureFixture
) -> None:
    value = flask_cookie({**PLAIN, "note": Markup("<b>hi</b>")})
    recorder = Recorder()
    tagged = TaggedJSON()
    app = target(recorder, secret, store, migrating(tagged), serializer=tagged)
    with caplog.at_level(logging.WARNING, logger="asgisession"):
        await send_cookie(app, "session", value)
    assert [PLAIN] == recorder.seen
    assert "session['note'] not carried over (a Markup)" in caplog.text


async def test_flasks_fallback_keys_open_cookies_of_an_older_secret(
    secret: str, store: Store | None
) -> None:
    value = flask_cookie(PLAIN, secret="the secret before the last rotation")
    recorder = Recorder()
    rotation = migrating(fallback_keys=["the secret before the last rotation"])
    await send_cookie(target(recorder, secret, store, rotation), "session", value)
    assert [PLAIN] == recorder.seen


async def test_a_flask_cookie_older_than_its_lifetime_is_an_empty_session(
    secret: str, store: Store | None
) -> None:
    value = flask_cookie(PLAIN, PERMANENT_SESSION_LIFETIME=600)
    for offset, expected in ((590, [PLAIN]), (601, [{}])):
        recorder = Recorder()
        rotation = migrating(max_age=600)
        app = target(recorder, secret, store, rotation, now=time.time() + offset)
        await send_cookie(app, "session", value)
        assert expected == recorder.seen
    assert {RejectReason.EXPIRED: 1} == app.rejections


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: flask_cookie(PLAIN, secret="another app"), id="secret"),
        pytest.param(lambda: flask_cookie(PLAIN)[:-2] + "xx", id="signature"),
        pytest.param(lambda: "x" + flask_cookie(PLAIN), id="data"),
        pytest.param(lambda: "." + flask_cookie(PLAIN), id="compressed-flag"),
    ],
)
async def test_a_tampered_or_foreign_flask_cookie_is_an_empty_session(
    secret: str, store: Store | None, make: Any
) -> None:
    recorder = Recorder()
    app = target(recorder, secret, store, migrating())
    reply = await send_cookie(app, "session", make())
    assert (200, [{}], {}) == (reply.status, recorder.seen, reply.set_cookies)
    assert 1 == sum(app.rejections.values())


async def test_a_signed_flask_cookie_that_does_not_decode_is_an_empty_session(
    secret: str, store: Store | None
) -> None:
    signer = itsdangerous.URLSafeTimedSerializer(
        OLD_SECRET,
        salt="cookie-session",
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    value = signer.dumps({"token": {" u": "not a uuid"}})
    recorder = Recorder()
    app = target(recorder, secret, store, migrating())
    reply = await send_cookie(app, "session", value)
    assert (200, [{}]) == (reply.status, recorder.seen)
    assert {RejectReason.BAD_PAYLOAD: 1} == app.rejections
