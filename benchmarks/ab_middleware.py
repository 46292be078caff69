"""A/B of the whole middleware and the codec: a git ref's asgisession against the tree's.

For a refactoring that must not make anything slower: the requests of
:mod:`benchmarks.bench_middleware` (cookie store: no cookie, untouched, read, write;
MemoryStore: untouched, read, write) and the encrypted codec's seal and open of a 1 KB
payload, each run by ``asgisession`` at ``--ref`` and by the working tree in one process,
interleaved in rounds (which of the two goes first alternates). Only ratios within a round
are reported, as medians over the rounds: each side's overhead over the bare app, and
tree / ref.

Usage: ``python -m benchmarks.ab_middleware [--ref main] [--rounds 15] [--requests 2000]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .ab_stores import import_ref
from .bench_middleware import HEADERS, bare_app, batch, call, cookie_header, session_app
from .codec import SECRET
from .harness import AsyncBatch

CASES = (
    ("cookie", "no cookie"),
    ("cookie", "untouched"),
    ("cookie", "read"),
    ("cookie", "write"),
    ("memory", "untouched"),
    ("memory", "read"),
    ("memory", "write"),
)
PAYLOAD = b'{"user_id":48213,"cart":"' + b"x" * 1000 + b'"}'


async def candidates(package: Any) -> dict[tuple[str, str], AsyncBatch]:
    """Each case's batch for one version of the package (``asgisession`` or the ref)."""
    middleware = package.SessionMiddleware
    memory = importlib.import_module(f"{package.__name__}.stores.memory").MemoryStore()
    batches: dict[tuple[str, str], AsyncBatch] = {}
    for store, scenario in CASES:
        options: dict[str, Any] = {"secret_key_base": SECRET}
        if store == "memory":
            options["store"] = memory
        seed = await call(middleware(session_app("seed"), **options), HEADERS)
        headers = (
            HEADERS if scenario == "no cookie" else [*HEADERS, (b"cookie", cookie_header(seed))]
        )
        action = "untouched" if scenario == "no cookie" else scenario
        app = middleware(session_app(action), **options)
        answered = await call(app, headers)
        if (store, scenario) == ("cookie", "write"):
            cookie_header(answered)  # a changed cookie session is sent back
        batches[store, scenario] = batch(app, headers)
    return batches


def codec_batches(package: Any) -> dict[str, AsyncBatch]:
    """Seal and open of :data:`PAYLOAD` by one version's MessageEncryptor."""
    crypto = importlib.import_module(f"{package.__name__}.crypto")
    codec = crypto.MessageEncryptor(crypto.Keyring(SECRET))
    now = int(time.time())
    sealed = codec.seal(PAYLOAD, purpose="session", issued_at=now, expires_at=now + 3600)

    async def seal(n: int) -> None:
        for _ in range(n):
            codec.seal(PAYLOAD, purpose="session", issued_at=now, expires_at=now + 3600)

    async def open_(n: int) -> None:
        for _ in range(n):
            codec.open(sealed, purpose="session", now=now)

    return {"seal 1 KB": seal, "open 1 KB": open_}


async def timed(run: AsyncBatch, n: int) -> float:
    start = time.perf_counter_ns()
    await run(n)
    return (time.perf_counter_ns() - start) / n


async def main(ref: Any, rounds: int, requests: int) -> None:
    import asgisession

    sides = {"ref": await candidates(ref), "tree": await candidates(asgisession)}
    codecs = {"ref": codec_batches(ref), "tree": codec_batches(asgisession)}
    bare = batch(bare_app, HEADERS)
    over: dict[tuple[str, Any], list[float]] = {}
    ratio: dict[Any, list[float]] = {}
    gc.disable()
    try:
        for r in range(rounds):
            order = ("ref", "tree") if r % 2 == 0 else ("tree", "ref")
            floor = await timed(bare, requests)
            for case in CASES:
                ns = {side: await timed(sides[side][case], requests) for side in order}
                for side in order:
                    over.setdefault((side, case), []).append(ns[side] - floor)
                ratio.setdefault(case, []).append((ns["tree"] - floor) / (ns["ref"] - floor))
            for name in codecs["ref"]:
                ns = {side: await timed(codecs[side][name], requests) for side in order}
                ratio.setdefault(name, []).append(ns["tree"] / ns["ref"])
            gc.collect()
    finally:
        gc.enable()
    print(f"== {rounds} rounds of {requests} requests; medians (us) and medians of ratios")
    print(f"  {'case':<22} {'ref over bare':>14} {'tree over bare':>15} {'tree/ref':>9}")
    for case in CASES:
        label = f"{case[0]} {case[1]}"
        ref_us = statistics.median(over["ref", case]) / 1000
        tree_us = statistics.median(over["tree", case]) / 1000
        change = statistics.median(ratio[case])
        print(f"  {label:<22} {ref_us:>14.2f} {tree_us:>15.2f} {change:>8.3f}x")
    for name in codecs["ref"]:
        print(f"  {'codec ' + name:<22} {'':>14} {'':>15} {statistics.median(ratio[name]):>8.3f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="main", help="git ref of the 'ref' side (main)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=2000, help="per case per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asgisession-ref-") as where:
        import_ref(args.ref, Path(where))
        ref_package = importlib.import_module("asgisession_ref")
        asyncio.run(main(ref_package, args.rounds, args.requests))
