"""Regenerate never brings back a session ended meanwhile, and never forks one.

A request that loaded a session and calls ``regenerate()`` after another request ended it
(logout, ``revoke_user``) must not answer with a live session of that user, nor list one
under the user again (the resurrection class of Rack's CVE-2025-46336). Twenty concurrent
``regenerate()`` calls on one cookie leave at most one live successor. Each runs on every
server-side store, on real servers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from asgisession import Session, SessionMiddleware, revoke_user, user_sessions
from asgisession._types import Receive, Scope, Send

from .asgi import body, call, set_cookie
from .conftest import Served

pytestmark = pytest.mark.anyio


class Gated:
    """An app whose ``/regenerate`` waits, after loading, until the test opens the gate."""

    def __init__(self, expected: int = 1) -> None:
        self.expected = expected
        self.loaded = 0
        self.all_loaded = anyio.Event()
        self.gate = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session: Session = scope["session"]
        await session.load()
        if scope["path"] == "/login":
            session["user"] = "alice"
        elif scope["path"] == "/logout":
            session.reset()
        elif scope["path"] == "/regenerate":
            _ = dict(session)  # the data as loaded, before anything else happens
            self.loaded += 1
            if self.loaded == self.expected:
                self.all_loaded.set()
            await self.gate.wait()
            session.regenerate()
        payload = repr(dict(session)).replace("'", '"').encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": payload})


def middleware(served: Served, app: Gated, secret: str) -> SessionMiddleware:
    return SessionMiddleware(app, secret_key_base=secret, store=served.store, user_key="user")


async def live_user(mw: SessionMiddleware, cookie: str | None) -> object:
    """The user a cookie opens a session of, or None."""
    if not cookie:
        return None
    return body(await call(mw, "/read", cookie)).get("user")


async def regenerate_after(
    served: Served, secret: str, end: Callable[[SessionMiddleware, str], Awaitable[None]]
) -> tuple[SessionMiddleware, str | None]:
    """Log in, start a regenerate that loads the session, ``end`` it, then let it finish."""
    app = Gated()
    mw = middleware(served, app, secret)
    cookie = set_cookie(await call(mw, "/login"))
    assert cookie
    assert [] != await user_sessions(served.store, "alice")
    answer: list[str | None] = []

    async def regenerate() -> None:
        answer.append(set_cookie(await call(mw, "/regenerate", cookie)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(regenerate)
        await app.all_loaded.wait()
        await end(mw, cookie)
        app.gate.set()
    return mw, answer[0]


async def logout(mw: SessionMiddleware, cookie: str) -> None:
    assert "" == set_cookie(await call(mw, "/logout", cookie))


async def test_regenerate_after_a_logout_elsewhere_does_not_resurrect(
    served: Served, secret: str
) -> None:
    """Logged out in another tab while this request ran: regenerate ends it here too."""
    mw, answer = await regenerate_after(served, secret, logout)
    assert "" == answer  # a deletion cookie
    assert None is await live_user(mw, answer)
    assert [] == await user_sessions(served.store, "alice")


async def test_regenerate_after_revoke_user_does_not_resurrect(served: Served, secret: str) -> None:
    """Revoked everywhere while this request ran: no successor, and nothing listed again."""

    async def revoke(mw: SessionMiddleware, cookie: str) -> None:
        assert 1 == await revoke_user(served.store, "alice")

    mw, answer = await regenerate_after(served, secret, revoke)
    assert "" == answer
    assert None is await live_user(mw, answer)
    assert [] == await user_sessions(served.store, "alice")


async def test_twenty_concurrent_regenerates_leave_one_successor(
    served: Served, secret: str
) -> None:
    """Twenty requests on one cookie all regenerate: one live successor, the rest end."""
    app = Gated(expected=20)
    mw = middleware(served, app, secret)
    cookie = set_cookie(await call(mw, "/login"))
    answers: list[str | None] = []

    async def regenerate() -> None:
        answers.append(set_cookie(await call(mw, "/regenerate", cookie)))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(regenerate)
        await app.all_loaded.wait()
        app.gate.set()
    users = [await live_user(mw, answer) for answer in answers]
    assert 1 == users.count("alice")
    assert 19 == answers.count("")
    assert 1 == len(await user_sessions(served.store, "alice"))
    assert None is await live_user(mw, cookie)  # the old id is gone
