"""Turn: saves of one record take turns within a process, in order, never stuck for long.

Runs on asyncio and Trio. No duration is asserted: only the order in which saves got in,
with ``WAIT_FOR_TURN`` made short where a test needs a wait to run out.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from asgisession.backends import _merge
from asgisession.backends._merge import Turn

pytestmark = pytest.mark.anyio

STORE = object()


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition`` holds (Trio runs them in any order)."""
    while not condition():
        await anyio.sleep(0.001)


def queued() -> int:
    return len(_merge._saving.turns.get((id(STORE), "k")) or ())


async def test_saves_of_one_record_take_turns_in_the_order_they_came() -> None:
    log: list[str] = []
    release = anyio.Event()

    async def save(name: str) -> None:
        async with Turn(STORE, "k") as waited:
            log.append(f"{name} in, waited={waited}")
            if name == "a":
                await release.wait()
            await anyio.sleep(0)
            log.append(f"{name} out")

    async with anyio.create_task_group() as tg:
        tg.start_soon(save, "a")
        await until(lambda: bool(log))
        tg.start_soon(save, "b")
        await until(lambda: queued() == 1)
        tg.start_soon(save, "c")
        await until(lambda: queued() == 2)
        async with Turn(STORE, "other key") as waited:  # another record: no waiting
            assert not waited
        release.set()
    assert [
        "a in, waited=False", "a out", "b in, waited=True", "b out",
        "c in, waited=True", "c out",
    ] == log  # fmt: skip
    assert {} == _merge._saving.turns


async def test_a_save_that_waited_too_long_goes_ahead_and_hands_on_no_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The holder hangs (a store that stalls): the next save goes ahead without the turn;
    one arriving after it still waits for the holder, not for the one that went ahead."""
    monkeypatch.setattr(_merge, "WAIT_FOR_TURN", 0.01)
    log: list[str] = []
    release = anyio.Event()

    async def holder() -> None:
        async with Turn(STORE, "k"):
            log.append("holder in")
            await release.wait()
            log.append("holder out")

    async def save(name: str) -> None:
        async with Turn(STORE, "k") as waited:
            assert waited
            log.append(f"{name} in")

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await until(lambda: bool(log))
        await save("impatient")  # its wait runs out while the holder hangs
        monkeypatch.setattr(_merge, "WAIT_FOR_TURN", 10.0)
        tg.start_soon(save, "next")
        await until(lambda: queued() == 1)
        assert ["holder in", "impatient in"] == log
        release.set()
    assert ["holder in", "impatient in", "holder out", "next in"] == log
    assert {} == _merge._saving.turns


async def test_a_save_cancelled_while_it_waits_leaves_no_turn_behind() -> None:
    release = anyio.Event()
    got_in: list[str] = []

    async def holder() -> None:
        async with Turn(STORE, "k"):
            got_in.append("holder")
            await release.wait()

    async def waiter() -> None:
        async with Turn(STORE, "k"):
            got_in.append("waiter")

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await until(lambda: bool(got_in))
        async with anyio.create_task_group() as waiting:
            waiting.start_soon(waiter)
            await until(lambda: queued() == 1)
            waiting.cancel_scope.cancel()
        release.set()
    assert ["holder"] == got_in
    assert {} == _merge._saving.turns
    async with Turn(STORE, "k") as waited:  # the record is free again
        assert not waited
