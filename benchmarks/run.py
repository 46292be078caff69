"""The benchmark suite: asgisession next to its Python peers and the raw floor, in one run.

    python -m benchmarks.run [--quick] [--only SECTION ...] [--targets] [--out DIR]

(``tox -e bench`` runs it with the ``bench`` dependency group; ``asgisession bench`` runs
it from a source checkout.) Sections, each its own module:

codec (bench_codec.py)
    encode and decode of a 50 B, 1 KB and 3 KB session: asgisession, Starlette, Litestar,
    aiohttp-session, Django, and the primitives.
middleware (bench_middleware.py)
    the cost per request in-process: bare app, pass-through floor, and four session
    middlewares in four scenarios.
stores (bench_stores.py)
    each asgisession store against its raw client: load/save latency percentiles and
    throughput with 50 concurrent tasks; starts redis-server and memcached itself.
e2e (bench_e2e.py)
    requests/s and p99 through uvicorn on 127.0.0.1 with a load generator.

It prints each section's figures with the peers side by side, and the ratios. ``--targets``
grades the ratios against the project's own targets (issue #5: met or MISSED), for the
project's runs (``tox -e bench``); a user comparing libraries does not need them.

Writes ``bench.json`` (every sample, the machine, the targets), ``bench.md`` (the summary)
and, with ``--targets``, ``ratios.png`` (the chart of the targets) into ``--out`` (default
``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from . import bench_codec, bench_e2e, bench_middleware, bench_stores, report
from .harness import Mode, Progress, SectionResult

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
SECTIONS: dict[str, Callable[[Mode, Progress], SectionResult]] = {
    "codec": bench_codec.run,
    "middleware": lambda mode, progress: asyncio.run(bench_middleware.run(mode, progress)),
    "stores": lambda mode, progress: asyncio.run(bench_stores.run(mode, progress)),
    "e2e": bench_e2e.run,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="asgisession's benchmark suite: peers, raw floor, ratios and targets.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run of under a minute (numbers are rough)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SECTIONS),
        metavar="SECTION",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="end to end: wrk, the asyncio generator, or wrk when on PATH (default)",
    )
    parser.add_argument(
        "--http",
        choices=("h11", "httptools"),
        default="h11",
        help="end to end: uvicorn's HTTP parser; h11 (default, pure Python) or httptools "
        "(what uvicorn[standard] installs, as most deployments run it)",
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="end to end: uvicorn's event loop; asyncio (default) or uvloop (what "
        "uvicorn[standard] installs: with --http httptools, the server most deployments run)",
    )
    parser.add_argument(
        "--targets",
        action="store_true",
        help="grade the ratios against the project's own targets (issue #5): met or MISSED, "
        "and the chart ratios.png",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = Mode.make(args.quick, args.loadgen, args.http, args.loop)
    progress = Progress()
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    results: list[SectionResult] = []
    for name in args.only or list(SECTIONS):
        result = SECTIONS[name](mode, progress)
        progress.clear()
        for reason in result.skipped:
            progress.note(f"{name}: skipped {reason}")
        print(report.section_table(result, graded=args.targets), flush=True)
        results.append(result)
    elapsed = time.perf_counter() - started
    document = report.document(results, mode, command.strip(), started_at, elapsed)
    paths = report.write(document, results, args.out, graded=args.targets)
    if args.targets:
        print(report.targets_table(results))
    print(f"\n{elapsed:.0f} s; wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
