"""Keys from one ``secret_key_base``, and the two native message formats.

Rules, stated once:

1. Authenticate before parsing. Only fixed-offset slicing happens before the tag is
   checked; the payload is decoded only after it is known to be ours.
2. The newest key seals; every key in the ring opens. A message names its key by a
   4-byte key id, so opening costs one key lookup, not one trial decryption per key.
3. Every message is bound to a purpose (the cookie's name) and carries its own absolute
   expiry, both inside the authenticated data.
4. Every comparison of secret-derived bytes is constant-time (``hmac.compare_digest``).
5. Only ``cryptography`` and the standard library's ``hmac``/``hashlib`` do crypto here.

The frame of both formats (all integers big-endian), then unpadded base64url::

    0      version    1 byte   0x01 = AES-256-GCM, 0x02 = HMAC-SHA256 signed
    1      key id     4 bytes  HKDF(secret, "key-id")[:4]
    5      purpose    8 bytes  SHA-256(purpose)[:8]
    13     issued at  8 bytes  unix seconds when sealed (idle timeouts count from here)
    21     expires at 8 bytes  unix seconds; the message is refused from this second on
    29     GCM: nonce (12) | ciphertext | tag (16)    signed: payload | HMAC-SHA256 (32)

The whole header is the GCM associated data (or is inside the HMAC), so none of it can be
changed without failing authentication.

It runs past 300 lines because the frame, the key derivation, the keyring and both native
formats are one wire format, read and written by the same offsets.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import os
import struct
import sys
from collections.abc import Sequence
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from .errors import ConfigurationError, InvalidMessage, RejectReason

__all__ = [
    "FOREIGN_KEY_INDEX",
    "CookieFormat",
    "KeyGenerator",
    "Keyring",
    "MessageCodec",
    "MessageEncryptor",
    "MessageVerifier",
    "Opened",
    "SecretKeyBase",
    "b64url_decode",
    "b64url_encode",
]

#: What ``secret_key_base`` accepts: one secret, or several, newest first.
SecretKeyBase = str | bytes | Sequence[str | bytes]

MIN_SECRET_BYTES = 32
#: What every missing-secret and weak-secret error tells the user to run.
MAKE_SECRET = "python -m asgisession secret"  # noqa: S105 - a command, not a secret
#: Seconds a message's issue time may lie ahead of the reader's clock (nodes' clocks differ
#: a little); a later one is refused, so a fast clock or a message sealed with the secret
#: for a future time cannot outlive an idle timeout or a revocation's "not before".
MAX_CLOCK_SKEW = 60
#: :attr:`Opened.key_index` of a value a migration source (:mod:`asgisession.migrate`)
#: opened with another framework's secret: no key of the keyring opened it.
FOREIGN_KEY_INDEX = -1
VERSION_GCM = 0x01
VERSION_SIGNED = 0x02
#: The frame header (see the module docstring): version, key id, purpose digest, issued, expires.
HEADER = struct.Struct(">B4s8sQQ")
HEADER_SIZE = HEADER.size  # 29
NONCE_SIZE = 12
#: Where a GCM frame's ciphertext starts, after the header and the nonce.
_CIPHERTEXT = HEADER_SIZE + NONCE_SIZE
#: The header's two times (offset 13), read once the frame is authenticated.
_TIMES = struct.Struct(">QQ")
TAG_SIZE = 16
MAC_SIZE = 32
_HKDF_SALT = b"asgisession key derivation v1"

# Lower-cased fragments that only a placeholder contains; random secrets never do.
_PLACEHOLDERS = (
    "changeme", "change-me", "change_me", "replaceme", "replace-me", "replace_me",
    "placeholder", "yoursecret", "your-secret", "your_secret", "secret_key_base",
    "secretkeybase", "insecure", "notsecret", "not-secret", "example",
)  # fmt: skip
# Each fragment has 7+ characters, so a random secret contains one by chance with odds
# below 1e-9; shorter words ("todo", "test") would refuse real secrets now and then.


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def _secret_bytes(secret: str | bytes) -> bytes:
    raw = _as_bytes(secret)
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"secret_key_base is {len(raw)} bytes; it needs at least {MIN_SECRET_BYTES}. "
            f"Make one with `{MAKE_SECRET}` (64 random bytes, as hex)."
        )
    text = raw.decode("latin-1").lower()
    weakness = next((p for p in _PLACEHOLDERS if p in text), None)
    if weakness is None and len(set(raw)) < 8:
        weakness = f"only {len(set(raw))} distinct characters"
    if weakness is None:
        period = _period(raw)
        if period is not None:
            weakness = f"a pattern of {period} characters, repeated"
    if weakness is not None:
        raise ConfigurationError(
            f"secret_key_base looks like a placeholder ({weakness}). Use a random secret, "
            f"made with `{MAKE_SECRET}` and kept out of the code (an environment variable "
            "or a secrets manager)."
        )
    return raw


def _period(raw: bytes) -> int | None:
    """The shortest pattern that ``raw`` repeats at least twice (a partial last copy allowed).

    A random secret of 32+ bytes repeats itself over half its length with odds below
    ``256**-16`` per period (``16**-16`` for hex), so only a made-up secret is caught.
    """
    border = [0] * len(raw)  # border[i]: longest proper prefix of raw[: i + 1] ending there
    for i in range(1, len(raw)):
        k = border[i - 1]
        while k and raw[i] != raw[k]:
            k = border[k - 1]
        border[i] = k + (raw[i] == raw[k])
    period = len(raw) - (border[-1] if raw else 0)
    return period if raw and 2 * period <= len(raw) else None


class KeyGenerator:
    """Derives independent keys from one secret, one per purpose, and caches them.

    HKDF-SHA256 (RFC 5869) is the right tool here because ``secret_key_base`` must already
    be high-entropy (it is checked); a password-stretching KDF would add cost, not safety.

    :param secret: the secret, at least 32 bytes, not a placeholder.
    :raises ConfigurationError: when the secret is short or looks like a placeholder.

    .. versionadded:: 0.1
    """

    __slots__ = ("__secret", "_cache", "key_id")

    def __init__(self, secret: str | bytes) -> None:
        self.__secret = _secret_bytes(secret)
        self._cache: dict[tuple[str, int], bytes] = {}
        #: Names this secret in message headers without revealing anything about it.
        self.key_id: bytes = self.derive("key-id", 4)

    def derive(self, purpose: str, length: int = 32) -> bytes:
        """Return the key for ``purpose``; the same purpose always gives the same key."""
        cached = self._cache.get((purpose, length))
        if cached is None:
            hkdf = HKDF(
                algorithm=hashes.SHA256(),
                length=length,
                salt=_HKDF_SALT,
                info=f"asgisession/v1/{purpose}/{length}".encode(),
            )
            cached = self._cache[(purpose, length)] = hkdf.derive(self.__secret)
        return cached

    def pbkdf2(
        self, salt: bytes, length: int, hash_name: Literal["sha1", "sha256"], iterations: int
    ) -> bytes:
        """A key derived as Rails derives it: PBKDF2-HMAC over the secret, cached.

        Only for reading and writing Rails' cookies (:mod:`asgisession.rails`); the
        secret is the password exactly as given, as in ``ActiveSupport::KeyGenerator``.
        """
        label = f"pbkdf2/{hash_name}/{iterations}/{salt.hex()}"
        cached = self._cache.get((label, length))
        if cached is None:
            algorithm = hashes.SHA256() if hash_name == "sha256" else hashes.SHA1()  # noqa: S303
            kdf = PBKDF2HMAC(algorithm=algorithm, length=length, salt=salt, iterations=iterations)
            cached = self._cache[(label, length)] = kdf.derive(self.__secret)
        return cached

    def __repr__(self) -> str:
        return f"KeyGenerator(key_id={self.key_id.hex()!r}, secret='**********')"


class Keyring:
    """The secrets in rotation, newest first: the first seals, all of them open.

    :param secret_key_base: one secret, or a sequence of them, newest first. To rotate,
        put the new secret in front; once every cookie under the old one has expired (or
        been re-issued on its next use), remove the old one.
    :raises ConfigurationError: on an empty list, a weak secret, or a repeated secret.

    .. versionadded:: 0.1
    """

    __slots__ = ("_by_id", "generators")

    def __init__(self, secret_key_base: SecretKeyBase) -> None:
        secrets: list[str | bytes]
        if isinstance(secret_key_base, str | bytes):
            secrets = [secret_key_base]
        elif isinstance(secret_key_base, bytearray | memoryview):
            secrets = [bytes(secret_key_base)]
        else:
            secrets = list(secret_key_base)
        if not secrets:
            raise ConfigurationError(
                f"secret_key_base is empty; give at least one secret (make one with "
                f"`{MAKE_SECRET}`)."
            )
        self.generators: tuple[KeyGenerator, ...] = tuple(KeyGenerator(s) for s in secrets)
        self._by_id: dict[bytes, int] = {}
        for index, generator in enumerate(self.generators):
            if generator.key_id in self._by_id:
                first = self._by_id[generator.key_id]
                same = _as_bytes(secrets[first]) == _as_bytes(secrets[index])
                raise ConfigurationError(
                    f"secret_key_base entries {first} and {index} "
                    + (
                        "are the same secret; list each secret once, newest first."
                        if same
                        else "have the same key id (a 1 in 2**32 chance); replace the newer one."
                    )
                )
            self._by_id[generator.key_id] = index

    @property
    def newest(self) -> KeyGenerator:
        """The generator that seals new messages."""
        return self.generators[0]

    def lookup(self, key_id: bytes) -> int | None:
        """The index (0 = newest) of the secret with this key id, or ``None``."""
        return self._by_id.get(key_id)

    def __repr__(self) -> str:
        ids = ", ".join(g.key_id.hex() for g in self.generators)
        return f"Keyring(key_ids=[{ids}])"


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 4648 section 5), the only spelling :func:`b64url_decode` takes."""
    # binascii directly: base64.urlsafe_b64encode is the same call under two Python frames.
    return binascii.b2a_base64(data, newline=False).translate(_STD_TO_URL).rstrip(b"=").decode()


