# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""set_expiry and log_id under asyncio and Trio, on the stores the anyio core runs on both.

tests/test_expiry.py and tests/test_log_id.py cover every store, on asyncio (the Redis and
memcached clients are asyncio-only); here the cookie store and MemoryStore run the same
flow under both anyio backends.
"""

from __future__ import annotations

import pytest

from asgisession.stores import MemoryStore, Store

from .test_expiry import CHOICES, Browser, chosen, max_age_of

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("server_side", [False, True], ids=["cookie", "memory"])
@pytest.mark.parametrize("name", ["browser-close", "short"])
async def test_choice_ends_the_session(secret: str, server_side: bool, name: str) -> None:
    store: Store | None = MemoryStore() if server_side else None
    choice = CHOICES[name]
    browser = Browser(secret, store)
    body = await chosen(browser, choice)
    assert browser.set_cookie is not None
    assert choice.max_age == max_age_of(browser.set_cookie)
    assert (choice.max_age is None) == body["browser_close"]
    browser.clock.advance(10)
    await browser.get("/regenerate")
    remaining = choice.ends_after - 10 if choice.max_age else choice.ends_after
    browser.clock.advance(remaining - 1)
    assert {"user": "alice"} == (await browser.get("/read"))["data"]
    browser.clock.advance(1)
    assert {} == (await browser.get("/read"))["data"]
