"""What every migration source shares: a read-only cookie format for another framework's cookie.

A source opens the peer's session cookie with the peer's own library and secret, checks
its age against the source's ``max_age`` on the middleware's clock, and hands the data on
as the middleware's serializer writes it. The :class:`~asgisession.crypto.Opened` it
returns is ``stale`` with :data:`~asgisession.crypto.FOREIGN_KEY_INDEX`, so the backend
re-issues the session in asgisession's own format on that response (a server-side backend
moves it into the store first).

A value the serializer would not read back as it was (a Flask tuple under the strict
JSON, say) is not carried over: its key is left out, and a WARNING names it, its type and
the remedy. Dropping one key keeps the user logged in; refusing the cookie would not.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any, Literal

from ..crypto import FOREIGN_KEY_INDEX, MAX_CLOCK_SKEW, Keyring, MessageCodec, Opened
from ..errors import ConfigurationError, InvalidMessage, RejectReason, SerializationError
from ..serializer import JSON, Serializer

__all__ = ["MigrationSource", "require"]

logger: logging.Logger = logging.getLogger("asgisession")


def require(module: str, source: str, install: str) -> ModuleType:
    """Import ``module`` for ``source``, or raise an ImportError that says what to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or module.split(".")[0] != exc.name.split(".")[0]:
            raise
        raise ImportError(
            f"{source} opens its cookies with {exc.name!r}, which is not installed: {install}",
            name=exc.name,
        ) from exc


class MigrationSource:
    """**Base class:** read another framework's session cookie, for ``Rotation(read=[...])``.

    A :class:`~asgisession.crypto.CookieFormat` that only reads: its session codec opens
    the peer's cookie (under the middleware's cookie name, so keep the peer's name while
    migrating); it seals nothing, and the cookie jar's cookies are not migrated (its jar
    codecs open nothing). Subclasses implement :meth:`unsign`.

    :param max_age: seconds a peer's cookie is accepted after it was signed; older ones
        are refused as expired (an empty session), and the re-issued session keeps this
        expiry.
    :param serializer: the middleware's ``serializer=``: the data is handed on as it writes.

    .. versionadded:: 0.2
    """

    #: A source cannot write: it is refused as a ``cookie_format`` of its own.
    read_only = True
    #: What the peer is called in messages.
    peer = "another framework"

    def __init__(self, *, max_age: int, serializer: Serializer = JSON) -> None:
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0:
            raise ConfigurationError(
                f"{type(self).__name__}(max_age={max_age!r}): give the peer's cookie "
                "lifetime in whole seconds (a cookie older than that is refused)."
            )
        self.max_age = max_age
        self.serializer = serializer

    def unsign(self, token: str) -> tuple[object, int]:
        """Verify ``token`` with the peer's library; return its data and when it was signed.

        :raises InvalidMessage: ``BAD_TAG`` when the signature does not match (or the value
            is not the peer's at all), ``BAD_PAYLOAD`` when a verified value does not decode.
        """
        raise NotImplementedError

    def open(self, token: str, now: int) -> Opened:
        """Open a peer's cookie value as the backends open their own (see the module)."""
        data, signed_at = self.unsign(token)
        if now >= signed_at + self.max_age:
            raise InvalidMessage(RejectReason.EXPIRED, f"{self.peer} cookie signed at {signed_at}")
        if signed_at > now + MAX_CLOCK_SKEW:
            raise InvalidMessage(RejectReason.ISSUED_IN_FUTURE, f"signed at {signed_at}")
        if not isinstance(data, dict) or not all(type(key) is str for key in data):
            raise InvalidMessage(RejectReason.BAD_PAYLOAD, f"{self.peer} session is not a dict")
        payload = self.serializer.dumps(self._carried(data))
        return Opened(payload, signed_at, signed_at + self.max_age, FOREIGN_KEY_INDEX, True)

    def _carried(self, data: dict[str, Any]) -> dict[str, Any]:
        """The entries of ``data`` that the serializer reads back as they are."""
        carried: dict[str, Any] = {}
        for key, value in data.items():
            try:
                self.serializer.dumps({key: value})
            except SerializationError as exc:
                logger.warning(
                    "%s session: %s not carried over (%s); to keep such values, give "
                    "serializer=TaggedJSON() to both SessionMiddleware and %s",
                    self.peer, exc.location, _kind(exc), type(self).__name__,
                )  # fmt: skip
                continue
            carried[key] = value
        return carried

    def session_codec(self, keyring: Keyring) -> MessageCodec:
        """The codec that opens the peer's session cookie (the keyring is not used)."""
        return _SourceCodec(self)

    def jar_codec(self, keyring: Keyring, kind: Literal["signed", "encrypted"]) -> MessageCodec:
        """A codec that opens nothing: the peer's other cookies are not migrated."""
        return _OpensNothing(type(self).__name__)


def _kind(exc: SerializationError) -> str:
    return f"a {exc.value_type.__name__}" if exc.value_type is not None else "not storable"


class _SourceCodec:
    """A migration source as a :class:`~asgisession.crypto.MessageCodec` that only opens."""

    __slots__ = ("_source",)
    records_issued_at = True

    def __init__(self, source: MigrationSource) -> None:
        self._source = source

    def seal(self, payload: bytes, *, purpose: str, issued_at: int, expires_at: int) -> str:
        raise ConfigurationError(f"{type(self._source).__name__} only reads; it cannot seal.")

    def open(self, token: str, *, purpose: str, now: int) -> Opened:
        # The peer's cookie is bound to no purpose; it is read under the session cookie's
        # name only, which is what ties it to this use.
        return self._source.open(token, now)


class _OpensNothing:
    __slots__ = ("_name",)
    records_issued_at = True

    def __init__(self, name: str) -> None:
        self._name = name

    def seal(self, payload: bytes, *, purpose: str, issued_at: int, expires_at: int) -> str:
        raise ConfigurationError(f"{self._name} only reads; it cannot seal.")

    def open(self, token: str, *, purpose: str, now: int) -> Opened:
        raise InvalidMessage(RejectReason.MALFORMED, f"{self._name} migrates the session only")