def b64url_decode(text: str | bytes) -> bytes:
    """Decode unpadded base64url strictly: one canonical spelling per byte string.

    The standard library's decoder skips junk characters and ignores trailing bits, so
    many strings decode to the same bytes; here only the canonical one does.

    :raises InvalidMessage: ``MALFORMED`` for foreign characters or an impossible length,
        ``NON_CANONICAL`` for padding or non-zero trailing bits.
    """
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    if _STRICT_BASE64:
        # The fast path, for every valid cookie: one translation and the standard library's
        # strict decoder, which refuses any character outside the alphabet ("+", "/" and "="
        # are translated to "!" first, so the standard alphabet's own are refused too) and
        # any impossible length. Only the trailing bits are left to check by hand. Anything
        # it refuses goes through _checked_decode, which names the reason.
        tail = len(raw) % 4
        try:
            # (mypy checks against 3.10's stubs, which lack strict_mode)
            data = binascii.a2b_base64(  # type: ignore[call-arg,unused-ignore]
                raw.translate(_URL_TO_STD_STRICT) + _PADDING[tail], strict_mode=True
            )
        except binascii.Error:
            pass
        else:
            # _nonzero_trailing_bits inline: this runs on every session read (the codec's
            # decode rows and the middleware's read and write rows in the benchmarks).
            if not tail or not _B64URL_VALUE[raw[-1]] & (0b1111 if tail == 2 else 0b11):
                return data
    return _checked_decode(raw)


