"""One session written by many requests at once: saves of one process take turns, and a
save refused again and again gives up within a bounded wait.

On every server-side store (real Redis, Redis Cluster, memcached, SQLite, PostgreSQL and
MemoryStore), through the real middleware. Waits are counted by replacing the backend's
``backoff`` (or ``anyio.sleep`` inside it), never timed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from asgisession import SessionMiddleware, Sessions
from asgisession.backends import _merge, server
from asgisession.stores.base import Store

from .asgi import body, call, status
from .conftest import Served
from .test_parallel import PARALLEL, Barrier, logged_in, parallel_app

pytestmark = pytest.mark.anyio


def count_calls(store: Store, name: str) -> list[int]:
    """Count the calls of ``store``'s method ``name`` (wrapped on the instance)."""
    calls = [0]
    method = getattr(store, name)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await method(*args, **kwargs)

    setattr(store, name, counted)
    return calls


async def test_parallel_saves_of_one_process_take_turns(
    served: Served, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 requests load one session, then all save at once: the refused ones take turns,
    so each tries at most twice and none ever backs off; every request's key is kept."""
    waits: list[int] = []

    async def backoff(attempt: int) -> None:
        if attempt:
            waits.append(attempt)

    monkeypatch.setattr(server, "backoff", backoff)
    barrier = Barrier(1)
    mw = SessionMiddleware(parallel_app(barrier), secret_key_base=secret, store=served.store)
    cookie = await logged_in(mw)
    tries = count_calls(served.store, "save_if")
    barrier.parties, barrier.arrived, barrier.all_in = PARALLEL, 0, asyncio.Event()
    answers = await asyncio.gather(*(call(mw, f"/own?k=k{n:02d}", cookie) for n in range(PARALLEL)))
    assert [200] * PARALLEL == [status(a) for a in answers]
    assert [] == waits
    assert tries[0] <= 2 * PARALLEL
    expected: dict[str, Any] = {"start": True, **{f"k{n:02d}": True for n in range(PARALLEL)}}
    assert expected == body(await call(mw, "/read", cookie))
    assert {} == _merge._saving.turns


class Interloper:
    """Before each of this request's tries, another writer saves the session (its own key)."""

    def __init__(self, store: Store, sessions: Sessions, cookie: str) -> None:
        self.store, self.sessions, self.cookie = store, sessions, cookie
        self.real_save_if = store.save_if  # type: ignore[attr-defined]
        self.refused = 0
        store.save_if = self.save_if_after_another  # type: ignore[attr-defined]

    async def save_if_after_another(self, key: str, data: bytes, *, ttl: int, version: Any) -> bool:
        other = await self.sessions.load(cookie=self.cookie)
        other[f"other{self.refused}"] = 1
        self.store.save_if = self.real_save_if  # type: ignore[attr-defined]
        try:
            await self.sessions.commit(other)
        finally:
            self.store.save_if = self.save_if_after_another  # type: ignore[attr-defined]
        saved: bool = await self.real_save_if(key, data, ttl=ttl, version=version)
        self.refused += not saved
        return saved


async def test_a_save_refused_every_time_waits_a_bounded_time_then_saves_over(
    served: Served, secret: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another writer gets in before every try: MAX_SAVES tries, whose waits (each at its
    longest) add up to under 50 ms, then the "saved over it" fallback, which keeps this
    request's change and all the others wrote before its last read."""
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    fake = SimpleNamespace(sleep=sleep, Event=anyio.Event, move_on_after=anyio.move_on_after)
    monkeypatch.setattr(_merge, "anyio", fake)
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    # The interloper stands for another process: it does not wait for this one's turn.
    monkeypatch.setattr(_merge, "WAIT_FOR_TURN", 0.0)
    sessions = Sessions(secret_key_base=secret, store=served.store)
    first = await sessions.load()
    first["start"] = 1
    cookie = (await sessions.commit(first) or "").split(";")[0].partition("=")[2]
    mine = await sessions.load(cookie=cookie)
    mine["mine"] = 1
    interloper = Interloper(served.store, sessions, cookie)
    with caplog.at_level(logging.WARNING, logger="asgisession"):
        await sessions.commit(mine)
    served.store.save_if = interloper.real_save_if  # type: ignore[attr-defined]
    assert _merge.MAX_SAVES == interloper.refused
    assert _merge.MAX_SAVES - 1 == len(waited)
    assert max(waited) <= _merge.MAX_WAIT
    assert sum(waited) < 0.05
    assert sum(waited) == pytest.approx(_merge.most_waited())
    assert ["saved over it" in r.getMessage() for r in caplog.records] == [True]
    others = {f"other{n}": 1 for n in range(_merge.MAX_SAVES)}
    assert {"start": 1, "mine": 1, **others} == dict(await sessions.load(cookie=cookie))
    assert {} == _merge._saving.turns
