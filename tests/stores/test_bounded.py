"""bounded(): a store call's time limit, the same under asyncio and Trio."""

from __future__ import annotations

import anyio
import pytest

from asgisession import StoreUnavailable
from asgisession.stores.base import bounded

pytestmark = pytest.mark.anyio


async def answer(delay: float) -> int:
    await anyio.sleep(delay)
    return 42


async def test_a_call_within_the_limit_returns_its_value() -> None:
    assert 42 == await bounded(answer(0), 5.0, "a load")


async def test_no_limit_waits_as_long_as_it_takes() -> None:
    assert 42 == await bounded(answer(0.01), None, "a load")


async def test_a_late_call_is_store_unavailable_naming_the_call() -> None:
    with pytest.raises(StoreUnavailable, match=r"did not answer a load within 0\.05 s"):
        await bounded(answer(10), 0.05, "a load")


async def test_a_cancellation_from_outside_is_not_a_timeout() -> None:
    """A caller's own deadline (a client gone, a shutdown) cancels; it is no store outage."""
    with anyio.move_on_after(0.05) as outer:
        await bounded(answer(10), 5.0, "a load")
        pytest.fail("the outer cancellation did not reach the call")
    assert outer.cancelled_caught