def _nonzero_trailing_bits(raw: bytes) -> bool:
    # The last character of a 2- or 3-character group carries 4 or 2 unused low bits;
    # canonical encoders leave them zero.
    tail = len(raw) % 4
    return bool(tail) and bool(_B64URL_VALUE[raw[-1]] & (0b1111 if tail == 2 else 0b11))


def _checked_decode(raw: bytes) -> bytes:
    """:func:`b64url_decode` check by check, so a refusal names its reason."""
    if raw.translate(None, _B64URL_ALPHABET):  # anything left is not in the alphabet
        reason = (
            RejectReason.NON_CANONICAL
            if raw.rstrip(b"=") != raw and not raw.rstrip(b"=").translate(None, _B64URL_ALPHABET)
            else RejectReason.MALFORMED
        )
        raise InvalidMessage(reason, "not unpadded base64url")
    if len(raw) % 4 == 1:
        raise InvalidMessage(RejectReason.MALFORMED, "impossible base64 length")
    if _nonzero_trailing_bits(raw):
        raise InvalidMessage(RejectReason.NON_CANONICAL, "trailing bits are not zero")
    try:
        return binascii.a2b_base64(raw.translate(_URL_TO_STD) + _PADDING[len(raw) % 4])
    except binascii.Error as exc:  # the checks above leave no known input for this
        raise InvalidMessage(RejectReason.MALFORMED, str(exc)) from None


