"""Parallel requests of one session lose nothing: a save merges what another request wrote.

Each runs on every server-side store (real Redis, Redis Cluster, memcached, SQLite and
MemoryStore), through the real middleware. The requests all load the session, wait until
every one of them has, then change it and answer: their saves meet head on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asgisession import Keyring, Session, SessionConflict, SessionMiddleware, Sessions
from asgisession._types import ASGIApp, Receive, Scope, Send
from asgisession.backends.server import session_key

from .asgi import body, call, set_cookie, status
from .conftest import Served
from .test_records import session_id

pytestmark = pytest.mark.anyio

PARALLEL = 20


class Barrier:
    """Holds each request after it loaded its session until ``parties`` have."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.all_in = asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self.all_in.set()
        await asyncio.wait_for(self.all_in.wait(), 10)


def parallel_app(barrier: Barrier) -> ASGIApp:
    """``/own?k=K`` sets key K; ``/incr`` adds one to ``n``; ``/read`` changes nothing."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        session: Session = scope["session"]
        await session.load()
        path = scope["path"]
        if path in ("/own", "/incr"):
            seen = session.get("n", 0)
            await barrier.wait()
            if path == "/own":
                session[scope["query_string"].decode().partition("=")[2]] = True
            else:
                session["n"] = seen + 1
        payload = repr(dict(session)).replace("'", '"').replace("True", "true").encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": payload})

    return app


async def conflict_answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 409, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def logged_in(mw: SessionMiddleware) -> str:
    cookie = set_cookie(await call(mw, "/own?k=start", None))
    assert cookie
    return cookie


async def test_parallel_requests_setting_their_own_keys_keep_every_key(
    served: Served, secret: str
) -> None:
    """20 requests on one session, each setting its own key at once: all 20 keys stay."""
    barrier = Barrier(PARALLEL)
    mw = SessionMiddleware(parallel_app(barrier), secret_key_base=secret, store=served.store)
    barrier.parties = 1
    cookie = await logged_in(mw)
    barrier.parties, barrier.arrived, barrier.all_in = PARALLEL, 0, asyncio.Event()
    answers = await asyncio.gather(*(call(mw, f"/own?k=k{n:02d}", cookie) for n in range(PARALLEL)))
    assert [200] * PARALLEL == [status(a) for a in answers]
    assert [None] * PARALLEL == [set_cookie(a) for a in answers]  # same id, no new cookie
    expected: dict[str, Any] = {"start": True, **{f"k{n:02d}": True for n in range(PARALLEL)}}
    assert expected == body(await call(mw, "/read", cookie))


async def test_parallel_increments_under_the_error_rule_lose_nothing_silently(
    served: Served, secret: str
) -> None:
    """20 increments of one key at once: each either counts or is told it did not."""
    barrier = Barrier(1)
    mw = SessionMiddleware(
        parallel_app(barrier), secret_key_base=secret, store=served.store,
        on_conflict="error", on_commit_error=lambda scope, error: conflict_answer,
    )  # fmt: skip
    cookie = await logged_in(mw)
    barrier.parties, barrier.arrived, barrier.all_in = PARALLEL, 0, asyncio.Event()
    answers = await asyncio.gather(*(call(mw, "/incr", cookie) for _ in range(PARALLEL)))
    codes = [status(a) for a in answers]
    assert PARALLEL == codes.count(200) + codes.count(409)
    assert codes.count(409) >= 1  # they all read 0: one counts, the rest conflict
    assert codes.count(200) == body(await call(mw, "/read", cookie))["n"]


async def test_increments_one_after_another_all_count(served: Served, secret: str) -> None:
    """The error rule costs nothing without a race: 20 increments in turn make 20."""
    mw = SessionMiddleware(
        parallel_app(Barrier(1)), secret_key_base=secret, store=served.store, on_conflict="error"
    )
    cookie = await logged_in(mw)
    for _ in range(PARALLEL):
        assert 200 == status(await call(mw, "/incr", cookie))
    assert PARALLEL == body(await call(mw, "/read", cookie))["n"]


async def test_the_default_rule_keeps_this_requests_value_and_the_others_keys(
    served: Served, secret: str
) -> None:
    """Two sessions loaded at once: the later save keeps its value of a shared key and the
    earlier one's other keys; a delete of this request is applied too."""
    sessions = Sessions(secret_key_base=secret, store=served.store)
    first = await sessions.load()
    first.update({"shared": "base", "gone": 1, "kept": 1})
    cookie = (await sessions.commit(first) or "").split(";")[0].partition("=")[2]
    assert cookie
    a = await sessions.load(cookie=cookie)
    b = await sessions.load(cookie=cookie)
    a["shared"], a["from_a"] = "a", 1
    b["shared"], b["from_b"] = "b", 1
    del b["gone"]
    b["kept"] = 1  # written, unchanged: not a change
    await sessions.commit(a)
    await sessions.commit(b)
    expected = {"shared": "b", "kept": 1, "from_a": 1, "from_b": 1}
    assert expected == dict(await sessions.load(cookie=cookie))


async def test_the_error_rule_saves_nothing_of_the_loser(served: Served, secret: str) -> None:
    """Both changed ``shared``: the later commit raises SessionConflict naming it."""
    sessions = Sessions(secret_key_base=secret, store=served.store, on_conflict="error")
    first = await sessions.load()
    first["shared"] = "base"
    cookie = (await sessions.commit(first) or "").split(";")[0].partition("=")[2]
    a = await sessions.load(cookie=cookie)
    b = await sessions.load(cookie=cookie)
    a["shared"] = "a"
    b["shared"], b["mine"] = "b", 1
    await sessions.commit(a)
    with pytest.raises(SessionConflict) as caught:
        await sessions.commit(b)
    assert ["shared"] == caught.value.keys
    assert {"shared": "a"} == dict(await sessions.load(cookie=cookie))


async def test_a_read_only_reseal_never_writes_over_a_parallel_change(
    served: Served, secret: str, other_secret: str
) -> None:
    """A stale record re-sealed by a read-only request is written only if unchanged."""
    old = Sessions(secret_key_base=other_secret, store=served.store)
    first = await old.load()
    first["n"] = 1
    cookie = (await old.commit(first) or "").split(";")[0].partition("=")[2]
    rotated = Sessions(secret_key_base=[secret, other_secret], store=served.store)
    reader = await rotated.load(cookie=cookie)
    writer = await rotated.load(cookie=cookie)
    assert 1 == reader["n"]
    writer["n"] = 2
    await rotated.commit(writer)
    await rotated.commit(reader)  # read only, stale record: a re-seal, refused
    assert {"n": 2} == dict(await rotated.load(cookie=cookie))
    key = session_key(session_id(other_secret, cookie))
    record = await served.store.load(key)
    assert record is not None
    assert Keyring(secret).newest.key_id == record[1:5]
