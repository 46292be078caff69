"""``asgisession secret``: print a new random ``secret_key_base``."""

from __future__ import annotations

import argparse
import secrets

__all__ = ["add_parser", "run"]

_EPILOG = """\
example:
  export SECRET_KEY_BASE="$(python -m asgisession secret)"
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``secret`` subcommand."""
    commands.add_parser(
        "secret",
        help="print a new random secret_key_base (128 hex characters)",
        description="Print a new random secret_key_base: 64 bytes from `secrets`, as hex.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def run(args: argparse.Namespace) -> int:
    """Print 64 random bytes as hex."""
    print(secrets.token_hex(64))
    return 0
