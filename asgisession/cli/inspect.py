"""``asgisession inspect``: open a session cookie as the app would, and say what is inside.

A cookie session's data, or a server-side session's record (``--store URL``), is read by
:func:`~asgisession.cli.opening.open_session`, with :class:`~asgisession.sessions.Sessions`
(the public API built on the middleware's own backends). What the
backends do not report is read from the seal: which secret opened it, and, for a refusal,
the reason in words (:data:`~asgisession.cli.report.ADVICE`). Only the diagnosis of *why* a
cookie failed reads header fields the codec refused: a key id from a frame under an unknown
key is unauthenticated, and is shown only as such.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from .. import serializer, stores
from ..backends.base import SealedCookie
from ..backends.server import NAMESPACE, SESSION_ID_BYTES, session_key
from ..config import secret_key_base_from_env
from ..cookies import CookieOptions
from ..crypto import HEADER, HEADER_SIZE, CookieFormat, Keyring
from ..crypto import b64url_decode as _b64url_decode
from ..errors import ConfigurationError, InvalidMessage, RejectReason, StoreUnavailable
from ..formats import resolve_format
from ..rails import RailsCookies
from ..rails_codecs import NO_EXPIRY
from ..stores.base import Store
from .opening import open_session
from .paste import clean_rails_value, clean_value
from .report import KeyInfo, Report, print_report

__all__ = ["add_parser", "inspect_cookie", "run"]

EXAMPLE_COOKIE = "AQx9...Qk"

WHEN_NO_KEY_IS_SET = (
    "no secret to open the cookie with: pass the app's own secret_key_base with --secret "
    "(repeat it for a rotation list, newest first), or set $SECRET_KEY_BASE or "
    "$SECRET_KEY_BASE_FILE as the app has them. A new secret would not open the app's cookies."
)

_EPILOG = f"""\
The secret comes from --secret (repeat it for a rotation list, newest first), or else
from $SECRET_KEY_BASE or the file named by $SECRET_KEY_BASE_FILE: the app's own, since no
other secret opens its cookies. The value may be pasted with its "name=" prefix and with
quotes. Values are hidden unless --show-values is given (they may be personal data, and
_csrf_token is a secret); keys, the type of each value and its size are always shown.

examples:
  python -m asgisession inspect 'session={EXAMPLE_COOKIE}'
  python -m asgisession inspect --show-values 'session={EXAMPLE_COOKIE}'
  python -m asgisession inspect --store redis://127.0.0.1:6379/0 'session={EXAMPLE_COOKIE}'
  python -m asgisession inspect --store sqlite:///sessions.db --show-values '{EXAMPLE_COOKIE}'
  python -m asgisession inspect --secret NEW --secret OLD --json '{EXAMPLE_COOKIE}'
  python -m asgisession inspect --format signed --idle-timeout 1800 '{EXAMPLE_COOKIE}'
  python -m asgisession inspect --format rails-sha256 '_myapp_session=<value>'
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``inspect`` subcommand and its options."""
    inspect = commands.add_parser(
        "inspect",
        help="open a session cookie and show what is inside, or why it does not open",
        description=(
            "Open a session cookie as the middleware would: show its keys, their types and\n"
            "sizes, its size against the 4096-byte limit, when it was issued and expires,\n"
            "and which secret opened it; or the exact reason it does not open, and what to\n"
            "check. With --store, a server-side session's record is read from the store."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inspect.add_argument("value", metavar="COOKIE_VALUE", help="the cookie value")
    inspect.add_argument(
        "--secret",
        action="append",
        metavar="SECRET",
        help="the app's secret_key_base; repeat for rotation, newest first (default: "
        "$SECRET_KEY_BASE or $SECRET_KEY_BASE_FILE)",
    )
    inspect.add_argument(
        "--cookie-name",
        metavar="NAME",
        help='the cookie name, which is also its purpose (default: "session", or the '
        '"name=" prefix of the value)',
    )
    inspect.add_argument(
        "--format",
        choices=("encrypted", "signed", "rails-sha1", "rails-sha256"),
        default="encrypted",
        help="the cookie_format the app uses (default: encrypted); rails-sha1 or "
        "rails-sha256 for a Rails session cookie (RailsCookies(digest=...))",
    )
    inspect.add_argument(
        "--idle-timeout",
        type=_positive_int,
        metavar="SECONDS",
        help="the app's idle_timeout, to check it too",
    )
    inspect.add_argument(
        "--store",
        metavar="URL",
        help="the app's server-side store, to read the session's record: sqlite:///PATH, "
        "redis://..., memcached://... (as asgisession.stores.from_url takes it)",
    )
    inspect.add_argument(
        "--show-values", action="store_true", help="show the session's values, not only its keys"
    )
    inspect.add_argument("--json", action="store_true", help="print one JSON object")


async def inspect_cookie(
    value: str,
    *,
    keyring: Keyring,
    cookie_format: CookieFormat,
    cookie_name: str,
    now: int,
    idle_timeout: int | None = None,
    store: Store | None = None,
    show_values: bool = False,
) -> Report:
    """Open ``value`` as the middleware would, and say what is inside or why it failed.

    :raises ConfigurationError: when ``cookie_name`` is not a valid cookie name.
    :raises StoreUnavailable: when ``store`` does not answer.
    """
    report = Report(cookie_name, len(cookie_name.encode()) + len(value.encode()))
    codec = cookie_format.session_codec(keyring)
    report.show_values = show_values
    sealed = SealedCookie(
        codec, CookieOptions(name=cookie_name), lifetime=1, idle_timeout=idle_timeout,
        refresh_after=None, user_key=None, serializer=serializer.JSON,
    )  # fmt: skip
    try:
        opened = sealed._open_sealed(value, now)
    except InvalidMessage as exc:
        _refused(report, exc.reason, str(exc))
        _explain(report, value, keyring)
        return report
    report.key_index, report.stale = opened.key_index, opened.stale
    report.key_id = keyring.generators[opened.key_index].key_id.hex()
    report.issued_at, report.expires_at = opened.issued_at, opened.expires_at
    if not codec.records_issued_at:  # Rails' format has no issue time
        report.issued_at = None
        report.expires_at = None if opened.expires_at >= NO_EXPIRY else opened.expires_at
    is_id = len(opened.payload) == SESSION_ID_BYTES and not _is_json(opened.payload)
    report.kind = "server-session-id" if is_id else "cookie-session"
    if is_id:
        report.store_key = session_key(opened.payload, NAMESPACE)
        if store is None:
            report.ok = True
            return report
        report.store = repr(store)
        prefix = getattr(store, "namespace", None)
        if isinstance(prefix, str):
            report.server_key = prefix + report.store_key
    session, info = await open_session(
        value, keyring=keyring, cookie_format=cookie_format, cookie_name=cookie_name,
        now=now, idle_timeout=idle_timeout, store=store if is_id else None,
    )  # fmt: skip
    if info.rejection is not None:
        detail = "" if info.rejection is not RejectReason.BAD_PAYLOAD else "not a JSON object"
        _refused(report, info.rejection, detail)
        return report
    report.ok = report.has_data = True
    data = dict(session)
    sizes = dict(serializer.sizes_by_key(data))
    report.keys = [
        KeyInfo(key, _type_name(data[key]), size, data[key])
        for key, size in sorted(sizes.items(), key=lambda item: item[1], reverse=True)
    ]
    return report


def _is_json(payload: bytes) -> bool:
    """Whether a payload is a session's JSON (a cookie session may be 32 bytes, as an id is)."""
    try:
        serializer.JSON.loads(payload)
    except ValueError:
        return False
    return True


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _refused(report: Report, reason: RejectReason, text: str) -> None:
    prefix = f"{reason.value}: "
    report.reason = reason
    report.detail = text[len(prefix) :] if text.startswith(prefix) else text
    if report.detail == reason.value:
        report.detail = ""


