"""Rails' cookie wire formats: keys, AES-256-GCM, signed values, the ``_rails`` envelope.

The codecs behind :class:`~asgisession.rails.RailsCookies`, following
``shared/rails/SPEC.md`` (Rails 6.1 to 8.x). Rules, stated once:

1. Keys come from ``secret_key_base`` as Rails derives them: PBKDF2-HMAC (SHA1 for Rails
   6.1 and apps not on ``load_defaults 7.0``, SHA256 after), 1000 iterations, Rails'
   salts. The secret itself never leaves :class:`~asgisession.crypto.KeyGenerator`.
2. Encrypted values are AES-256-GCM, ``b64(ciphertext)--b64(iv)--b64(tag)`` (strict base64,
   12-byte IV, no associated data). Signed values are ``b64(data)--hex(HMAC(b64(data)))``.
   Rails' legacy AES-256-CBC + HMAC-SHA1 values are read (for rotation), never written.
3. Inside is always the envelope ``{"_rails":{"message":...,"exp":...,"pur":...}}``, compact
   and in exactly that key order (Rails 7.1+ recognises it by that byte prefix), with the
   purpose ``cookie.<name>`` and the expiry to the millisecond. A value without an envelope
   (apps with ``use_cookies_with_metadata = false``) is read as Rails reads it: unbound.
4. The value is JSON written as ActiveSupport writes it (``<``, ``>``, ``&``, U+2028, U+2029
   escaped). Ruby Marshal and MessagePack payloads are refused, never decoded.
5. Cookie values are URL-escaped as Rack escapes them (``+`` ``/`` ``=`` become ``%2B``
   ``%2F`` ``%3D``) and unescaped on read, so the sealed string is what a browser carries.
6. Rails records no issue time: ``Opened.issued_at`` is the time of opening, and the codecs
   say so with ``records_issued_at = False`` (the middleware then refuses ``idle_timeout``).

It runs past 300 lines because Rails' formats are several (AES-256-GCM, legacy CBC read-
only, signed, the ``_rails`` envelope) over one key derivation and one escaping.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal
from urllib.parse import quote, unquote_plus

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import serializer
from .crypto import Keyring, Opened
from .errors import ConfigurationError, CookieOverflow, InvalidMessage, RejectReason

__all__ = [
    "NO_EXPIRY",
    "Digest",
    "RailsEncryptor",
    "RailsVerifier",
    "as_json",
    "rails_escape",
    "unwrap",
    "wrap",
]

Digest = Literal["sha1", "sha256"]

#: ``expires_at`` of a Rails value written without expiry (``"exp":null``); sealing it
#: writes ``null`` again, so a Rails session without ``expire_after`` keeps none.
NO_EXPIRY = 253402300799  # 9999-12-31T23:59:59Z
ITERATIONS = 1000
SALT_AUTHENTICATED_ENCRYPTED = b"authenticated encrypted cookie"
SALT_SIGNED = b"signed cookie"
SALT_LEGACY_ENCRYPTED = b"encrypted cookie"
SALT_LEGACY_SIGNED = b"signed encrypted cookie"
IV_SIZE = 12
TAG_SIZE = 16
SESSION_ID_KEY = "session_id"
_ENVELOPE_PREFIX = b'{"_rails":'
_MARSHAL = b"\x04\x08"
_MESSAGE_PACK = b"\xcc\x80"
#: A well-formed hex signature per HMAC digest (checked before any comparison).
_HEX_SIGNATURE = {"sha1": re.compile(r"[0-9a-fA-F]{40}"), "sha256": re.compile(r"[0-9a-fA-F]{64}")}
# ActiveSupport::JSON escapes these five after generating JSON; JSON text can hold them
# only inside strings, so replacing the bytes anywhere is exact.
_AS_JSON_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def check_digest(name: str, label: str) -> Digest:
    """``name`` as a :data:`Digest`, or a :class:`ConfigurationError` naming ``label``."""
    lowered = name.lower() if isinstance(name, str) else ""
    if lowered not in ("sha1", "sha256"):
        raise ConfigurationError(f"{label}={name!r}; use 'sha1' or 'sha256'.")
    return "sha1" if lowered == "sha1" else "sha256"


def rails_escape(value: str) -> str:
    """Escape a cookie value as Rack does (``URI.encode_www_form_component``)."""
    return quote(value, safe="*")


#: Rails 6.1 to 8.0 raise ``CookieOverflow`` when the raw (un-escaped) value passes this
#: (8.1 counts the name too). Our own rule (name plus escaped value, what browsers keep),
#: checked where the cookie is written, is stricter, so what we send passes both.
RAILS_MAX_COOKIE_SIZE = 4096


def _escaped(raw: str, purpose: str) -> str:
    """Rails' overflow rule on the raw value, then Rack's escaping."""
    size = len(raw)
    if size > RAILS_MAX_COOKIE_SIZE:
        raise CookieOverflow(purpose, size, RAILS_MAX_COOKIE_SIZE)
    return rails_escape(raw)


def _strict_b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMessage(RejectReason.MALFORMED, "not strict base64") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def as_json(payload: bytes) -> bytes:
    """JSON bytes as ActiveSupport::JSON spells them (for byte-identical values)."""
    for raw, escaped in _AS_JSON_ESCAPES:
        if raw in payload:
            payload = payload.replace(raw, escaped)
    return payload


def _iso_ms(timestamp: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(timestamp))


def wrap(payload: bytes, *, purpose: str, expires_at: int, metadata: bool = True) -> bytes:
    """The metadata envelope, compact and in Rails' key order ``message, exp, pur``.

    With ``metadata=False``, the bare value, as apps with ``use_cookies_with_metadata =
    false`` write it (bound to no purpose and no expiry).
    """
    if not metadata:
        return as_json(payload)
    exp = "null" if expires_at >= NO_EXPIRY else f'"{_iso_ms(expires_at)}"'
    pur = json.dumps(f"cookie.{purpose}", ensure_ascii=False, separators=(",", ":"))
    message = _b64(as_json(payload))
    return f'{{"_rails":{{"message":"{message}","exp":{exp},"pur":{pur}}}}}'.encode()


def unwrap(plaintext: bytes, *, purpose: str, now: int) -> tuple[bytes, int]:
    """The payload and expiry inside an authentic plaintext, checked as Rails checks them."""
    payload, expires_at = plaintext, NO_EXPIRY
    if plaintext.startswith(_ENVELOPE_PREFIX):
        try:
            envelope = json.loads(plaintext)["_rails"]
            payload = _strict_b64decode(envelope["message"])
            exp, pur = envelope.get("exp"), envelope.get("pur")
        except (ValueError, KeyError, TypeError, InvalidMessage):
            raise InvalidMessage(RejectReason.BAD_PAYLOAD, "broken _rails envelope") from None
        if (pur or "") != f"cookie.{purpose}":
            raise InvalidMessage(RejectReason.WRONG_PURPOSE, f"sealed for {pur!r}")
        if exp is not None:
            expires_at = _parse_exp(exp)
            if now >= expires_at:
                raise InvalidMessage(RejectReason.EXPIRED, f"expired at {exp}")
    if payload.startswith((_MARSHAL, _MESSAGE_PACK)):
        raise InvalidMessage(
            RejectReason.BAD_PAYLOAD,
            "a Ruby Marshal or MessagePack value; asgisession reads JSON only (ask the Rails "
            "team for cookies_serializer = :json or :hybrid)",
        )
    return payload, expires_at


def _parse_exp(exp: object) -> int:
    if not isinstance(exp, str) or not exp.endswith("Z"):
        raise InvalidMessage(RejectReason.BAD_PAYLOAD, f"exp {exp!r} is not an ISO 8601 UTC time")
    try:
        moment = datetime.fromisoformat(exp[:-1])
    except ValueError:
        raise InvalidMessage(RejectReason.BAD_PAYLOAD, f"exp {exp!r} is not a time") from None
    # Whole seconds, rounded down: a value is refused up to a second early, never late.
    return calendar.timegm(moment.timetuple())


class _RailsCodec:
    """What both Rails codecs share: keys per secret and digest, escaping, the envelope."""

    records_issued_at = False

    def __init__(
        self, keyring: Keyring, digests: Sequence[Digest], *, session: bool, metadata: bool
    ) -> None:
        self.keyring = keyring
        self.digests: tuple[Digest, ...] = tuple(digests)
        self._session = session
        self._metadata = metadata

    def _plaintext(self, payload: bytes, purpose: str, expires_at: int) -> bytes:
        return wrap(
            self._payload_for(payload), purpose=purpose, expires_at=expires_at,
            metadata=self._metadata,
        )  # fmt: skip

    def _payload_for(self, payload: bytes) -> bytes:
        """A session payload with Rails' ``session_id`` (CookieStore always writes one)."""
        if not self._session:
            return payload
        try:
            data = serializer.loads(payload)
        except ValueError:
            return payload
        if isinstance(data.get(SESSION_ID_KEY), str):
            return payload
        return serializer.dumps({SESSION_ID_KEY: secrets.token_hex(16), **data})

    def _candidates(self) -> list[tuple[int, int]]:
        """(secret index, digest index) pairs to try, the writing pair first."""
        return [
            (s, d) for s in range(len(self.keyring.generators)) for d in range(len(self.digests))
        ]


