"""What the server backend keeps where: records bound to their id, light sessions in the cookie.

Apart from :mod:`.server` so that each rule is read in one place: how a record names the
session it belongs to (:func:`bind`, :func:`unbind`), and which sessions are light enough
to stay in the cookie (:func:`is_light`, :func:`open_light`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidMessage, RejectReason
from ..expiry import EXPIRY_KEY
from ..flash import FLASH_KEY
from ..serializer import JSON, Serializer
from ..session import IDENTITY_KEYS

__all__ = ["LIGHT_KEYS", "bind", "is_light", "open_light", "unbind"]

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