def _explain(report: Report, value: str, keyring: Keyring) -> None:
    """Add the header fields that explain a failure (the times only once authentic)."""
    report.known_key_ids = [g.key_id.hex() for g in keyring.generators]
    if report.reason in (RejectReason.MALFORMED, RejectReason.NON_CANONICAL):
        return
    if report.reason is RejectReason.OVERSIZED:
        return
    try:
        frame = _b64url_decode(value)
    except InvalidMessage:  # pragma: no cover - the codec decoded it already
        return
    if len(frame) < HEADER_SIZE:  # pragma: no cover - the codec checked the length
        return
    _, key_id, _, issued_at, expires_at = HEADER.unpack(frame[:HEADER_SIZE])
    report.found_key_id = key_id.hex()
    if report.reason in (RejectReason.UNKNOWN_KEY, RejectReason.BAD_TAG):
        return  # nothing past the key id is known to be genuine
    index = keyring.lookup(key_id)
    report.key_index = index
    report.key_id = key_id.hex()
    report.issued_at, report.expires_at = issued_at, expires_at


def _error(message: object) -> int:
    print(f"asgisession: error: {message}", file=sys.stderr)
    return 2


def _open_store(url: str) -> Store:
    """The store ``--store`` names; a SQLite file must exist (opening would create it)."""
    store = stores.from_url(url)
    path = getattr(store, "path", None)
    if url.lower().startswith("sqlite:") and path is not None and not Path(path).is_file():
        raise ConfigurationError(
            f"--store {url!r}: no such file {str(Path(path).resolve())!r} (sqlite:///PATH is "
            "relative to this directory, sqlite:////PATH absolute)."
        )
    return store


def run(args: argparse.Namespace) -> int:
    """Run ``inspect``: 0 opened, 1 not opened, 2 a usage or configuration error."""
    if not args.secret and not (
        "SECRET_KEY_BASE" in os.environ or "SECRET_KEY_BASE_FILE" in os.environ
    ):
        return _error(WHEN_NO_KEY_IS_SET)
    try:
        keyring = Keyring(args.secret or secret_key_base_from_env())
    except ConfigurationError as exc:
        return _error(exc)
    rails = args.format.startswith("rails-")
    prefix, value = clean_rails_value(args.value) if rails else clean_value(args.value)
    cookie_name = args.cookie_name or prefix or "session"
    cookie_format: CookieFormat = (
        RailsCookies(digest=args.format[len("rails-") :]) if rails else resolve_format(args.format)
    )
    now = int(time.time())

    async def inspect() -> Report:
        store = _open_store(args.store) if args.store else None
        try:
            return await inspect_cookie(
                value, keyring=keyring, cookie_format=cookie_format,
                cookie_name=cookie_name, now=now, idle_timeout=args.idle_timeout,
                store=store, show_values=args.show_values,
            )  # fmt: skip
        finally:
            if store is not None:
                await store.aclose()

    try:
        report = anyio.run(inspect)
    except (ConfigurationError, ImportError) as exc:  # a bad --cookie-name or --store
        return _error(exc)
    except StoreUnavailable as exc:
        return _error(f"the store did not answer: {exc}")
    if args.json:
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    else:
        print_report(report, now, sys.stdout)
    return 0 if report.ok else 1
