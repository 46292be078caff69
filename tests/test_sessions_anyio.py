# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""asgisession.Sessions under asyncio and Trio: nothing in it is asyncio-only."""

from __future__ import annotations

import pytest

from asgisession import RejectReason, Sessions
from asgisession.stores import MemoryStore

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("server_side", [False, True])
async def test_round_trip(secret: str, server_side: bool) -> None:
    store = MemoryStore() if server_side else None
    sessions = Sessions(secret_key_base=secret, store=store)
    async with sessions.open() as opened:
        opened.session["a"] = 1
    assert opened.set_cookie is not None
    cookie = opened.set_cookie.split(";")[0]
    session = await sessions.load(cookie_header=cookie)
    assert {"a": 1} == dict(session)
    session.reset()
    assert "Max-Age=0" in (await sessions.commit(session) or "")
    ended = await sessions.load(cookie_header=cookie)
    if server_side:
        assert RejectReason.NOT_FOUND == ended.rejection
    oversized = await sessions.load(cookie_header=f"{cookie}; pad={'x' * 70_000}")
    assert RejectReason.OVERSIZED == oversized.rejection
