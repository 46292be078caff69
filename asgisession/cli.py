"""``python -m asgisession``: make a secret, or look inside a session cookie.

Exit codes: 0 the cookie opened (or the command succeeded), 1 it could not be opened (the
reason is shown), 2 a usage or configuration error (shown as one line).

Only the diagnosis of *why* a cookie failed reads header fields the codec refused: a key
id from a frame under an unknown key is unauthenticated, and is shown only as such.

It runs past 300 lines because ``inspect`` explains every refusal in words of its own (the
advice table) for text and JSON output.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO
from urllib.parse import quote

from . import _bench, serializer
from .backends.base import SealedCookie
from .backends.server import SESSION_ID_BYTES, session_key
from .config import secret_key_base_from_env
from .cookies import MAX_COOKIE_SIZE, CookieOptions
from .crypto import HEADER, HEADER_SIZE, CookieFormat, Keyring, MessageCodec
from .crypto import b64url_decode as _b64url_decode
from .demo.serve import add_demo_parser, run_demo
from .errors import ConfigurationError, InvalidMessage, RejectReason
from .formats import resolve_format
from .rails import RailsCookies
from .rails_codecs import NO_EXPIRY

__all__ = ["ADVICE", "main"]

#: One line of what to check, per reason a cookie does not open.
ADVICE: dict[RejectReason, str] = {
    RejectReason.MALFORMED: (
        "not a value asgisession wrote: copy the whole value, and check --format "
        "(encrypted, signed, or rails-sha1 / rails-sha256 for a Rails app's cookie)."
    ),
    RejectReason.NON_CANONICAL: (
        "the base64 was re-encoded (padding or trailing bits): copy the value exactly as "
        "the browser sent it, without URL-decoding it."
    ),
    RejectReason.UNKNOWN_KEY: "the secret that sealed it is not in your list: was it rotated out?",
    RejectReason.BAD_TAG: (
        "the value was changed or cut short after it was sealed: copy it again in full."
    ),
    RejectReason.WRONG_PURPOSE: (
        "it was sealed for another cookie: check --cookie-name (the purpose is the cookie name)."
    ),
    RejectReason.EXPIRED: (
        "past its absolute lifetime: the user must log in again (raise `lifetime` if too soon)."
    ),
    RejectReason.ISSUED_IN_FUTURE: (
        "issued over a minute ahead of this machine's clock: check the servers' clocks (NTP); "
        "if they agree, someone holding the secret sealed it: replace the secret."
    ),
    RejectReason.IDLE_TIMEOUT: (
        "unused for longer than --idle-timeout: check it matches the app's idle_timeout."
    ),
    RejectReason.BAD_PAYLOAD: (
        "authentic, but not a JSON object: another program may share this secret and name."
    ),
    RejectReason.OVERSIZED: (
        f"over the {MAX_COOKIE_SIZE}-byte limit browsers keep, so asgisession never wrote it: "
        "check that only one cookie value was copied."
    ),
}

_EXAMPLE_COOKIE = "AQx9...Qk"


@dataclass
class Report:
    """What ``inspect`` found; ``as_json`` gives the stable keys scripts rely on."""

    cookie_name: str
    size: int
    ok: bool = False
    reason: RejectReason | None = None
    detail: str = ""
    kind: str | None = None
    key_index: int | None = None
    stale: bool | None = None
    key_id: str | None = None
    issued_at: int | None = None
    expires_at: int | None = None
    keys: list[tuple[str, int]] = field(default_factory=list)
    store_key: str | None = None
    found_key_id: str | None = None
    known_key_ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The report as one JSON-ready object."""
        return {
            "ok": self.ok,
            "reason": None if self.reason is None else self.reason.value,
            "advice": None if self.reason is None else ADVICE[self.reason],
            "detail": self.detail or None,
            "cookie_name": self.cookie_name,
            "size": self.size,
            "limit": MAX_COOKIE_SIZE,
            "kind": self.kind,
            "key_index": self.key_index,
            "stale": self.stale,
            "key_id": self.key_id,
            "issued_at": _iso(self.issued_at),
            "expires_at": _iso(self.expires_at),
            "keys": [{"key": key, "bytes": n} for key, n in self.keys],
            "store_key": self.store_key,
            "found_key_id": self.found_key_id,
            "known_key_ids": self.known_key_ids,
        }


