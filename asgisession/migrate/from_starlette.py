"""Starlette's ``SessionMiddleware`` cookies: itsdangerous-signed base64 JSON."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ..errors import InvalidMessage, RejectReason
from ..serializer import JSON, Serializer
from ._source import MigrationSource, require

__all__ = ["StarletteCookies"]

#: Starlette's default ``max_age``: 14 days.
STARLETTE_MAX_AGE = 14 * 24 * 3600


class StarletteCookies(MigrationSource):
    """Read the session cookies of Starlette's (and FastAPI's) ``SessionMiddleware``.

    ::

        cookie_format=Rotation(
            write="encrypted",
            read=[StarletteCookies(secret_key=os.environ["OLD_SECRET_KEY"])],
        )

    The cookie is opened with itsdangerous' ``TimestampSigner``, as Starlette opens it
    (the ``migrate`` extra: ``pip install 'asgisession[migrate]'``).

    :param secret_key: the Starlette app's ``secret_key``.
    :param max_age: the Starlette app's ``max_age`` (14 days unless it set one); a cookie
        signed longer ago than that is an empty session, as in Starlette. An app that had
        ``max_age=None`` gives the longest age it still accepts.
    :param serializer: the middleware's ``serializer=``, if it set one.
    :raises ImportError: without itsdangerous, naming the extra to install.

    .. versionadded:: 0.2
    """

    peer = "Starlette"

    def __init__(
        self,
        *,
        secret_key: str,
        max_age: int = STARLETTE_MAX_AGE,
        serializer: Serializer = JSON,
    ) -> None:
        super().__init__(max_age=max_age, serializer=serializer)
        itsdangerous = require(
            "itsdangerous", "StarletteCookies", "pip install 'asgisession[migrate]'"
        )
        self._bad_signature: type[Exception] = itsdangerous.BadSignature
        # What starlette.middleware.sessions.SessionMiddleware makes of its secret_key.
        self._signer: Any = itsdangerous.TimestampSigner(str(secret_key))

    def unsign(self, token: str) -> tuple[object, int]:
        """Verify the signature and decode the base64 JSON behind it."""
        try:
            value, signed_at = self._signer.unsign(token.encode(), return_timestamp=True)
        except self._bad_signature:
            raise InvalidMessage(RejectReason.BAD_TAG, "not a Starlette session cookie") from None
        try:
            data = json.loads(base64.b64decode(value))
        except (binascii.Error, ValueError) as exc:
            raise InvalidMessage(RejectReason.BAD_PAYLOAD, f"Starlette session: {exc}") from None
        return data, int(signed_at.timestamp())

    def __repr__(self) -> str:
        return f"StarletteCookies(secret_key='**********', max_age={self.max_age})"