_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64URL_VALUE = {char: value for value, char in enumerate(_B64URL_ALPHABET)}
_URL_TO_STD = bytes.maketrans(b"-_", b"+/")
_STD_TO_URL = bytes.maketrans(b"+/", b"-_")
_URL_TO_STD_STRICT = bytes.maketrans(b"-_+/=", b"+/!!!")
#: The padding that completes unpadded base64 of each length modulo 4 (1 is impossible).
_PADDING = (b"", b"", b"==", b"=")
#: ``a2b_base64(strict_mode=True)`` exists (3.11+): tested once here, not per decode, since
#: the test costs about 2% of opening a small cookie (the "encrypted decode 50B" row).
_STRICT_BASE64 = sys.version_info >= (3, 11)


class Opened(NamedTuple):
    """A message that opened: its payload and the authenticated header fields.

    Immutable. A named tuple rather than a frozen dataclass because it is made on every
    request that reads a session (docs/benchmarks.md, "Shapes chosen for speed", has the
    measurement).

    .. versionadded:: 0.1
    """

    payload: bytes
    issued_at: int
    expires_at: int
    #: Which secret of the keyring opened it: 0 is the newest; :data:`FOREIGN_KEY_INDEX`
    #: for another framework's cookie opened by a migration source.
    key_index: int
    #: Opened by an older secret, or in a format that is only read (an older digest, another
    #: format in a :class:`~asgisession.rotation.Rotation`): re-issue it under the newest.
    stale: bool


class MessageCodec(Protocol):
    """**Protocol:** seals payload bytes into a cookie-safe string and opens them again.

    This is where another cookie format (e.g. Rails') plugs in.

    .. versionadded:: 0.1
    """

    #: Whether :attr:`Opened.issued_at` is the time the value was sealed. A format that
    #: records no issue time (Rails') gives the time of opening there and says ``False``:
    #: the middleware then refuses settings that need it (``idle_timeout``, ``user_key``).
    records_issued_at: bool

    def seal(self, payload: bytes, *, purpose: str, issued_at: int, expires_at: int) -> str:
        """Return the cookie-safe sealed form of ``payload``."""
        ...

    def open(self, token: str, *, purpose: str, now: int) -> Opened:
        """Return the opened message, or raise :class:`InvalidMessage` with the reason."""
        ...


@runtime_checkable
class CookieFormat(Protocol):
    """**Protocol:** a cookie format bound to the secrets later, e.g. ``RailsCookies()``.

    :class:`~asgisession.SessionMiddleware` takes one as ``cookie_format`` and asks it for
    the session cookie's codec and the cookie jar's. The native formats are ones too:
    ``"encrypted"`` and ``"signed"`` name them (``asgisession.formats.NativeCookies``).

    .. versionadded:: 0.2
    """

    def session_codec(self, keyring: Keyring) -> MessageCodec:
        """The codec of the session cookie."""
        ...

    def jar_codec(self, keyring: Keyring, kind: Literal["signed", "encrypted"]) -> MessageCodec:
        """The codec of ``cookies(scope).signed`` or ``.encrypted``."""
        ...


@functools.lru_cache(maxsize=256)
def _purpose_digest(purpose: str) -> bytes:
    return hashlib.sha256(purpose.encode()).digest()[:8]


class _FramedCodec:
    """The frame handling both native formats share."""

    __slots__ = ("_key_id", "_key_ids", "_key_purpose", "keyring")
    version: int
    trailer_size: int
    records_issued_at = True

    def __init__(self, keyring: Keyring, *, key_purpose: str) -> None:
        self.keyring: Keyring = keyring
        self._key_purpose = key_purpose
        self._key_id = keyring.newest.key_id  # the ring never changes: looked up once
        # Keyring.lookup as a plain dict, read in _split without a method frame.
        self._key_ids = {g.key_id: i for i, g in enumerate(keyring.generators)}

    def _key(self, index: int, length: int) -> bytes:
        return self.keyring.generators[index].derive(self._key_purpose, length)

    def _header(self, purpose: str, issued_at: int, expires_at: int) -> bytes:
        return HEADER.pack(
            self.version, self._key_id, _purpose_digest(purpose),
            issued_at, expires_at,
        )  # fmt: skip

    def _split(self, token: str) -> tuple[bytes, int]:
        """The frame of ``token`` and the index of the key that sealed it (not yet checked)."""
        frame = b64url_decode(token)
        if len(frame) < HEADER_SIZE + self.trailer_size or frame[0] != self.version:
            raise InvalidMessage(RejectReason.MALFORMED, "wrong length or version")
        index = self._key_ids.get(frame[1:5])
        if index is None:
            raise InvalidMessage(RejectReason.UNKNOWN_KEY, f"key id {frame[1:5].hex()}")
        return frame, index

    @staticmethod
    def _check(frame: bytes, payload: bytes, purpose: str, now: int, index: int) -> Opened:
        """The opened message of an authenticated ``frame``, once its purpose and times hold."""
        if not hmac.compare_digest(frame[5:13], _purpose_digest(purpose)):
            raise InvalidMessage(RejectReason.WRONG_PURPOSE, "sealed for another cookie")
        issued_at, expires_at = _TIMES.unpack_from(frame, 13)
        if now >= expires_at:
            raise InvalidMessage(RejectReason.EXPIRED, f"expired at {expires_at}")
        if issued_at > now + MAX_CLOCK_SKEW:
            raise InvalidMessage(RejectReason.ISSUED_IN_FUTURE, f"issued at {issued_at}")
        # tuple.__new__ builds the same Opened without the named tuple's generated Python
        # __new__, a frame of its own: about a tenth of opening a small cookie.
        return tuple.__new__(Opened, (payload, issued_at, expires_at, index, index != 0))


