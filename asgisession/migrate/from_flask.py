"""Flask's and Quart's session cookies: itsdangerous-signed, Flask's tagged JSON inside.

Flask writes a few Python types as one-key JSON objects (its "tagged JSON"): ``" t"`` a
tuple, ``" b"`` bytes, ``" u"`` a UUID, ``" d"`` a datetime (an HTTP date, whole seconds,
UTC), ``" m"`` Markup, ``" di"`` a dict whose one key looks like a tag. They are decoded
to those types here (a JSON convention, no crypto), and the middleware's serializer then
decides: :class:`~asgisession.tagged.TaggedJSON` keeps tuples, bytes, UUIDs and
datetimes as they are; the strict default would change their type, so those keys are left
out with a WARNING rather than read back changed. Markup is kept by neither.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidMessage, RejectReason
from ..serializer import JSON, Serializer
from ._source import MigrationSource, require

__all__ = ["FlaskCookies"]

#: Flask's default ``PERMANENT_SESSION_LIFETIME`` (31 days), which it checks every
#: session cookie's age against, permanent or not. Quart's is the same.
FLASK_MAX_AGE = 31 * 24 * 3600
#: The salt of Flask's and Quart's ``SecureCookieSessionInterface``.
SALT = "cookie-session"


class Markup(str):
    """Flask's ``Markup`` tag, decoded only to be refused: no serializer here keeps it."""

    __slots__ = ()


def _datetime(text: str) -> datetime:
    moment = email.utils.parsedate_to_datetime(text)  # werkzeug's parse_date does the same
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


#: Flask's marker of each type, and what makes the value of it from its JSON.
_FLASK_TYPES: dict[str, Callable[[Any], Any]] = {
    " t": tuple,
    " b": base64.b64decode,
    " u": uuid.UUID,
    " d": _datetime,
    " m": Markup,
    " di": lambda value: {key[:-2]: item for key, item in value.items()},
}


def _untag(value: dict[str, Any]) -> Any:
    # json.loads calls it bottom-up, as Flask's TaggedJSONSerializer.untag is called.
    if len(value) == 1:
        marker = next(iter(value))
        if marker in _FLASK_TYPES:
            return _FLASK_TYPES[marker](value[marker])
    return value


class _TaggedJSON:
    """Flask's tagged JSON, read only, as itsdangerous' ``serializer=``."""

    @staticmethod
    def loads(payload: str | bytes) -> Any:
        return json.loads(payload, object_hook=_untag)

    @staticmethod
    def dumps(obj: Any) -> str:  # itsdangerous calls it once to tell text from bytes
        return json.dumps(obj)


class FlaskCookies(MigrationSource):
    """Read the session cookies of Flask and Quart (``SecureCookieSessionInterface``).

    ::

        cookie_format=Rotation(
            write="encrypted",
            read=[FlaskCookies(secret_key=os.environ["OLD_SECRET_KEY"])],
        )

    The cookie is opened with itsdangerous' ``URLSafeTimedSerializer``, salt
    ``"cookie-session"``, HMAC key derivation over SHA-1, as Flask opens it (the
    ``migrate`` extra: ``pip install 'asgisession[migrate]'``). Flask's tagged types: see
    the module docstring.

    :param secret_key: the app's ``SECRET_KEY``.
    :param fallback_keys: the app's ``SECRET_KEY_FALLBACKS``, if any.
    :param max_age: the app's ``PERMANENT_SESSION_LIFETIME`` in seconds (31 days unless it
        set one); Flask refuses older cookies, permanent or not, and so does this.
    :param serializer: the middleware's ``serializer=``, if it set one.
    :raises ImportError: without itsdangerous, naming the extra to install.

    .. versionadded:: 0.2
    """

    peer = "Flask"

    def __init__(
        self,
        *,
        secret_key: str | bytes,
        fallback_keys: Sequence[str | bytes] = (),
        max_age: int = FLASK_MAX_AGE,
        serializer: Serializer = JSON,
    ) -> None:
        super().__init__(max_age=max_age, serializer=serializer)
        itsdangerous = require("itsdangerous", "FlaskCookies", "pip install 'asgisession[migrate]'")
        self._bad_signature: type[Exception] = itsdangerous.BadSignature
        self._bad_data: type[Exception] = itsdangerous.BadData
        self._serializer: Any = itsdangerous.URLSafeTimedSerializer(
            [*fallback_keys, secret_key],  # itsdangerous signs with the last
            salt=SALT,
            serializer=_TaggedJSON,
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
        )

    def unsign(self, token: str) -> tuple[object, int]:
        """Verify the signature and decode the tagged JSON behind it."""
        try:
            data, signed_at = self._serializer.loads(token, return_timestamp=True)
        except self._bad_signature:
            raise InvalidMessage(RejectReason.BAD_TAG, "not a Flask session cookie") from None
        except self._bad_data as exc:  # BadPayload: signed, but it does not decode
            raise InvalidMessage(RejectReason.BAD_PAYLOAD, f"Flask session: {exc}") from None
        return data, int(signed_at.timestamp())

    def __repr__(self) -> str:
        return f"FlaskCookies(secret_key='**********', max_age={self.max_age})"
