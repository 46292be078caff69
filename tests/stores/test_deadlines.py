"""Deadlines: one timer per store bounds every call in flight, as asyncio.timeout would."""

from __future__ import annotations

import asyncio
import sys

import pytest

from asgisession.stores.deadlines import Deadlines

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.version_info < (3, 11), reason="Deadlines needs Task.uncancel"),
]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: Deadlines runs on asyncio's loop and tasks, and so do these tests."""
    return "asyncio"


TIMEOUT = 0.2


async def bounded_sleep(deadlines: Deadlines, seconds: float) -> str:
    with deadlines.bound():
        await asyncio.sleep(seconds)
    return "done"


async def test_a_call_in_time_returns_and_leaves_the_task_uncancelled() -> None:
    deadlines = Deadlines(TIMEOUT)
    assert await bounded_sleep(deadlines, 0) == "done"
    await asyncio.sleep(TIMEOUT * 2)  # past the deadline: the timer fires, finds nothing due
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):  # for mypy, which checks as Python 3.10
        assert task.cancelling() == 0
    assert not deadlines._calls


async def test_a_late_call_raises_timeout_error_not_before_its_deadline() -> None:
    deadlines = Deadlines(TIMEOUT)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await bounded_sleep(deadlines, 30)
    elapsed = loop.time() - started
    assert elapsed >= TIMEOUT - 0.002, elapsed  # never cut off early
    assert elapsed < 10, elapsed  # generous: "answered within", on a loaded machine
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):
        assert task.cancelling() == 0  # our cancellation was taken back


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    deadlines = Deadlines(30.0)
    task = asyncio.create_task(bounded_sleep(deadlines, 30))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not deadlines._calls


async def test_expiry_and_an_outside_cancellation_together_stay_a_cancellation() -> None:
    deadlines = Deadlines(TIMEOUT)

    async def cancelled_twice() -> None:
        with deadlines.bound():
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                # The deadline cancelled us; a caller cancels too before we leave the block.
                this = asyncio.current_task()
                assert this is not None
                this.cancel()
                raise

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(cancelled_twice())


async def test_only_the_late_calls_of_many_time_out() -> None:
    deadlines = Deadlines(TIMEOUT * 2)
    durations = [0, 0.01, 0.05, 30, 0.02, 30, 0, 30]
    results = await asyncio.gather(
        *(bounded_sleep(deadlines, d) for d in durations), return_exceptions=True
    )
    for duration, result in zip(durations, results, strict=True):
        if duration == 30:
            assert isinstance(result, TimeoutError)
        else:
            assert result == "done"
    assert not deadlines._calls


async def test_calls_started_later_are_bounded_by_their_own_start() -> None:
    """A call entering while the timer waits for an earlier one still gets its full time."""
    deadlines = Deadlines(TIMEOUT)
    loop = asyncio.get_running_loop()
    first = asyncio.create_task(bounded_sleep(deadlines, 30))
    await asyncio.sleep(TIMEOUT / 2)
    started = loop.time()
    with pytest.raises(TimeoutError):
        await bounded_sleep(deadlines, 30)
    elapsed = loop.time() - started
    assert elapsed >= TIMEOUT - 0.002, elapsed
    assert elapsed < 10, elapsed
    with pytest.raises(TimeoutError):
        await first


def test_a_new_event_loop_gets_its_own_timer() -> None:
    """A store outliving one event loop still bounds its calls on the next."""
    deadlines = Deadlines(TIMEOUT)
    for _ in range(2):
        with pytest.raises(TimeoutError):
            asyncio.run(bounded_sleep(deadlines, 30))


def test_outside_a_task_it_refuses() -> None:
    with pytest.raises(RuntimeError, match=r"event loop|task"), Deadlines(TIMEOUT).bound():
        pass
