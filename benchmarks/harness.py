"""What every section of ``benchmarks/run.py`` shares: the result model and the round-robin timer.

A section measures candidates in *rounds*: in each round every candidate runs one batch, in
an order that rotates from round to round, so a slow moment of a busy machine falls on all
candidates alike instead of on whoever happened to run then. A candidate's figure is the
median over rounds, its spread the interquartile range (p25-p75). A ratio between two
candidates is the median of the per-round ratios, each taken between two batches of the
same round, so drift in machine speed between rounds cancels out.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

Thunk = Callable[[], object]
AsyncBatch = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Mode:
    """How long a run is: the full run of ``tox -e bench`` or the ``--quick`` smoke run."""

    quick: bool
    rounds: int
    batch_ms: float  # the target length of one timed batch
    loadgen: str = "auto"  # end to end: "wrk", "python" (benchmarks/loadgen.py) or "auto"
    http: str = "h11"  # end to end: uvicorn's HTTP parser, "h11" or "httptools"
    loop: str = "asyncio"  # end to end: uvicorn's event loop, "asyncio" or "uvloop"

    @classmethod
    def make(
        cls, quick: bool, loadgen: str = "auto", http: str = "h11", loop: str = "asyncio"
    ) -> Mode:
        if quick:
            return cls(True, rounds=5, batch_ms=4.0, loadgen=loadgen, http=http, loop=loop)
        return cls(False, rounds=25, batch_ms=20.0, loadgen=loadgen, http=http, loop=loop)


@dataclass
class Measure:
    """One candidate in one case: a sample per round, and what they mean."""

    section: str
    case: str  # what was done: "1KB encode", "session read", "redis load"
    name: str  # who did it: "asgisession encrypted", "starlette", "raw redis.asyncio"
    unit: str  # "us/op", "ops/s", "req/s", "us/req"
    samples: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # p90, p99, notes

    @property
    def key(self) -> str:
        return f"{self.section}/{self.case}/{self.name}"

    def summary(self) -> dict[str, Any]:
        q1, median, q3 = quartiles(self.samples)
        return {
            "section": self.section,
            "case": self.case,
            "name": self.name,
            "unit": self.unit,
            "median": median,
            "p25": q1,
            "p75": q3,
            "iqr_share": (q3 - q1) / median if median else None,
            "rounds": len(self.samples),
            "samples": self.samples,
            **self.extra,
        }


@dataclass
class Ratio:
    """A named comparison, with the issue's target when there is one.

    ``value`` is the median over rounds of ``numerator / denominator`` (or, with
    ``difference``, of ``numerator - denominator`` in the measures' unit). ``better`` says
    which way is good: ``"lower"`` for times, ``"higher"`` for rates.
    """

    section: str
    label: str
    numerator: str
    denominator: str
    per_round: list[float]
    better: Literal["lower", "higher"]
    target: float | None = None
    unit: str = "x"  # "x" for a ratio, or the unit of a difference ("us")
    note: str = ""

    @property
    def value(self) -> float:
        return quartiles(self.per_round)[1]

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value <= self.target if self.better == "lower" else self.value >= self.target

    def summary(self) -> dict[str, Any]:
        q1, median, q3 = quartiles(self.per_round)
        return {
            "section": self.section,
            "label": self.label,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "value": median,
            "p25": q1,
            "p75": q3,
            "unit": self.unit,
            "better": self.better,
            "target": self.target,
            "met": self.met,
            "note": self.note,
            "per_round": self.per_round,
        }


@dataclass
class SectionResult:
    """What one section hands back to ``run.py``."""

    name: str
    measures: list[Measure] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # rows left out, with the reason
    info: dict[str, Any] = field(default_factory=dict)

    def measure(self, case: str, name: str) -> Measure:
        for m in self.measures:
            if m.case == case and m.name == name:
                return m
        raise KeyError(f"{self.name}: no measure {case!r}/{name!r}")

    def ratio(
        self,
        label: str,
        numerator: Measure,
        denominator: Measure,
        *,
        target: float | None = None,
        better: Literal["lower", "higher"] | None = None,
        note: str = "",
    ) -> Ratio:
        """Add the per-round ratio ``numerator / denominator`` (paired by round)."""
        if better is None:
            better = "lower" if numerator.unit.startswith("us") else "higher"
        pairs = zip(numerator.samples, denominator.samples, strict=True)
        ratio = Ratio(
            self.name,
            label,
            numerator.key,
            denominator.key,
            [a / b for a, b in pairs],
            better,
            target,
            note=note,
        )
        self.ratios.append(ratio)
        return ratio

    def overhead(
        self,
        label: str,
        subject: Measure,
        base: Measure,
        *,
        per: Measure | None = None,
        target: float | None = None,
        note: str = "",
    ) -> Ratio:
        """Add ``subject - base`` per round (in µs), or the ratio of that to ``per - base``."""
        differences = [s - b for s, b in zip(subject.samples, base.samples, strict=True)]
        if per is None:
            values = differences
        else:
            # A ratio of two overheads, each the median of its per-round differences: the
            # floor's overhead is a fraction of a microsecond, so a per-round ratio would
            # divide by noise (even by a negative number) in a busy round.
            floor = [p - b for p, b in zip(per.samples, base.samples, strict=True)]
            values = [quartiles(differences)[1] / max(quartiles(floor)[1], 1e-3)]
        ratio = Ratio(
            self.name,
            label,
            subject.key,
            (per or base).key,
            values,
            "lower",
            target,
            unit="x" if per else "us",
            note=note,
        )
        self.ratios.append(ratio)
        return ratio


def quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """(p25, median, p75) of ``samples``; all three the same for fewer than two."""
    if not samples:
        return (float("nan"),) * 3
    if len(samples) < 2:
        return samples[0], samples[0], samples[0]
    q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q2, q3


def percentile(sorted_samples: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of already sorted samples (``share`` in 0..1)."""
    index = min(len(sorted_samples) - 1, max(0, round(share * len(sorted_samples)) - 1))
    return sorted_samples[index]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the garbage collector, as ``timeit`` does, so it does not land in one batch."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def rotations(items: Sequence[Any], round_index: int) -> list[Any]:
    """``items`` rotated by the round number: each candidate leads some rounds."""
    shift = round_index % len(items)
    return [*items[shift:], *items[:shift]]


# -- synchronous callables ------------------------------------------------------------------


def time_sync_batch(fn: Thunk, n: int) -> int:
    """Nanoseconds for ``n`` calls of ``fn``."""
    loop = itertools.repeat(None, n)
    with gc_paused():
        start = time.perf_counter_ns()
        for _ in loop:
            fn()
        return time.perf_counter_ns() - start


def calibrate_sync(fn: Thunk, batch_ms: float) -> int:
    """How many calls of ``fn`` make a batch of about ``batch_ms``."""
    n = 1
    target = batch_ms * 1e6
    while True:
        elapsed = time_sync_batch(fn, n)
        if elapsed >= target / 5:
            return max(1, round(n * target / elapsed))
        n *= 4


def rounds_sync(
    candidates: Sequence[tuple[Measure, Thunk]], mode: Mode, progress: Progress
) -> None:
    """Time every ``fn`` in rounds; append µs per call to its measure's samples."""
    sizes = []
    for _, fn in candidates:
        n = calibrate_sync(fn, mode.batch_ms)
        time_sync_batch(fn, n)  # warm-up
        sizes.append(n)
    indexed = list(zip(candidates, sizes, strict=True))
    for round_index in range(mode.rounds):
        for (measure, fn), n in rotations(indexed, round_index):
            measure.samples.append(time_sync_batch(fn, n) / n / 1000)
        progress.tick(f"round {round_index + 1}/{mode.rounds}")


# -- coroutine batches ----------------------------------------------------------------------


async def time_async_batch(batch: AsyncBatch, n: int) -> int:
    """Nanoseconds for ``await batch(n)`` (the batch loops ``n`` times itself)."""
    with gc_paused():
        start = time.perf_counter_ns()
        await batch(n)
        return time.perf_counter_ns() - start


async def calibrate_async(batch: AsyncBatch, batch_ms: float) -> int:
    n = 1
    target = batch_ms * 1e6
    while True:
        elapsed = await time_async_batch(batch, n)
        if elapsed >= target / 5:
            return max(1, round(n * target / elapsed))
        n *= 4


async def rounds_async(
    candidates: Sequence[tuple[Measure, AsyncBatch]], mode: Mode, progress: Progress
) -> None:
    """The coroutine twin of :func:`rounds_sync`: µs per iteration into each measure."""
    sizes = []
    for _, batch in candidates:
        n = await calibrate_async(batch, mode.batch_ms)
        await time_async_batch(batch, n)
        sizes.append(n)
    indexed = list(zip(candidates, sizes, strict=True))
    for round_index in range(mode.rounds):
        for (measure, batch), n in rotations(indexed, round_index):
            measure.samples.append(await time_async_batch(batch, n) / n / 1000)
        progress.tick(f"round {round_index + 1}/{mode.rounds}")
        await asyncio.sleep(0)


# -- progress -------------------------------------------------------------------------------


class Progress:
    """One live status line on a terminal (plain lines otherwise), with elapsed time."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self.section = ""
        self._last_plain = 0.0

    def begin(self, section: str, what: str) -> None:
        self.section = section
        self._emit(f"{section}: {what}", force=True)

    def tick(self, message: str) -> None:
        self._emit(f"{self.section}: {message}")

    def note(self, message: str) -> None:
        """A line that stays (a skipped row, a warning)."""
        self.clear()
        print(f"  {message}", file=self.stream, flush=True)

    def clear(self) -> None:
        if self.live:
            print("\r" + " " * 78 + "\r", end="", file=self.stream, flush=True)

    def _emit(self, text: str, force: bool = False) -> None:
        elapsed = time.perf_counter() - self.started
        line = f"[{elapsed:6.1f}s] {text}"
        if self.live:
            print(f"\r{line[:78]:<78}", end="", file=self.stream, flush=True)
        elif force or elapsed - self._last_plain >= 5:
            # Not a terminal (CI, a pipe): a line at most every few seconds.
            self._last_plain = elapsed
            print(line, file=self.stream, flush=True)