def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def relative(ts: int, now: int) -> str:
    """``"in 3 days"`` or ``"2 hours ago"``: the largest whole unit of the distance."""
    delta = ts - now
    amount = abs(delta)
    for unit, seconds in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if amount >= seconds or unit == "second":
            count = amount // seconds
            text = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {text}" if delta > 0 else ("now" if delta == 0 else f"{text} ago")
    raise AssertionError("unreachable")  # pragma: no cover


def clean_value(raw: str) -> tuple[str | None, str]:
    """Split a pasted cookie into (name or ``None``, value): quotes, spaces, ``;`` dropped."""
    text = raw.strip().strip(";").strip().strip("\"'").strip()
    # Unpadded base64url never contains "=", so one followed by more than padding means a
    # "name=" prefix; a value that only ends in "=" is kept whole (and reported non_canonical).
    name, sep, rest = text.partition("=")
    if not sep or not rest.strip("="):
        return None, text
    return name.strip(), rest.strip().strip(";").strip().strip("\"'").strip()


def clean_rails_value(raw: str) -> tuple[str | None, str]:
    """:func:`clean_value` for a Rails cookie, pasted escaped (``%2B``) or not (``+``)."""
    text = raw.strip().strip(";").strip().strip("\"'").strip()
    name, sep, rest = text.partition("=")
    # Base64 padding is followed by more padding, "--" or the end; a name by its value.
    if sep and rest and rest[0] not in "=-" and "--" not in name:
        text = rest.strip().strip(";").strip().strip("\"'").strip()
    else:
        name = ""
    # Unescaped base64 ("+", "/", "=") is escaped as the browser would carry it.
    if any(char in text for char in "+/="):
        text = quote(text, safe="*%")
    return (name.strip() or None), text


def inspect_cookie(
    value: str,
    *,
    keyring: Keyring,
    codec: MessageCodec,
    cookie_name: str,
    now: int,
    idle_timeout: int | None = None,
) -> Report:
    """Open ``value`` as the middleware would, and say what is inside or why it failed.

    :raises ConfigurationError: when ``cookie_name`` is not a valid cookie name.
    """
    report = Report(cookie_name, len(cookie_name.encode()) + len(value.encode()))
    sealed = _SealedCookie(codec, cookie_name, idle_timeout)
    try:
        opened = sealed._open_sealed(value, now)
        report.key_index, report.stale = opened.key_index, opened.stale
        report.key_id = keyring.generators[opened.key_index].key_id.hex()
        report.issued_at, report.expires_at = opened.issued_at, opened.expires_at
        if not codec.records_issued_at:  # Rails' format has no issue time
            report.issued_at = None
            report.expires_at = None if opened.expires_at >= NO_EXPIRY else opened.expires_at
        try:
            data = serializer.loads(opened.payload)
        except ValueError as exc:
            if len(opened.payload) == SESSION_ID_BYTES:
                report.ok, report.kind = True, "server-session-id"
                report.store_key = session_key(opened.payload)
                return report
            raise InvalidMessage(RejectReason.BAD_PAYLOAD, str(exc)) from None
    except InvalidMessage as exc:
        prefix = f"{exc.reason.value}: "
        text = str(exc)
        report.reason = exc.reason
        report.detail = text[len(prefix) :] if text.startswith(prefix) else ""
        _explain(report, value, keyring)
        return report
    report.ok, report.kind = True, "cookie-session"
    report.keys = serializer.sizes_by_key(data)
    return report


class _SealedCookie(SealedCookie):
    """The backends' own rules for opening their cookie (size, seal, idle timeout)."""

    def __init__(self, codec: MessageCodec, cookie_name: str, idle_timeout: int | None) -> None:
        self.codec = codec
        self.cookie = CookieOptions(name=cookie_name)
        self.idle_timeout = idle_timeout
        self._refresh_after = None


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


