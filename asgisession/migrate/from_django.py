"""Django's ``signed_cookies`` session engine: ``django.core.signing``, Django's own code."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidMessage, RejectReason
from ..serializer import JSON, Serializer
from ._source import MigrationSource, require

__all__ = ["DjangoSignedCookies"]

#: The salt ``django.contrib.sessions.backends.signed_cookies`` signs with.
SALT = "django.contrib.sessions.backends.signed_cookies"
#: Django's default ``SESSION_COOKIE_AGE``: two weeks.
DJANGO_MAX_AGE = 14 * 24 * 3600
#: Where Django keeps a per-session expiry; its signed_cookies engine ignores it on load
#: (Django ticket #19201), and so does this: the session ends at ``max_age``.
EXPIRY_KEY = "_session_expiry"


class DjangoSignedCookies(MigrationSource):
    """Read the cookies of Django's ``signed_cookies`` session engine.

    ::

        cookie_format=Rotation(
            write="encrypted",
            read=[DjangoSignedCookies(secret_key=os.environ["DJANGO_SECRET_KEY"])],
        )
        # and cookie_name="sessionid" (Django's SESSION_COOKIE_NAME) while migrating

    The cookie is opened by Django's own ``django.core.signing`` (``TimestampSigner``,
    the engine's salt, Django's ``JSONSerializer``, compressed or not), so Django must be
    installed; no Django settings are needed. Pickled sessions are not read.

    :param secret_key: the Django app's ``SECRET_KEY``.
    :param fallback_keys: its ``SECRET_KEY_FALLBACKS``, if any.
    :param max_age: its ``SESSION_COOKIE_AGE`` in seconds (two weeks unless it set one).
    :param algorithm: the HMAC digest: ``"sha256"`` (Django 3.1 and later).
    :param serializer: the middleware's ``serializer=``, if it set one.
    :raises ImportError: when Django is not installed.

    .. versionadded:: 0.2
    """

    peer = "Django"

    def __init__(
        self,
        *,
        secret_key: str | bytes,
        fallback_keys: Sequence[str | bytes] = (),
        max_age: int = DJANGO_MAX_AGE,
        algorithm: str = "sha256",
        serializer: Serializer = JSON,
    ) -> None:
        super().__init__(max_age=max_age, serializer=serializer)
        signing = require(
            "django.core.signing",
            "DjangoSignedCookies",
            "pip install Django (it signed the cookies; no settings are needed)",
        )
        self._signing: Any = signing
        self._signer: Any = signing.TimestampSigner(
            key=secret_key, salt=SALT, algorithm=algorithm, fallback_keys=list(fallback_keys)
        )

    def unsign(self, token: str) -> tuple[object, int]:
        """Verify and decode as the engine's ``load`` does; the age is checked by the caller."""
        signing = self._signing
        try:
            # No max_age: Django would check it on its own clock, the middleware's is used.
            data = self._signer.unsign_object(token, serializer=signing.JSONSerializer)
        except signing.BadSignature:
            raise InvalidMessage(RejectReason.BAD_TAG, "not a Django session cookie") from None
        except (ValueError, zlib.error) as exc:  # signed, but it does not decode
            raise InvalidMessage(RejectReason.BAD_PAYLOAD, f"Django session: {exc}") from None
        # Verified above: "<data>:<timestamp>:<signature>", the timestamp in base 62.
        signed_at = signing.b62_decode(token.rsplit(":", 2)[1])
        if isinstance(data, dict):
            data.pop(EXPIRY_KEY, None)
        return data, int(signed_at)

    def __repr__(self) -> str:
        return f"DjangoSignedCookies(secret_key='**********', max_age={self.max_age})"
