"""The authenticity token: a secret bound to the session, masked afresh for every page.

Rules, stated once:

1. The session holds a 32-byte secret under ``session["_csrf_token"]``: 43 characters of
   unpadded base64url, as Rails 7 stores it. Rails 6.1's padded 44-character spelling and
   older ``+``/``/`` spellings are read too; anything else counts as no secret.
2. A page gets ``mask(HMAC-SHA256(secret, "!real_csrf_token"))``: a fresh 32-byte one-time
   pad, then the pad XOR the token, 86 characters (BREACH cannot read a secret that never
   repeats). The secret is created on the first :func:`csrf_token` call, a session write.
3. A token sent back passes if, unmasked, it is the global token, the raw secret (older
   Rails) or Rails' per-form token for this request's path and method (so forms rendered
   by a Rails app sharing the session post here); the bare 43-character secret passes only
   with ``allow_unmasked``. The comparisons are constant-time, and each one that applies
   runs whichever matched, so timing does not tell them apart.

The names a client uses to send a token back (``FIELD_NAME``, ``HEADER_NAME``) are here too.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets

from .._scope import session_from_scope
from .._types import AnyScope
from ..crypto import b64url_decode, b64url_encode
from ..errors import InvalidMessage
from ..session import Session

__all__ = [
    "FIELD_NAME",
    "HEADER_NAME",
    "SESSION_KEY",
    "TOKEN_LENGTH",
    "csrf_token",
    "mask_token",
    "token_matches",
]

SESSION_KEY = "_csrf_token"
FIELD_NAME = "authenticity_token"
HEADER_NAME = b"x-csrf-token"
TOKEN_LENGTH = 32
_GLOBAL_MESSAGE = b"!real_csrf_token"


def _decode_secret(value: object) -> bytes | None:
    """The raw secret from its session spelling; Rails' 6.1 padded and older +/ forms too."""
    if not isinstance(value, str) or not value.isascii() or len(value) > 64:
        return None
    text = value.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == TOKEN_LENGTH else None


def _global_token(secret: bytes) -> bytes:
    return hmac.digest(secret, _GLOBAL_MESSAGE, "sha256")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _per_form_token(secret: bytes, path: str, method: str) -> bytes:
    """Rails' per-form token: HMAC-SHA256(secret, "<path without one trailing />#<method>")."""
    path = path[:-1] if path.endswith("/") else path
    return hmac.digest(secret, f"{path}#{method.lower()}".encode(), "sha256")


def mask_token(secret: bytes, *, action: str | None = None, method: str = "post") -> str:
    """The masked global token for ``secret``: a fresh pad each call, so no two are equal.

    With ``action`` (a form's action path), Rails' per-form token for that action and
    ``method`` instead, valid only for a request to that path with that method.
    """
    pad = secrets.token_bytes(TOKEN_LENGTH)
    real = _global_token(secret) if action is None else _per_form_token(secret, action, method)
    return b64url_encode(pad + _xor(pad, real))


def token_matches(
    secret: bytes,
    token: str,
    *,
    allow_unmasked: bool = False,
    path: str | None = None,
    method: str | None = None,
) -> bool:
    """Whether ``token`` (as sent by a client) proves knowledge of ``secret``.

    A masked token (86 characters) may carry the global token (what :func:`csrf_token`
    hands out), the raw secret (older Rails) or, given the request's ``path`` and
    ``method``, Rails' per-form token for them (what Rails' ``form_with`` embeds); an
    unmasked raw secret (43 characters) only with ``allow_unmasked``.
    """
    if not token.isascii() or len(token) not in (43, 86):
        return False
    try:
        decoded = b64url_decode(token)
    except InvalidMessage:
        return False
    if len(decoded) == 2 * TOKEN_LENGTH:
        unmasked = _xor(decoded[:TOKEN_LENGTH], decoded[TOKEN_LENGTH:])
        # Both comparisons always run, so timing says nothing about which one matched.
        global_ok = hmac.compare_digest(unmasked, _global_token(secret))
        raw_ok = hmac.compare_digest(unmasked, secret)
        form_ok = False
        if path is not None and method is not None:
            form_ok = hmac.compare_digest(unmasked, _per_form_token(secret, path, method))
        return global_ok | raw_ok | form_ok
    if len(decoded) == TOKEN_LENGTH and allow_unmasked:
        return hmac.compare_digest(decoded, secret)
    return False


def _session(scope: AnyScope) -> Session:
    """The request's session, by the rule (and message) every helper shares.

    That is :func:`~asgisession._scope.session_from_scope`: a ConfigurationError when
    SessionMiddleware is missing or misplaced.
    """
    return session_from_scope(scope)


def csrf_token(scope: AnyScope) -> str:
    """A masked authenticity token for this request's session, for a form or a header.

    Put it in a hidden field named ``authenticity_token`` or send it as ``X-CSRF-Token``.
    Each call returns a different string (a fresh one-time pad, against BREACH); all of them
    stay valid until the session is regenerated or reset. The first call in a session
    creates the secret, which is a session write. A server-side session must be loaded.

    :raises ConfigurationError: when no ``SessionMiddleware`` wraps the app.

    .. versionadded:: 0.1
    """
    session = _session(scope)
    secret = _decode_secret(session.get(SESSION_KEY))
    if secret is None:
        secret = secrets.token_bytes(TOKEN_LENGTH)
        session[SESSION_KEY] = b64url_encode(secret)
    return mask_token(secret)