def _print_report(report: Report, now: int, out: TextIO) -> None:
    def line(label: str, text: str) -> None:
        print(f"  {label:<9} {text}", file=out)

    def when(ts: int | None) -> str:
        return "-" if ts is None else f"{_iso(ts)} ({relative(ts, now)})"

    if report.ok:
        kind = (
            "a server-side session id (the data is in the store)"
            if report.kind == "server-session-id"
            else "a cookie session"
        )
        print(f"cookie {report.cookie_name!r}: opened, {kind}", file=out)
    else:
        assert report.reason is not None
        print(
            f"cookie {report.cookie_name!r}: not opened: {report.reason.value}"
            + (f" ({report.detail})" if report.detail else ""),
            file=out,
        )
    line("size", f"{report.size} of {MAX_COOKIE_SIZE} bytes (name + value)")
    if report.key_index is not None:
        if report.key_index != 0:
            age = "older: re-sealed on next use"
        elif report.stale:  # the newest secret, but a digest or format that is only read
            age = "newest, in a format only read: re-sealed on next use"
        else:
            age = "newest"
        line("key", f"index {report.key_index} ({age}), key id {report.key_id}")
    if report.issued_at is not None:
        line("issued", when(report.issued_at))
    if report.issued_at is not None or report.expires_at is not None:
        line("expires", when(report.expires_at))
    if report.store_key is not None:
        line("store key", report.store_key)
    if report.kind == "cookie-session":
        line("keys", f"{len(report.keys)}, bytes of JSON each:")
        width = max((len(key) for key, _ in report.keys), default=0)
        for key, n in report.keys:
            print(f"    {key:<{width}}  {n} B", file=out)
    if report.reason is RejectReason.UNKNOWN_KEY:
        line("key id", f"{report.found_key_id} in the cookie (unauthenticated)")
        line("yours", ", ".join(report.known_key_ids))
    if report.reason is not None:
        line("check", ADVICE[report.reason])


_DESCRIPTION = (
    "Tools for asgisession: make a secret_key_base, look inside a session cookie, "
    "serve the demo, run the benchmarks."
)
_EPILOG = f"""\
examples:
  python -m asgisession secret
  SECRET_KEY_BASE=... python -m asgisession inspect '{_EXAMPLE_COOKIE}'
  python -m asgisession demo --store cookie
  python -m asgisession bench --quick

exit codes (inspect): 0 opened, 1 could not be opened (the reason is shown);
2 for a usage or configuration error, for every command.
"""
_KEYGEN_EPILOG = """\
example:
  export SECRET_KEY_BASE="$(python -m asgisession secret)"
"""
_INSPECT_EPILOG = f"""\
The secret comes from --secret (repeat it for a rotation list, newest first), or else
from $SECRET_KEY_BASE or the file named by $SECRET_KEY_BASE_FILE. The value may be pasted
with its "name=" prefix and with quotes.

examples:
  python -m asgisession inspect 'session={_EXAMPLE_COOKIE}'
  python -m asgisession inspect --secret NEW --secret OLD --json '{_EXAMPLE_COOKIE}'
  python -m asgisession inspect --format signed --idle-timeout 1800 '{_EXAMPLE_COOKIE}'
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asgisession",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "secret",
        help="print a new random secret_key_base (128 hex characters)",
        description="Print a new random secret_key_base: 64 bytes from `secrets`, as hex.",
        epilog=_KEYGEN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inspect = commands.add_parser(
        "inspect",
        help="open a session cookie and show what is inside, or why it does not open",
        description=(
            "Open a session cookie as the middleware would: show its keys and their sizes,\n"
            "its size against the 4096-byte limit, when it was issued and expires, and which\n"
            "secret opened it; or the exact reason it does not open, and what to check."
        ),
        epilog=_INSPECT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inspect.add_argument("value", metavar="COOKIE_VALUE", help="the cookie value")
    inspect.add_argument(
        "--secret",
        action="append",
        metavar="SECRET",
        help="a secret_key_base; repeat for rotation, newest first (default: the environment)",
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
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    add_demo_parser(commands)
    _bench.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "secret":
        print(secrets.token_hex(64))
        return 0
    if args.command == "demo":
        return run_demo(args)
    if args.command == "bench":
        return _bench.run(args)
    try:
        keyring = Keyring(args.secret or secret_key_base_from_env())
    except ConfigurationError as exc:
        print(f"asgisession: error: {exc}", file=sys.stderr)
        return 2
    rails = args.format.startswith("rails-")
    prefix, value = clean_rails_value(args.value) if rails else clean_value(args.value)
    cookie_name = args.cookie_name or prefix or "session"
    cookie_format: CookieFormat = (
        RailsCookies(digest=args.format[len("rails-") :]) if rails else resolve_format(args.format)
    )
    now = int(time.time())
    try:
        report = inspect_cookie(
            value,
            keyring=keyring,
            codec=cookie_format.session_codec(keyring),
            cookie_name=cookie_name,
            now=now,
            idle_timeout=args.idle_timeout,
        )
    except ConfigurationError as exc:  # a --cookie-name that is no cookie name
        print(f"asgisession: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        _print_report(report, now, sys.stdout)
    return 0 if report.ok else 1
