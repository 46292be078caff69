"""``python -m asgisession``: the command line, one module per command.

- :mod:`.secret`: make a ``secret_key_base``;
- :mod:`.inspect`: open a session cookie (and, with ``--store``, its server-side record)
  as the middleware would, reading it through :mod:`.opening` (a pasted value is cleaned by
  :mod:`.paste`); :mod:`.report` shows it;
- ``demo``: serve the demo app (:mod:`asgisession.demo.serve`);
- :mod:`.bench`: run the benchmark suite from a source checkout.

Exit codes: 0 the command succeeded (for ``inspect``: the cookie opened), 1 the cookie
could not be opened (the reason is shown), 2 a usage or configuration error (one line).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..demo.serve import add_demo_parser, run_demo
from . import bench, inspect, secret
from .inspect import EXAMPLE_COOKIE
from .opening import open_session
from .report import ADVICE, relative

__all__ = ["ADVICE", "main", "open_session", "relative"]

_DESCRIPTION = (
    "Tools for asgisession: make a secret_key_base, look inside a session cookie, "
    "serve the demo, run the benchmarks."
)
_EPILOG = f"""\
examples:
  python -m asgisession secret
  SECRET_KEY_BASE=... python -m asgisession inspect '{EXAMPLE_COOKIE}'
  python -m asgisession demo --store cookie
  python -m asgisession bench --quick

exit codes (inspect): 0 opened, 1 could not be opened (the reason is shown);
2 for a usage or configuration error, for every command.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asgisession",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    secret.add_parser(commands)
    inspect.add_parser(commands)
    add_demo_parser(commands)
    bench.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    runs = {"secret": secret.run, "inspect": inspect.run, "demo": run_demo, "bench": bench.run}
    return runs[args.command](args)
