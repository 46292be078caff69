"""Server records are bound to their id, and creating a session never overwrites one.

A record copied under another session's key (by whoever can write the store but holds no
cookie of the victim) does not open for that session's cookie; and a new session written
where a live record already is (an id collision, however unlikely) leaves that record as
it was and hands out no cookie for it. Each runs on every server-side store.
"""

from __future__ import annotations

import secrets
import time

import pytest

from asgisession import Keyring, MessageEncryptor, Session, SessionMiddleware
from asgisession._types import Receive, Scope, Send
from asgisession.backends import server
from asgisession.backends.server import session_key
from asgisession.crypto import SecretKeyBase

from .asgi import body, call, set_cookie
from .conftest import Served

pytestmark = pytest.mark.anyio


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/login?user=U`` writes the user; every route answers with the session."""
    session: Session = scope["session"]
    await session.load()
    query = scope["query_string"].decode()
    if scope["path"] == "/login":
        session["user"] = query.partition("=")[2]
    payload = repr(dict(session)).replace("'", '"').encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": payload})


def session_id(secret: SecretKeyBase, cookie: str) -> bytes:
    codec = MessageEncryptor(Keyring(secret))
    return codec.open(cookie, purpose="session", now=int(time.time())).payload


async def test_a_record_copied_under_another_key_does_not_open(served: Served, secret: str) -> None:
    """Mallory copies the admin's record over her own key: her cookie opens nothing."""
    mw = SessionMiddleware(app, secret_key_base=secret, store=served.store)
    admin = set_cookie(await call(mw, "/login?user=admin"))
    mallory = set_cookie(await call(mw, "/login?user=mallory"))
    assert admin
    assert mallory
    admin_key = session_key(session_id(secret, admin))
    mallory_key = session_key(session_id(secret, mallory))
    record = await served.store.load(admin_key)
    assert record is not None
    assert await served.store.save(mallory_key, record, ttl=600, replace=True)
    assert {} == body(await call(mw, "/read", mallory))
    assert {"user": "admin"} == body(await call(mw, "/read", admin))


async def test_a_record_written_before_the_binding_still_opens(served: Served, secret: str) -> None:
    """A plain JSON record (as written before 0.2) is read as it is, and bound when written."""
    mw = SessionMiddleware(app, secret_key_base=secret, store=served.store)
    cookie = set_cookie(await call(mw, "/login?user=alice"))
    assert cookie
    key = session_key(session_id(secret, cookie))
    assert await served.store.save(key, b'{"user":"alice"}', ttl=600, replace=True)
    assert {"user": "alice"} == body(await call(mw, "/read", cookie))
    await call(mw, "/login?user=alice2", cookie)
    record = await served.store.load(key)
    assert record is not None
    assert record.startswith(b"#")
    assert {"user": "alice2"} == body(await call(mw, "/read", cookie))


async def test_creating_a_session_never_overwrites_a_live_one(
    served: Served, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new session whose id is taken (forced here) leaves the record there untouched."""
    mw = SessionMiddleware(app, secret_key_base=secret, store=served.store)
    taken = b"\x07" * server.SESSION_ID_BYTES
    monkeypatch.setattr(secrets, "token_bytes", lambda n: taken)
    victim = set_cookie(await call(mw, "/login?user=victim"))
    assert victim
    before = await served.store.load(session_key(taken))
    assert before is not None
    intruder = await call(mw, "/login?user=intruder")
    assert set_cookie(intruder) is None  # no cookie: nothing was stored for it
    assert before == await served.store.load(session_key(taken))
    assert {"user": "victim"} == body(await call(mw, "/read", victim))
