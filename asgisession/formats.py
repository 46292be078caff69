"""Which codecs a ``cookie_format`` means: the one place a format setting is resolved.

Every cookie format is a :class:`~asgisession.crypto.CookieFormat`: it gives the session
cookie's codec and the cookie jar's two. ``"encrypted"`` and ``"signed"`` name the native
formats (:class:`NativeCookies`); :class:`~asgisession.rails.RailsCookies` and
:class:`~asgisession.rotation.Rotation` are formats of their own; a bare
:class:`~asgisession.crypto.MessageCodec` is the session codec, with the native jar.
:func:`resolve_format` turns any of these into a format, or raises one
:class:`~asgisession.errors.ConfigurationError`; the middleware, the jar, the rotation and
the command line all go through it.
"""

from __future__ import annotations

from typing import Literal, cast

from .crypto import CookieFormat, Keyring, MessageCodec, MessageEncryptor, MessageVerifier
from .errors import ConfigurationError

__all__ = [
    "ENCRYPTION_PURPOSE",
    "SIGNING_PURPOSE",
    "CodecFormat",
    "FormatSpec",
    "NativeCookies",
    "resolve_format",
]

#: The key purposes of the cookie jar's native codecs: the jar's keys are its own.
SIGNING_PURPOSE = "cookie-jar-signing"
ENCRYPTION_PURPOSE = "cookie-jar-encryption"

#: What ``cookie_format`` accepts: a native format by name, a format, or a session codec.
FormatSpec = Literal["encrypted", "signed"] | CookieFormat | MessageCodec


class NativeCookies:
    """asgisession's own cookie format: what ``"encrypted"`` and ``"signed"`` stand for.

    :param session: how the session cookie is sealed: ``"encrypted"`` (AES-256-GCM) or
        ``"signed"`` (HMAC-SHA256, readable by the client). The jar's ``signed`` and
        ``encrypted`` cookies are sealed as their names say, with keys of their own.

    .. versionadded:: 0.2
    """

    __slots__ = ("session",)

    def __init__(self, session: Literal["encrypted", "signed"] = "encrypted") -> None:
        if session not in ("encrypted", "signed"):
            raise _not_a_format(session)
        self.session: Literal["encrypted", "signed"] = session

    def session_codec(self, keyring: Keyring) -> MessageCodec:
        """The session cookie's codec (key purposes ``session-encryption``/``-signing``)."""
        return MessageVerifier(keyring) if self.session == "signed" else MessageEncryptor(keyring)

    def jar_codec(self, keyring: Keyring, kind: Literal["signed", "encrypted"]) -> MessageCodec:
        """The jar's codec of ``kind``, whatever the session cookie uses."""
        return _native_jar_codec(keyring, kind)

    def __repr__(self) -> str:
        return f"NativeCookies({self.session!r})"


class CodecFormat:
    """A session codec of the app's own, with the native cookie jar.

    :param codec: seals and opens the session cookie; it brings its own keys.

    .. versionadded:: 0.2
    """

    __slots__ = ("codec",)
    codec: MessageCodec

    def __init__(self, codec: MessageCodec) -> None:
        self.codec = codec

    def session_codec(self, keyring: Keyring) -> MessageCodec:
        """The codec given, as it is."""
        return self.codec

    def jar_codec(self, keyring: Keyring, kind: Literal["signed", "encrypted"]) -> MessageCodec:
        """The native jar's codec of ``kind``."""
        return _native_jar_codec(keyring, kind)

    def __repr__(self) -> str:
        return f"CodecFormat({self.codec!r})"


def resolve_format(cookie_format: object, *, reading: bool = False) -> CookieFormat:
    """The :class:`~asgisession.crypto.CookieFormat` that ``cookie_format`` names.

    :param cookie_format: ``"encrypted"``, ``"signed"``, a ``CookieFormat`` (e.g.
        ``RailsCookies(...)`` or ``Rotation(...)``) or a ``MessageCodec``.
    :param reading: the format is only read (``Rotation(read=[...])``), so a format that
        cannot write (a migration source, whose ``read_only`` is true) is welcome.
    :raises ConfigurationError: for anything else, or a read-only format to write with.

    .. versionadded:: 0.2
    """
    if isinstance(cookie_format, str):
        if cookie_format in ("encrypted", "signed"):
            return NativeCookies("signed" if cookie_format == "signed" else "encrypted")
        raise _not_a_format(cookie_format)
    if isinstance(cookie_format, CookieFormat):
        if not reading and getattr(cookie_format, "read_only", False) is True:
            raise ConfigurationError(
                f"{cookie_format!r} only reads another framework's cookies; use "
                f"cookie_format=Rotation(write='encrypted', read=[{cookie_format!r}])."
            )
        return cookie_format
    if callable(getattr(cookie_format, "open", None)) and callable(
        getattr(cookie_format, "seal", None)
    ):
        return CodecFormat(cast(MessageCodec, cookie_format))
    raise _not_a_format(cookie_format)


def _native_jar_codec(keyring: Keyring, kind: Literal["signed", "encrypted"]) -> MessageCodec:
    if kind == "signed":
        return MessageVerifier(keyring, key_purpose=SIGNING_PURPOSE)
    return MessageEncryptor(keyring, key_purpose=ENCRYPTION_PURPOSE)


def _not_a_format(value: object) -> ConfigurationError:
    return ConfigurationError(
        f"cookie_format={value!r} is not a cookie format; use 'encrypted', 'signed', "
        "RailsCookies(...), Rotation(...) or a MessageCodec."
    )
