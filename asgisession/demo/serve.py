"""``python -m asgisession demo``: pick a store, get a secret, serve the demo with uvicorn.

This module imports nothing beyond the standard library until the demo starts, so the
command line stays fast and works without the ``demo`` extra (which it then asks for).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from ..stores.base import Store

__all__ = ["DEFAULT_SQLITE_PATH", "StoreChoice", "add_demo_parser", "parse_store", "run_demo"]

#: Where ``--store sqlite`` (the default) keeps its sessions.
DEFAULT_SQLITE_PATH = Path(tempfile.gettempdir()) / "asgisession-demo.sqlite3"

_STORE_HELP = (
    "cookie, sqlite (a file in the temporary directory), sqlite:///PATH, "
    "redis://HOST[:PORT][/DB] or memcached://HOST[:PORT] (default: sqlite)"
)
_EPILOG = """\
The secret comes from $SECRET_KEY_BASE (or the file named by $SECRET_KEY_BASE_FILE); without
either, a random one is made for this run, so sessions end when the demo stops.
Needs the demo extra: pip install 'asgisession[demo]' (plus [redis] or [memcached] for those).

examples:
  python -m asgisession demo
  python -m asgisession demo --store cookie --port 9000
  python -m asgisession demo --store redis://127.0.0.1:6379/0
"""


@dataclass(frozen=True)
class StoreChoice:
    """A parsed ``--store``: its kind and where it lives (a path or a URL)."""

    kind: str  # "cookie", "sqlite", "redis" or "memcached"
    where: str = ""

    def describe(self) -> str:
        """One line for the page and the console."""
        if self.kind == "cookie":
            return "the cookie (encrypted; the whole session travels in it)"
        name = {"sqlite": "SQLite file", "redis": "Redis", "memcached": "memcached"}[self.kind]
        return f"{name} {self.where} (the cookie holds only a sealed session id)"

    def open(self) -> Store | None:
        """The store object, from :func:`asgisession.stores.from_url`; ``None`` for cookies.

        Nothing connects until first use.
        """
        from .. import stores  # the adapters import their client on first use

        if self.kind == "cookie":
            return None
        if self.kind == "sqlite":
            # The demo's sqlite:///PATH has always meant the absolute PATH; the library's
            # URL for it has a fourth slash (sqlite:////PATH).
            return stores.from_url("sqlite:///" + quote(self.where))
        return stores.from_url(self.where)


def parse_store(text: str) -> StoreChoice:
    """Parse ``--store``; a value it cannot use is an argparse error (exit code 2)."""
    if text in ("cookie", "sqlite"):
        return StoreChoice(text, str(DEFAULT_SQLITE_PATH) if text == "sqlite" else "")
    try:
        url = urlsplit(text)
        url.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}; use {_STORE_HELP}") from None
    if url.scheme == "sqlite" and url.path and not url.netloc:
        return StoreChoice("sqlite", url.path)
    if url.scheme in ("redis", "rediss") and url.hostname:
        return StoreChoice("redis", text)
    if url.scheme == "memcached" and url.hostname and url.path in ("", "/"):
        return StoreChoice("memcached", text)
    raise argparse.ArgumentTypeError(f"{text!r} is not a store the demo knows; use {_STORE_HELP}")


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
    return int(text)


def add_demo_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command to the command line's subcommands."""
    demo = commands.add_parser(
        "demo",
        help="serve a small app that shows sessions, flash, CSRF and logout at work",
        description=(
            "Serve (on 127.0.0.1 unless --host says otherwise) a small app wrapped in\n"
            "SessionMiddleware and CSRFMiddleware: log in and out, flash messages, a CSRF-\n"
            "protected form, the cookie's size against the 4096-byte limit, and log out\n"
            "everywhere. Ctrl-C stops it."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--store", type=parse_store, default="sqlite", help=_STORE_HELP)
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    demo.add_argument("--port", type=_port, default=8000, help="port to listen on (8000)")


def _secret() -> str | list[str]:
    """The secrets from the environment; a random one, with a warning, when none is set."""
    if "SECRET_KEY_BASE" in os.environ or "SECRET_KEY_BASE_FILE" in os.environ:
        from ..config import secret_key_base_from_env

        return secret_key_base_from_env()
    print(
        "warning: SECRET_KEY_BASE is not set, so this run uses a random secret: sessions end "
        "when the demo stops. Make a lasting one with `python -m asgisession secret`.",
        file=sys.stderr,
    )
    return secrets.token_hex(64)


def run_demo(args: argparse.Namespace) -> int:
    """Serve the demo until Ctrl-C; return the exit code.

    0 after Ctrl-C, 2 for a setup problem (no uvicorn, a missing store client, a bad
    secret); uvicorn itself exits with 3 when the store does not answer at startup.
    """
    try:
        import uvicorn
    except ImportError:
        print(
            "asgisession: error: the demo is served by uvicorn, which is not installed: "
            "pip install 'asgisession[demo]'",
            file=sys.stderr,
        )
        return 2
    from ..errors import ConfigurationError
    from .app import build_app

    choice: StoreChoice = args.store
    try:
        app = build_app(_secret(), choice.open(), description=choice.describe())
    except (ConfigurationError, ImportError) as exc:
        print(f"asgisession: error: {exc}", file=sys.stderr)
        return 2
    url = f"http://{args.host}:{args.port}/"
    print(f"asgisession demo: {url}  (store: {choice.describe()}; Ctrl-C stops it)", flush=True)
    config = uvicorn.Config(app, host=args.host, port=args.port, lifespan="on")
    server = uvicorn.Server(config)
    # uvicorn shuts down cleanly on Ctrl-C (the lifespan closes the stores), then re-raises it
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else 1
