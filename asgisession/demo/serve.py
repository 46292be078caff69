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
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    from ..stores.base import Store

__all__ = ["DEFAULT_SQLITE_PATH", "StoreChoice", "add_demo_parser", "parse_store", "run_demo"]

#: Where ``--store sqlite`` (the default) keeps its sessions.
DEFAULT_SQLITE_PATH = Path(tempfile.gettempdir()) / "asgisession-demo.sqlite3"

_STORE_HELP = (
    "cookie, sqlite (a file in the temporary directory), sqlite:///RELATIVE/PATH or "
    "sqlite:////ABSOLUTE/PATH, redis://HOST[:PORT][/DB] or memcached://HOST[:PORT] "
    "(default: sqlite)"
)
_EPILOG = """\
A --store URL means what it means to asgisession.stores.from_url (one rule for both): for
SQLite the path follows the third slash, so sqlite:///demo.db is ./demo.db and
sqlite:////tmp/demo.db is /tmp/demo.db. The query may set the store's options
(redis://127.0.0.1:6379/0?namespace=demo:).

The secret comes from $SECRET_KEY_BASE (or the file named by $SECRET_KEY_BASE_FILE); without
either, a random one is made for this run, so sessions end when the demo stops.
./scripts/demo installs everything the demo needs into the checkout's .venv, every store
client included; elsewhere it needs uvicorn, and the client of the store it is given (the
error says the pip command).

examples:
  python -m asgisession demo
  python -m asgisession demo --store cookie --port 9000
  python -m asgisession demo --store sqlite:///demo.db
  python -m asgisession demo --store redis://127.0.0.1:6379/0
  python -m asgisession demo --store memcached://127.0.0.1:11211
"""


@dataclass(frozen=True)
class StoreChoice:
    """A parsed ``--store``: its kind and the URL :func:`asgisession.stores.from_url` takes."""

    kind: str  # "cookie", "sqlite", "redis" or "memcached"
    url: str = ""

    def describe(self) -> str:
        """One line for the page and the console."""
        if self.kind == "cookie":
            return "the cookie (encrypted; the whole session travels in it)"
        name = {"sqlite": "SQLite", "redis": "Redis", "memcached": "memcached"}[self.kind]
        where = self.url
        if self.kind == "sqlite":  # the file, as the store resolves it
            where = "file " + str(Path(unquote(urlsplit(self.url).path[1:])).resolve())
        return f"{name} {_redact(where)} (the cookie holds only a sealed session id)"

    def open(self) -> Store | None:
        """The store object, from :func:`asgisession.stores.from_url`; ``None`` for cookies.

        Nothing connects until first use.

        :raises ConfigurationError: for a URL the store cannot use (naming the wrong part).
        :raises ImportError: when the store's client is not installed (with the pip command).
        """
        from .. import stores  # the adapters import their client on first use

        if self.kind == "cookie":
            return None
        return stores.from_url(self.url)


def _redact(text: str) -> str:
    from ..stores._urls import redact

    return redact(text)


def parse_store(text: str) -> StoreChoice:
    """Parse ``--store``: a kind by name, or a store URL.

    Only the scheme is checked here (an argparse error, exit code 2); the rest of the URL is
    the store's to judge, in :meth:`StoreChoice.open`, by the rules of
    :func:`asgisession.stores.from_url`, so the demo and the library read a URL one way.
    """
    if text == "cookie":
        return StoreChoice("cookie")
    if text == "sqlite":
        return StoreChoice("sqlite", "sqlite:///" + quote(str(DEFAULT_SQLITE_PATH)))
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    kind = {"sqlite": "sqlite", "redis": "redis", "rediss": "redis", "memcached": "memcached"}
    if scheme not in kind:
        raise argparse.ArgumentTypeError(
            f"{_redact(text)!r} is not a store the demo knows; use {_STORE_HELP}"
        )
    return StoreChoice(kind[scheme], text)


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
        from ..errors import install_hint

        print(
            "asgisession: error: the demo is served by uvicorn, which is not installed: "
            + install_hint("demo", "uvicorn>=0.30"),
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
