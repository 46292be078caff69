"""Move between cookie formats without logging anyone out: write one, read several.

``Rotation(write="encrypted", read=[RailsCookies(digest="sha256")])`` opens a cookie in any
of the formats and re-issues it in the writing one on that response; the cookie jar's
signed and encrypted cookies rotate the same way. (Rotating *secrets* within one format is
``secret_key_base=[new, old]``; this is for changing the format itself.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from .crypto import CookieFormat, Keyring, MessageCodec, MessageEncryptor, MessageVerifier, Opened
from .errors import ConfigurationError, InvalidMessage, RejectReason
from .jar import ENCRYPTION_PURPOSE, SIGNING_PURPOSE

__all__ = ["FormatSpec", "RotatingCodec", "Rotation"]

#: A cookie format by name (a native one) or as a :class:`~asgisession.crypto.CookieFormat`.
FormatSpec = Literal["encrypted", "signed"] | CookieFormat


def _check_spec(spec: object) -> None:
    if spec not in ("encrypted", "signed") and (
        isinstance(spec, str) or not hasattr(spec, "session_codec")
    ):
        raise ConfigurationError(
            f"{spec!r} is not a cookie format; use 'encrypted', 'signed' or RailsCookies(...)."
        )


def _resolve(spec: FormatSpec, keyring: Keyring, kind: str) -> MessageCodec:
    """The codec of ``spec`` for the session (``kind="session"``) or a jar kind."""
    if isinstance(spec, str):
        # A native format: the session follows the spec, the jar keeps its own two codecs.
        signed = spec == "signed" if kind == "session" else kind == "signed"
        if kind == "session":
            return MessageVerifier(keyring) if signed else MessageEncryptor(keyring)
        if signed:
            return MessageVerifier(keyring, key_purpose=SIGNING_PURPOSE)
        return MessageEncryptor(keyring, key_purpose=ENCRYPTION_PURPOSE)
    if kind == "session":
        return spec.session_codec(keyring)
    return spec.jar_codec(keyring, "signed" if kind == "signed" else "encrypted")


class RotatingCodec:
    """Seals with one codec, opens with it or any of the others (first success wins).

    A value opened by another codec reports a non-zero ``key_index``, so the session cookie
    is re-issued in the writing format on that response.

    .. versionadded:: 0.2
    """

    def __init__(self, write: MessageCodec, read: Sequence[MessageCodec]) -> None:
        self.write = write
        self.read: tuple[MessageCodec, ...] = tuple(read)
        self.records_issued_at: bool = all(
            getattr(c, "records_issued_at", True) for c in (write, *self.read)
        )

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
            return Opened(
                opened.payload, opened.issued_at, opened.expires_at, max(1, opened.key_index)
            )
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
        ``write``'s format on that response.

    .. versionadded:: 0.2
    """

    def __init__(self, write: FormatSpec, read: Sequence[FormatSpec]) -> None:
        if isinstance(read, str) or not read:
            raise ConfigurationError("Rotation(read=...) takes a non-empty list of formats.")
        self.write = write
        self.read: tuple[FormatSpec, ...] = tuple(read)
        for spec in (write, *self.read):
            _check_spec(spec)  # fail here, not per request

    def session_codec(self, keyring: Keyring) -> MessageCodec:
        """The session cookie's codec: writes ``write``, reads all."""
        return self._codec(keyring, "session")

    def jar_codec(self, keyring: Keyring, kind: Literal["signed", "encrypted"]) -> MessageCodec:
        """The cookie jar's codec of ``kind``: writes ``write``, reads all."""
        return self._codec(keyring, kind)

    def _codec(self, keyring: Keyring, kind: str) -> MessageCodec:
        return RotatingCodec(
            _resolve(self.write, keyring, kind), [_resolve(s, keyring, kind) for s in self.read]
        )

    def __repr__(self) -> str:
        return f"Rotation(write={self.write!r}, read={list(self.read)!r})"
