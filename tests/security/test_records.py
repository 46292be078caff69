"""Server records are sealed and bound to their key, and creating a session never overwrites one.

A dump of the store (every key and value the service holds, its files) shows nothing of
the sessions' data; a record copied under another session's key (by whoever can write the
store but holds no cookie of the victim) does not open for that session's cookie; records
of the older forms still open and are sealed at their next write; rotated secrets open
and re-seal; and a new session written where a live record already is (an id collision,
however unlikely) leaves that record as it was and hands out no cookie for it. Each runs
on every server-side store.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter

import pytest

from asgisession import Keyring, MessageEncryptor, RejectReason, Session, SessionMiddleware
from asgisession._types import Receive, Scope, Send
from asgisession.backends import server
from asgisession.backends._records import bind
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
    assert Counter({RejectReason.BAD_TAG: 1}) == mw.rejections
    assert {"user": "admin"} == body(await call(mw, "/read", admin))


#: A value no store holds unless a session put it there.
MARKER = "zq-marker-4b1d9e"


def readable_forms(text: str) -> list[bytes]:
    """Ways the text could sit in a dump: as it is, hex-encoded, UTF-16."""
    raw = text.encode()
    return [raw, raw.hex().encode(), text.encode("utf-16-le")]


async def test_a_dump_of_the_store_shows_no_session_data(served: Served, secret: str) -> None:
    """After writes of a marker, no byte sequence of it is anywhere the service keeps data.

    The same dump of an unsealed session shows its marker, so the probe can see one. Each
    run has markers of its own: servers (and PostgreSQL's WAL) outlive a test.
    """
    marker, clear_marker = f"zq-{secrets.token_hex(8)}", f"in-the-clear-{secrets.token_hex(8)}"
    mw = SessionMiddleware(app, secret_key_base=secret, store=served.store)
    cookie = set_cookie(await call(mw, f"/login?user={marker}"))
    assert cookie
    for n in range(3):
        await call(mw, f"/login?user={marker}{n}", cookie)
    assert {"user": f"{marker}2"} == body(await call(mw, "/read", cookie))
    key = session_key(session_id(secret, cookie))
    dump = await served.dump()
    assert key.encode() in dump  # the dump sees the record
    for form in readable_forms(marker):
        assert form not in dump

    clear = SessionMiddleware(app, secret_key_base=secret, store=served.store, seal_records=False)
    assert set_cookie(await call(clear, f"/login?user={clear_marker}"))
    assert clear_marker.encode() in await served.dump()


async def test_records_of_the_older_forms_open_and_are_sealed_at_their_next_write(
    served: Served, secret: str
) -> None:
    """A plain JSON record (before 0.2) and a bound one (0.2) open, and a write seals them."""
    mw = SessionMiddleware(app, secret_key_base=secret, store=served.store)
    for n, form in enumerate(("plain", "bound")):
        cookie = set_cookie(await call(mw, f"/login?user=u{n}"))
        assert cookie
        sid = session_id(secret, cookie)
        key = session_key(sid)
        old = f'{{"user":"{form}-{MARKER}"}}'.encode()
        record = old if form == "plain" else bind(sid, old)
        assert await served.store.save(key, record, ttl=600, replace=True)
        assert {"user": f"{form}-{MARKER}"} == body(await call(mw, "/read", cookie))
        await call(mw, f"/login?user={form}-2", cookie)
        sealed = await served.store.load(key)
        assert sealed is not None
        assert sealed.startswith(b"\x01")
        assert b"-2" not in sealed
        assert {"user": f"{form}-2"} == body(await call(mw, "/read", cookie))


async def test_a_rotated_secret_opens_and_the_next_write_seals_under_the_newest(
    served: Served, secret: str, other_secret: str
) -> None:
    """Newest seals, all open; once the old secret is gone, so are the records it sealed."""
    old = SessionMiddleware(app, secret_key_base=other_secret, store=served.store)
    cookie = set_cookie(await call(old, "/login?user=alice"))
    assert cookie
    key = session_key(session_id(other_secret, cookie))
    before = await served.store.load(key)
    assert before is not None
    assert Keyring(other_secret).newest.key_id == before[1:5]
    rotated = SessionMiddleware(app, secret_key_base=[secret, other_secret], store=served.store)
    renewed = set_cookie(await call(rotated, "/login?user=alice2", cookie))
    assert renewed  # the cookie is re-issued under the newest secret too
    after = await served.store.load(key)
    assert after is not None
    assert Keyring(secret).newest.key_id == after[1:5]
    new_only = SessionMiddleware(app, secret_key_base=secret, store=served.store)
    assert {"user": "alice2"} == body(await call(new_only, "/read", renewed))
    # A record the old secret sealed no longer opens once that secret is dropped.
    assert await served.store.save(key, before, ttl=600, replace=True)
    assert {} == body(await call(new_only, "/read", renewed))
    assert Counter({RejectReason.UNKNOWN_KEY: 1}) == new_only.rejections


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
