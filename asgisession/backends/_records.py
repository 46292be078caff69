"""What the server backend keeps where: sealed records, and light sessions in the cookie.

Apart from :mod:`.server` so that each rule is read in one place: how a record is sealed
and tied to its store key (:class:`RecordSeal`), the older forms still read (:func:`bind`,
:func:`unbind`), and which sessions are light enough to stay in the cookie
(:func:`is_light`, :func:`open_light`).

A record takes one of three forms, told apart by its first byte:

- sealed (the default since 0.3): ``0x01``, the 4-byte key id of the secret that sealed
  it, a 12-byte random nonce, then the AES-256-GCM ciphertext and tag of the serialised
  data. The key is derived from ``secret_key_base`` for this purpose alone
  (:data:`RECORD_PURPOSE`); the associated data is the first five bytes and the record's
  store key, so a record copied under another key fails authentication. A dump of the
  store shows no session data, and nothing of it can be changed unnoticed.
- bound (0.2, and 0.3 with ``seal_records=False``): ``#``, a hash of the session id, a
  newline, then the serialised data in the clear.
- plain (before 0.2): the serialised data alone, a JSON object starting ``{``.

Every form is read whatever the setting; a record not in the form the backend writes, or
sealed with an older secret, is *stale*: its next write re-seals it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..crypto import NONCE_SIZE, TAG_SIZE, Keyring
from ..errors import InvalidMessage, RejectReason
from ..expiry import EXPIRY_KEY
from ..flash import FLASH_KEY
from ..serializer import JSON, Serializer
from ..session import IDENTITY_KEYS

__all__ = ["LIGHT_KEYS", "RECORD_PURPOSE", "RecordSeal", "bind", "is_light", "open_light", "unbind"]

#: The keys a session may hold and still stay in the cookie: the CSRF secret, flash, the
#: log id's seed and the session's own expiry.
LIGHT_KEYS: frozenset[str] = frozenset((*IDENTITY_KEYS, FLASH_KEY, EXPIRY_KEY))

#: The first byte of a bound record; a record written before 0.2 is JSON and starts ``{``.
_MARK = b"#"
_DOMAIN = b"asgisession record of\x00"


def _binding(session_id: bytes) -> bytes:
    # Not the store key (SHA-256 of the id alone): whoever can read the store knows every
    # key but no id, so cannot bind a record to another session.
    return hashlib.sha256(_DOMAIN + session_id).hexdigest()[:32].encode("ascii")


def bind(session_id: bytes, payload: bytes) -> bytes:
    """The record of ``payload`` (JSON) for ``session_id``: its binding, a newline, the JSON."""
    return b"".join((_MARK, _binding(session_id), b"\n", payload))


def unbind(session_id: bytes, record: bytes) -> bytes:
    """The JSON of ``record`` if it belongs to ``session_id``.

    A plain JSON record (written before 0.2) is returned as it is.

    :raises InvalidMessage: (``bad_payload``) for a record bound to another id.
    """
    if not record.startswith(_MARK):
        return record
    head, newline, payload = record.partition(b"\n")
    if not newline or not hmac.compare_digest(head[1:], _binding(session_id)):
        raise InvalidMessage(RejectReason.BAD_PAYLOAD, "session record bound to another id")
    return payload


#: The label of the key that seals server records (never the cookie's key).
RECORD_PURPOSE = "server-record-encryption"
#: The first byte of a sealed record (version 1 of the form).
_SEALED = b"\x01"
_HEADER_SIZE = 1 + 4  # marker, key id


class RecordSeal:
    """Seals server records at rest and opens every form a record may take.

    :param keyring: the secrets; the newest seals, every one opens.
    :param seal: write sealed records (the default); ``False`` writes the bound form, in
        the clear, for tools that must read records (see docs/security.md for the risk).
    """

    __slots__ = ("_aead", "_key_ids", "keyring", "sealing")

    def __init__(self, keyring: Keyring, *, seal: bool = True) -> None:
        self.keyring: Keyring = keyring
        self.sealing: bool = seal
        self._key_ids = [g.key_id for g in keyring.generators]
        self._aead = [AESGCM(g.derive(RECORD_PURPOSE, 32)) for g in keyring.generators]

    def write(self, key: str, session_id: bytes, payload: bytes) -> bytes:
        """The record of ``payload`` for the session ``session_id`` under store ``key``."""
        if not self.sealing:
            return bind(session_id, payload)
        header = _SEALED + self._key_ids[0]
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._aead[0].encrypt(nonce, payload, header + key.encode())
        return header + nonce + sealed

    def open(self, key: str, session_id: bytes, record: bytes) -> tuple[bytes, bool]:
        """The serialised data of ``record``, and whether its next write should re-seal it.

        :raises InvalidMessage: ``malformed`` for a truncated sealed record,
            ``unknown_key`` for one sealed by a secret no longer in the ring, ``bad_tag``
            for one changed, or moved from another store key; ``bad_payload`` for a bound
            record of another session.
        """
        if not record.startswith(_SEALED):
            return unbind(session_id, record), self.sealing
        if len(record) < _HEADER_SIZE + NONCE_SIZE + TAG_SIZE:
            raise InvalidMessage(RejectReason.MALFORMED, "sealed session record truncated")
        index = self.keyring.lookup(record[1:_HEADER_SIZE])
        if index is None:
            raise InvalidMessage(RejectReason.UNKNOWN_KEY, "session record of an unknown key")
        nonce_end = _HEADER_SIZE + NONCE_SIZE
        try:
            payload = self._aead[index].decrypt(
                record[_HEADER_SIZE:nonce_end],
                record[nonce_end:],
                record[:_HEADER_SIZE] + key.encode(),
            )
        except InvalidTag:
            raise InvalidMessage(
                RejectReason.BAD_TAG, "session record changed, or sealed for another key"
            ) from None
        return payload, index != 0 or not self.sealing


def is_light(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` holds nothing but :data:`LIGHT_KEYS` (and so stays in the cookie)."""
    return data.keys() <= LIGHT_KEYS


def open_light(
    payload: bytes, serializer: Serializer = JSON, *, foreign: bool = False
) -> tuple[dict[str, Any], bytes]:
    """The data of a light session's sealed payload, and the payload as it serialises.

    ``foreign``: the payload is another framework's session, opened by a migration source
    (:mod:`asgisession.migrate`) with that framework's secret; it may hold any keys, and
    goes to the store on this request's commit.

    :raises InvalidMessage: (``bad_payload``) unless it is a JSON object of light keys
        only: a cookie-store session sealed with the same secret and name does not open as
        a server session.
    """
    if not payload.startswith(b"{"):
        raise InvalidMessage(RejectReason.BAD_PAYLOAD, "not a session id")
    try:
        data = serializer.loads(payload)
    except ValueError as exc:
        raise InvalidMessage(RejectReason.BAD_PAYLOAD, f"sealed session: {exc}") from None
    if not (foreign or is_light(data)):
        raise InvalidMessage(RejectReason.BAD_PAYLOAD, "sealed session with keys for the store")
    return data, payload.rstrip(b" ")
