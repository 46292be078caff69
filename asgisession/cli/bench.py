"""``asgisession bench``: run the benchmark suite from a source checkout.

The suite (``benchmarks/``) ships with the source, not with the wheel: it compares
asgisession with other frameworks, which an installed package must not depend on. So
this command finds the checkout the package was imported from, checks that the ``bench``
dependency group is installed, and runs ``python -m benchmarks.run`` there with the same
options, which is what ``tox -e bench`` runs. Anywhere else it says what to do instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

#: What the suite imports beyond asgisession itself (module names of the ``bench`` group).
BENCH_MODULES = (
    "itsdangerous", "starlette", "litestar", "aiohttp_session", "django", "starsessions",
    "uvicorn", "redis", "aiomcache", "aiosqlite", "asyncpg", "matplotlib",
)  # fmt: skip
SECTIONS = ("codec", "middleware", "stores", "e2e")

_NOT_A_CHECKOUT = """\
asgisession bench: the benchmark suite is not part of the installed package; it lives in
the source repository. To run it:
  git clone <the asgisession repository> && cd asgisession
  tox -e bench              # or: tox -e bench -- --quick
or, in a virtualenv there: pip install -e . --group bench && asgisession bench --quick"""


def source_checkout() -> Path | None:
    """The repository root this package was imported from, if it is a source checkout."""
    root = Path(__file__).resolve().parents[2]  # asgisession/cli/bench.py
    if (root / "benchmarks" / "run.py").is_file() and (root / "pyproject.toml").is_file():
        return root
    return None


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``bench`` subcommand and its options (those of ``python -m benchmarks.run``)."""
    bench = commands.add_parser(
        "bench",
        help="run the benchmark suite (from a source checkout; same as tox -e bench)",
        description=(
            "Run the benchmark suite: asgisession next to Starlette, Litestar,\n"
            "aiohttp-session, Django and starsessions, and next to the raw floor: each\n"
            "section's figures with the peers side by side, then the ratios.\n"
            "Needs a source checkout with the `bench` dependency group installed."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("--quick", action="store_true", help="a smoke run of under a minute")
    bench.add_argument(
        "--only", action="append", choices=SECTIONS, metavar="SECTION",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)}",
    )  # fmt: skip
    bench.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="end-to-end load generator (default: wrk when on PATH, else the asyncio one)",
    )
    bench.add_argument(
        "--targets",
        action="store_true",
        help="also grade the ratios against the project's own targets (issue #5), "
        "as its maintainers do",
    )
    bench.add_argument("--out", metavar="DIR", help="output directory (default benchmarks/results)")


def run(args: argparse.Namespace) -> int:
    """Run the suite in the checkout with the parsed options; 2 when it cannot be run here."""
    root = source_checkout()
    if root is None:
        print(_NOT_A_CHECKOUT, file=sys.stderr)
        return 2
    missing = [name for name in BENCH_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"asgisession bench: the `bench` dependency group is not installed (missing: "
            f"{', '.join(missing)}). Run `tox -e bench`, or `pip install --group bench` "
            f"(pip >= 25.1) in {root} first.",
            file=sys.stderr,
        )
        return 2
    argv = [sys.executable, "-m", "benchmarks.run"]
    if args.quick:
        argv.append("--quick")
    for section in args.only or ():
        argv += ["--only", section]
    if getattr(args, "loadgen", "auto") != "auto":
        argv += ["--loadgen", args.loadgen]
    if getattr(args, "targets", False):
        argv.append("--targets")
    if args.out:
        argv += ["--out", str(Path(args.out).resolve())]
    return subprocess.run(argv, cwd=root, check=False).returncode  # noqa: S603 - our own argv
