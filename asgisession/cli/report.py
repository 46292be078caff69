"""What ``inspect`` found, and how it is shown: as text for people, as JSON for scripts.

Values are shown only when asked (``--show-values``): by default a report names each key,
the type of its value and its size, which is enough to find what makes a cookie large
without copying anyone's data (or their CSRF secret) into a terminal or a ticket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

from ..cookies import MAX_COOKIE_SIZE
from ..errors import RejectReason

__all__ = ["ADVICE", "KeyInfo", "Report", "print_report", "relative"]

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
    RejectReason.NOT_FOUND: (
        "the cookie is genuine but the store has no such session: it ended (logout, "
        "expiry, revoke_user), or --store names another store than the app's."
    ),
}


@dataclass(frozen=True)
class KeyInfo:
    """One key of a session: the type of its value, its bytes of JSON, and the value."""

    key: str
    type: str
    size: int
    value: Any


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
    keys: list[KeyInfo] = field(default_factory=list)
    #: Whether the data was read (a cookie session, or a server one found in ``--store``).
    has_data: bool = False
    show_values: bool = False
    store_key: str | None = None
    #: The store key with the store's own prefix: the key as it is in the server.
    server_key: str | None = None
    store: str | None = None
    found_key_id: str | None = None
    known_key_ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The report as one JSON-ready object (``value`` in ``keys`` only when shown)."""
        return {
            "ok": self.ok,
            "reason": None if self.reason is None else self.reason.value,
            "advice": None if self.reason is None else ADVICE.get(self.reason),
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
            "keys": [
                {"key": k.key, "type": k.type, "bytes": k.size}
                | ({"value": k.value} if self.show_values else {})
                for k in self.keys
            ],
            "store": self.store,
            "store_key": self.store_key,
            "server_key": self.server_key,
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


def print_report(report: Report, now: int, out: TextIO) -> None:
    """The report as lines of text for a terminal."""

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
        if report.server_key is not None and report.server_key != report.store_key:
            line("in server", f"{report.server_key} (with the store's own prefix)")
        if report.store is not None:
            line("store", report.store)
        elif report.ok:
            line("data", "in the store: pass --store URL (the app's store) to read it")
    if report.has_data:
        _print_keys(report, line, out)
    if report.reason is RejectReason.UNKNOWN_KEY:
        line("key id", f"{report.found_key_id} in the cookie (unauthenticated)")
        line("yours", ", ".join(report.known_key_ids))
    if report.reason is not None and report.reason in ADVICE:
        line("check", ADVICE[report.reason])


def _print_keys(report: Report, line: Any, out: TextIO) -> None:
    shown = "" if report.show_values else " (values hidden: --show-values shows them)"
    line("keys", f"{len(report.keys)}: type and bytes of JSON each{shown}")
    width = max((len(k.key) for k in report.keys), default=0)
    type_width = max((len(k.type) for k in report.keys), default=0)
    for k in report.keys:
        value = f"  {json.dumps(k.value, ensure_ascii=False)}" if report.show_values else ""
        print(f"    {k.key:<{width}}  {k.type:<{type_width}}  {k.size:>5} B{value}", file=out)