class MessageEncryptor(_FramedCodec):
    """AES-256-GCM: the payload is secret and authenticated. The default format.

    A fresh 96-bit nonce from ``os.urandom`` per message; with a random nonce, one key can
    seal about 2**32 messages before the nonce-collision bound (NIST SP 800-38D) calls for
    a new key, which key rotation provides.

    :param keyring: the secrets; the newest seals.
    :param key_purpose: the label of the derived key, so that different uses (the session,
        the cookie jar, ...) never share one.

    .. versionadded:: 0.1
    """

    __slots__ = ("_aead",)
    version = VERSION_GCM
    trailer_size = NONCE_SIZE + TAG_SIZE

    def __init__(self, keyring: Keyring, *, key_purpose: str = "session-encryption") -> None:
        super().__init__(keyring, key_purpose=key_purpose)
        self._aead = [AESGCM(self._key(i, 32)) for i in range(len(keyring.generators))]

    def seal(self, payload: bytes, *, purpose: str, issued_at: int, expires_at: int) -> str:
        """Encrypt ``payload`` under the newest key, bound to ``purpose`` and ``expires_at``."""
        # _header inline: serves the "encrypted encode" rows.
        header = HEADER.pack(
            VERSION_GCM, self._key_id, _purpose_digest(purpose), issued_at, expires_at
        )
        nonce = os.urandom(NONCE_SIZE)
        return b64url_encode(header + nonce + self._aead[0].encrypt(nonce, payload, header))

    def open(self, token: str, *, purpose: str, now: int) -> Opened:
        """Decrypt and check a token; raise :class:`InvalidMessage` with the reason if it fails."""
        frame, index = self._split(token)
        try:
            payload = self._aead[index].decrypt(
                frame[HEADER_SIZE:_CIPHERTEXT], frame[_CIPHERTEXT:], frame[:HEADER_SIZE]
            )
        except InvalidTag:
            raise InvalidMessage(RejectReason.BAD_TAG, "authentication failed") from None
        return self._check(frame, payload, purpose, now, index)


class MessageVerifier(_FramedCodec):
    """HMAC-SHA256: the payload is readable (base64url of JSON) but cannot be changed.

    Choose it only when clients must read the session; the encrypted format is the default.

    .. versionadded:: 0.1
    """

    __slots__ = ("_keys",)
    version = VERSION_SIGNED
    trailer_size = MAC_SIZE

    def __init__(self, keyring: Keyring, *, key_purpose: str = "session-signing") -> None:
        super().__init__(keyring, key_purpose=key_purpose)
        self._keys = [self._key(i, 32) for i in range(len(keyring.generators))]

    def seal(self, payload: bytes, *, purpose: str, issued_at: int, expires_at: int) -> str:
        """Sign ``payload`` under the newest key, bound to ``purpose`` and ``expires_at``."""
        signed = self._header(purpose, issued_at, expires_at) + payload
        return b64url_encode(signed + hmac.digest(self._keys[0], signed, "sha256"))

    def open(self, token: str, *, purpose: str, now: int) -> Opened:
        """Verify and check a token; raise :class:`InvalidMessage` with the reason if it fails."""
        frame, index = self._split(token)
        signed, mac = frame[:-MAC_SIZE], frame[-MAC_SIZE:]
        if not hmac.compare_digest(mac, hmac.digest(self._keys[index], signed, "sha256")):
            raise InvalidMessage(RejectReason.BAD_TAG, "signature does not match")
        return self._check(frame, signed[HEADER_SIZE:], purpose, now, index)
