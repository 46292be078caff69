"""Move between cookie formats without logging anyone out: write one, read several.

``Rotation(write="encrypted", read=[RailsCookies(digest="sha256")])`` opens a cookie in any
of the formats and re-issues it in the writing one on that response; the cookie jar's
signed and encrypted cookies rotate the same way. (Rotating *secrets* within one format is
``secret_key_base=[new, old]``; this is for changing the format itself.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from .crypto import CookieFormat, Keyring, MessageCodec, Opened
from .errors import ConfigurationError, InvalidMessage, RejectReason
from .formats import FormatSpec, resolve_format

__all__ = ["FormatSpec", "RotatingCodec", "Rotation"]


class RotatingCodec:
    """Seals with one codec, opens with it or any of the others (first success wins).

    A value opened by another codec is :attr:`~asgisession.crypto.Opened.stale`, so it is
    re-issued in the writing format on that response.

    .. versionadded:: 0.2
    """

    def __init__(self, write: MessageCodec, read: Sequence[MessageCodec]) -> None:
        self.write = write
        self.read: tuple[MessageCodec, ...] = tuple(read)
        self.records_issued_at: bool = all(c.records_issued_at for c in (write, *self.read))

    def seal(self, payload: bytes, *, purpose: str, issued_at: int, expires_at: int) -> str:
        """Seal with the writing codec."""
        return self.write.seal(payload, purpose=purpose, issued_at=issued_at, expires_at=expires_at)

    def open(self, token: str, *, purpose: str, now: int) -> Opened:
        """Open with the writing codec, then each reading codec in order."""
        reasons: list[InvalidMessage] = []
        for index, codec in enumerate((self.write, *self.read)):
            try:
                opened = codec.open(token, purpose=purpose, now=now)
            except InvalidMessage as exc:
                reasons.append(exc)
                continue
            if index == 0:
                return opened
            return opened._replace(stale=True)
        # The most telling reason: one found after authentication, else the writer's own.
        unauthenticated = {
            RejectReason.MALFORMED, RejectReason.NON_CANONICAL, RejectReason.BAD_TAG,
            RejectReason.UNKNOWN_KEY,
        }  # fmt: skip
        raise next((r for r in reasons if r.reason not in unauthenticated), reasons[0])


class Rotation:
    """Move between cookie formats without logging anyone out: write one, read several.

    ::

        # share with Rails, then move off its format (native cookies, Rails' still read):
        cookie_format=Rotation(write="encrypted", read=[RailsCookies(digest="sha256")])
        # or back (Rails must read what Python writes again):
        cookie_format=Rotation(write=RailsCookies(digest="sha256"), read=["encrypted"])

    Applies to the session cookie and to ``cookies(scope).signed`` / ``.encrypted``.

    :param write: the format new cookies are written in.
    :param read: formats also accepted on read; a cookie in one of them is re-issued in
        ``write``'s format on that response. Another framework's session cookie is one
        too, through a read-only source of :mod:`asgisession.migrate` (e.g.
        ``StarletteCookies(secret_key=...)``): see ``docs/migrating.md``.

    .. versionadded:: 0.2
    """

    def __init__(self, write: FormatSpec, read: Sequence[FormatSpec]) -> None:
        if isinstance(read, str) or not read:
            raise ConfigurationError("Rotation(read=...) takes a non-empty list of formats.")
        self.write = write
        self.read: tuple[FormatSpec, ...] = tuple(read)
        # Resolved here, so a bad format fails at configuration, not per request.
        self._write: CookieFormat = resolve_format(write)
        self._read: tuple[CookieFormat, ...] = tuple(
            resolve_format(spec, reading=True) for spec in read
        )

    def session_codec(self, keyring: Keyring) -> MessageCodec:
        """The session cookie's codec: writes ``write``, reads all."""
        return RotatingCodec(
            self._write.session_codec(keyring), [f.session_codec(keyring) for f in self._read]
        )

    def jar_codec(self, keyring: Keyring, kind: Literal["signed", "encrypted"]) -> MessageCodec:
        """The cookie jar's codec of ``kind``: writes ``write``, reads all."""
        return RotatingCodec(
            self._write.jar_codec(keyring, kind), [f.jar_codec(keyring, kind) for f in self._read]
        )

    def __repr__(self) -> str:
        return f"Rotation(write={self.write!r}, read={list(self.read)!r})"