class RailsEncryptor(_RailsCodec):
    """Rails' encrypted cookies (``cookies.encrypted`` and the CookieStore session).

    :param keyring: the secrets (Rails has one; more are tried in order on read).
    :param digests: the PBKDF2 digests, the writing one first; the others are read only.
    :param session: add Rails' ``session_id`` to a session that lacks one.
    :param read_legacy_cbc: also read AES-256-CBC + HMAC-SHA1 values (never written).
    :param metadata: write the ``_rails`` envelope (purpose and expiry); ``False`` only to
        reproduce apps on ``use_cookies_with_metadata = false``.
    :param random_bytes: the IV source; **for tests only** (a repeated IV breaks GCM).

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        keyring: Keyring,
        digests: Sequence[Digest] = ("sha1",),
        *,
        session: bool = False,
        read_legacy_cbc: bool = True,
        metadata: bool = True,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__(keyring, digests, session=session, metadata=metadata)
        gens = keyring.generators
        self._aead = [
            [AESGCM(g.pbkdf2(SALT_AUTHENTICATED_ENCRYPTED, 32, d, ITERATIONS)) for d in digests]
            for g in gens
        ]
        self._legacy = (
            [
                [
                    (
                        g.pbkdf2(SALT_LEGACY_ENCRYPTED, 32, d, ITERATIONS),
                        g.pbkdf2(SALT_LEGACY_SIGNED, 64, d, ITERATIONS),
                    )
                    for d in digests
                ]
                for g in gens
            ]
            if read_legacy_cbc
            else None
        )
        self._random = random_bytes

    def seal(self, payload: bytes, *, purpose: str, issued_at: int, expires_at: int) -> str:
        """Encrypt ``payload`` as Rails does, with the newest secret and the first digest."""
        plaintext = self._plaintext(payload, purpose, expires_at)
        iv = self._random(IV_SIZE)
        sealed = self._aead[0][0].encrypt(iv, plaintext, None)
        ct, tag = sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]
        return _escaped(f"{_b64(ct)}--{_b64(iv)}--{_b64(tag)}", purpose)

    def open(self, token: str, *, purpose: str, now: int) -> Opened:
        """Decrypt a Rails value; raise :class:`InvalidMessage` with the reason if it fails."""
        parts = unquote_plus(token).split("--")
        if len(parts) == 2 and self._legacy is not None:
            plaintext, index, stale = self._open_cbc(parts[0], parts[1])
        elif len(parts) == 3:
            ct, iv, tag = (_strict_b64decode(p) for p in parts)
            if len(iv) != IV_SIZE or len(tag) != TAG_SIZE:
                raise InvalidMessage(RejectReason.MALFORMED, "IV or tag of the wrong size")
            plaintext, index, stale = self._open_gcm(ct + tag, iv)
        else:
            raise InvalidMessage(RejectReason.MALFORMED, "not a Rails encrypted value")
        payload, expires_at = unwrap(plaintext, purpose=purpose, now=now)
        return Opened(payload, now, expires_at, index, stale)

    def _open_gcm(self, body: bytes, iv: bytes) -> tuple[bytes, int, bool]:
        for secret, digest in self._candidates():
            try:
                plaintext = self._aead[secret][digest].decrypt(iv, body, None)
            except InvalidTag:
                continue
            return plaintext, secret, bool(secret or digest)
        raise InvalidMessage(RejectReason.BAD_TAG, "no secret and digest opens it")

    def _open_cbc(self, data: str, mac: str) -> tuple[bytes, int, bool]:
        assert self._legacy is not None
        if _HEX_SIGNATURE["sha1"].fullmatch(mac) is None:
            raise InvalidMessage(RejectReason.MALFORMED, "not a Rails legacy encrypted value")
        for secret, digest in self._candidates():
            cipher_key, sign_key = self._legacy[secret][digest]
            expected = hmac.digest(sign_key, data.encode("ascii", "replace"), "sha1").hex()
            if not hmac.compare_digest(expected, mac.lower()):
                continue
            inner = _strict_b64decode(data).decode("ascii", "replace").split("--")
            if len(inner) != 2:
                raise InvalidMessage(RejectReason.BAD_PAYLOAD, "legacy value without an IV")
            ct, iv = (_strict_b64decode(p) for p in inner)
            try:
                decryptor = Cipher(algorithms.AES(cipher_key), modes.CBC(iv)).decryptor()
                padded = decryptor.update(ct) + decryptor.finalize()
                unpadder = padding.PKCS7(128).unpadder()
                plaintext = unpadder.update(padded) + unpadder.finalize()
            except ValueError:
                raise InvalidMessage(
                    RejectReason.BAD_PAYLOAD, "legacy value does not decrypt"
                ) from None
            return plaintext, secret, True  # always re-sealed as GCM
        raise InvalidMessage(RejectReason.BAD_TAG, "no secret and digest verifies it")


class RailsVerifier(_RailsCodec):
    """Rails' signed cookies (``cookies.signed``): readable by the client, not changeable.

    :param keyring: the secrets (Rails has one; more are tried in order on read).
    :param digests: the PBKDF2 digests, the writing one first; the others are read only.
    :param hmac_digest: Rails' ``signed_cookie_digest`` (``"sha1"`` unless configured).
    :param session: add Rails' ``session_id`` to a session that lacks one.
    :param metadata: write the ``_rails`` envelope; see :class:`RailsEncryptor`.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        keyring: Keyring,
        digests: Sequence[Digest] = ("sha1",),
        *,
        hmac_digest: Digest = "sha1",
        session: bool = False,
        metadata: bool = True,
    ) -> None:
        super().__init__(keyring, digests, session=session, metadata=metadata)
        self._hmac = check_digest(hmac_digest, "hmac_digest")
        self._keys = [
            [g.pbkdf2(SALT_SIGNED, 64, d, ITERATIONS) for d in digests] for g in keyring.generators
        ]

    def _mac(self, secret: int, digest: int, data: str) -> str:
        return hmac.digest(self._keys[secret][digest], data.encode("ascii"), self._hmac).hex()

    def seal(self, payload: bytes, *, purpose: str, issued_at: int, expires_at: int) -> str:
        """Sign ``payload`` as Rails does, with the newest secret and the first digest."""
        data = _b64(self._plaintext(payload, purpose, expires_at))
        return _escaped(f"{data}--{self._mac(0, 0, data)}", purpose)

    def open(self, token: str, *, purpose: str, now: int) -> Opened:
        """Verify a Rails signed value; raise :class:`InvalidMessage` with the reason if not."""
        data, sep, mac = unquote_plus(token).rpartition("--")
        if not sep or _HEX_SIGNATURE[self._hmac].fullmatch(mac) is None or not data.isascii():
            raise InvalidMessage(RejectReason.MALFORMED, "not a Rails signed value")
        for secret, digest in self._candidates():
            if hmac.compare_digest(self._mac(secret, digest, data), mac.lower()):
                payload, expires_at = unwrap(_strict_b64decode(data), purpose=purpose, now=now)
                stale = bool(secret or digest)  # re-sealed with the writing pair
                return Opened(payload, now, expires_at, secret, stale)
        raise InvalidMessage(RejectReason.BAD_TAG, "signature does not match")
