"""A cookie jar for the app's own cookies, next to the session: plain, signed, encrypted.

``cookies(scope)`` returns the request's :class:`CookieJar`, created on first use (a request
that never calls it pays nothing). :class:`~asgisession.SessionMiddleware` adds the jar's
pending ``Set-Cookie`` headers to ``http.response.start`` (or ``websocket.accept``) after
the app's own and the session's, replacing none of them; like the session cookie, they are
not sent on a 5xx response.

Choices, stated once:

1. Reading: every ``cookie`` header is read, and the first value of a name wins (browsers
   send the most specific Path first). A cookie set or deleted on this request reads as
   its new value.
2. Writing takes a cookie's attributes as one :class:`CookieOptions` (``options=``), or as
   keywords of the same names, which are shortcuts over it; either way the session
   cookie's checks apply (bad values raise :class:`~asgisession.errors.ConfigurationError`).
   Writing the same name, path and domain twice sends only the last one.
3. Plain values must already be cookie-octets (RFC 6265: no spaces, quotes, commas,
   semicolons, backslashes or non-ASCII); anything else raises :class:`ValueError` rather
   than being escaped, so what is read back is exactly what was written, also for cookies
   that JavaScript or another server set. Use :attr:`CookieJar.signed` or
   :attr:`CookieJar.encrypted` for arbitrary (JSON) values.
4. Signed and encrypted values are JSON, sealed with keys derived from
   ``secret_key_base`` for the jar alone (key purposes ``cookie-jar-signing`` and
   ``cookie-jar-encryption``), bound to the cookie's name (a value moved to another name
   does not open) and to an expiry of now + ``max_age``, or now + 400 days for a cookie
   that ends with the browser session (the longest any cookie lives). A value that does
   not open, for whatever reason, reads as missing.

It runs past 300 lines because the jar is three views of one set of cookies (plain, signed,
encrypted, each permanent or not) that must render and refuse alike.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

import msgspec

from . import serializer
from ._scope import NO_MIDDLEWARE
from ._types import AnyScope
from .cookies import (
    MAX_AGE_LIMIT,
    MAX_COOKIE_SIZE,
    CookieOptions,
    SameSite,
    iter_cookies,
)
from .crypto import CookieFormat, Keyring, MessageCodec
from .errors import ConfigurationError, CookieOverflow, InvalidMessage
from .formats import ENCRYPTION_PURPOSE as ENCRYPTION_PURPOSE
from .formats import SIGNING_PURPOSE as SIGNING_PURPOSE
from .formats import NativeCookies

__all__ = ["SCOPE_KEY", "CookieJar", "JarCodecs", "PermanentCookies", "SealedCookies", "cookies"]

logger: logging.Logger = logging.getLogger("asgisession")

#: Where SessionMiddleware puts the jar factory in the scope.
SCOPE_KEY = "asgisession.cookies"
#: A jar cookie's attributes when none are given: CookieOptions' own, but a cookie that
#: ends with the browser session (no Max-Age). The name is always the one written.
_DEFAULTS = CookieOptions(name="cookie", max_age=None)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_Kind = Literal["signed", "encrypted"]


def cookies(scope: AnyScope) -> CookieJar:
    """The cookie jar of this request (one per request, created on first call).

    :raises ConfigurationError: when no :class:`~asgisession.SessionMiddleware` wraps the app.

    .. versionadded:: 0.1
    """
    factory: Callable[[], CookieJar] | None = scope.get(SCOPE_KEY)
    if factory is None:
        raise ConfigurationError(NO_MIDDLEWARE)
    return factory()


class JarCodecs:
    """The jar's signing and encrypting codecs for one keyring, built on first use.

    :param keyring: the secrets.
    :param cookie_format: the format whose jar codecs these are (e.g. Rails'); the native
        one by default (see :func:`~asgisession.formats.resolve_format`).

    .. versionadded:: 0.1
    """

    __slots__ = ("_codecs", "_format", "keyring")

    def __init__(self, keyring: Keyring, cookie_format: CookieFormat | None = None) -> None:
        self.keyring: Keyring = keyring
        self._format: CookieFormat = NativeCookies() if cookie_format is None else cookie_format
        self._codecs: dict[_Kind, MessageCodec] = {}

    def get(self, kind: _Kind) -> MessageCodec:
        """The codec for ``"signed"`` or ``"encrypted"`` cookies."""
        codec = self._codecs.get(kind)
        if codec is None:
            codec = self._codecs[kind] = self._format.jar_codec(self.keyring, kind)
        return codec


class CookieJar(Mapping[str, str]):
    """The request's cookies as a read-only mapping, plus :meth:`set` and :meth:`delete`.

    ::

        jar = cookies(scope)
        theme = jar.get("theme")
        jar.set("theme", "dark", max_age=30 * 24 * 3600)
        jar.permanent.signed.set("remember", {"user": 42})
        user = jar.signed.get("remember")

    Built by the middleware; get it with :func:`cookies`.

    :param headers: the request headers.
    :param codecs: the signing and encrypting codecs.
    :param clock: returns unix time.
    :param scheme: the request's URL scheme, for ``secure="auto"``.
    :param pairs: the request's cookies, already parsed from ``headers`` (the middleware
        shares its own parse); ``None`` parses ``headers`` here.

    .. versionadded:: 0.1
    """

    __slots__ = ("_clock", "_codecs", "_pending", "_scheme", "_values", "read")

    def __init__(
        self,
        headers: Iterable[tuple[bytes, bytes]],
        *,
        codecs: JarCodecs,
        clock: Callable[[], float],
        scheme: str = "http",
        pairs: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        self._values: dict[str, str] = {}
        for name, value in iter_cookies(headers) if pairs is None else pairs:
            self._values.setdefault(name, value)
        self._codecs = codecs
        self._clock = clock
        self._scheme = scheme
        self._pending: dict[tuple[str, str, str | None], str] = {}
        #: Whether the app read a request cookie (the response then varies on Cookie).
        self.read: bool = False

    # -- reading -----------------------------------------------------------------------------

    def __getitem__(self, name: str) -> str:
        self.read = True
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        self.read = True
        return iter(self._values)

    def __len__(self) -> int:
        self.read = True
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        self.read = True
        return name in self._values

    # -- writing -----------------------------------------------------------------------------

    def set(
        self,
        name: str,
        value: str,
        *,
        options: CookieOptions | None = None,
        max_age: int | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool | Literal["auto"] = "auto",
        httponly: bool = True,
        samesite: SameSite = "lax",
        partitioned: bool = False,
        permanent: bool = False,
    ) -> None:
        """Send cookie ``name`` with ``value`` (cookie-octets only) on this response.

        The cookie's attributes come as one :class:`~asgisession.CookieOptions`
        (``options=``; its ``name`` is not used, and its ``max_age`` counts), or as the
        keywords, which are shortcuts for its fields: one given with another value than
        its default here replaces that field of ``options``.

        :param options: the cookie's attributes; by default those of ``CookieOptions``,
            but ending with the browser session (no Max-Age).
        :param max_age: seconds the browser keeps it (at most 400 days); ``None`` ends it
            with the browser session.
        :param permanent: keep it as long as browsers allow (Max-Age of 400 days).
        :raises ConfigurationError: for an invalid name or attribute (the session cookie's
            rules), or ``max_age`` together with ``permanent``.
        :raises ValueError: when ``value`` holds characters a cookie cannot carry.
        :raises CookieOverflow: when name plus value pass 4096 bytes.
        """
        attributes = _options(
            name, options, permanent, max_age=max_age, path=path, domain=domain,
            secure=secure, httponly=httponly, samesite=samesite, partitioned=partitioned,
        )  # fmt: skip
        self._write(attributes, value)

    def delete(self, name: str, path: str = "/", domain: str | None = None) -> None:
        """Tell the browser to drop cookie ``name`` (give the Path and Domain it was set with).

        :raises ConfigurationError: for an invalid name, path or domain.
        """
        # __Host- and __Secure- cookies can only be deleted by a Secure Set-Cookie.
        secure: bool | Literal["auto"] = (
            True if name.startswith(("__Host-", "__Secure-")) else "auto"
        )
        options = _options(name, None, False, max_age=None, path=path, domain=domain, secure=secure)
        is_secure = options.is_secure(self._scheme)
        self._pending[(name, path, domain)] = options.render_deletion(secure=is_secure)
        self._values.pop(name, None)

    @property
    def permanent(self) -> PermanentCookies:
        """Writes cookies with the longest Max-Age browsers keep: 400 days."""
        return PermanentCookies(self)

    @property
    def signed(self) -> SealedCookies:
        """Cookies whose JSON value is readable by the client but cannot be changed."""
        return SealedCookies(self, "signed")

    @property
    def encrypted(self) -> SealedCookies:
        """Cookies whose JSON value is secret and cannot be changed."""
        return SealedCookies(self, "encrypted")

    def pending(self) -> list[str]:
        """The ``Set-Cookie`` values this jar will send, in the order they were first set."""
        return list(self._pending.values())

    def _write(self, options: CookieOptions, value: str) -> None:
        size = options.size(value)
        if size > MAX_COOKIE_SIZE:
            raise CookieOverflow(options.name, size, MAX_COOKIE_SIZE)
        try:
            rendered = options.render(
                value,
                secure=options.is_secure(self._scheme),
                max_age=options.max_age,
                now=self._clock(),
            )
        except ValueError:
            raise ValueError(
                f"cookie {options.name!r}: the value holds characters a cookie cannot carry "
                "(space, '\"', ',', ';', '\\', control or non-ASCII characters). Encode it "
                "first (e.g. urllib.parse.quote), or use jar.signed / jar.encrypted, which "
                "take any JSON value."
            ) from None
        self._pending[(options.name, options.path, options.domain)] = rendered
        self._values[options.name] = value

    def __repr__(self) -> str:
        return f"<CookieJar {sorted(self._values)!r} pending={len(self._pending)}>"


class PermanentCookies:
    """``jar.permanent``: writes with a Max-Age of 400 days, the longest browsers keep.

    .. versionadded:: 0.1
    """

    __slots__ = ("_jar",)

    def __init__(self, jar: CookieJar) -> None:
        self._jar = jar

    def set(
        self,
        name: str,
        value: str,
        *,
        options: CookieOptions | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool | Literal["auto"] = "auto",
        httponly: bool = True,
        samesite: SameSite = "lax",
        partitioned: bool = False,
    ) -> None:
        """:meth:`CookieJar.set` with ``permanent=True`` (which replaces ``options.max_age``)."""
        attributes = _options(
            name, options, True, path=path, domain=domain, secure=secure, httponly=httponly,
            samesite=samesite, partitioned=partitioned,
        )  # fmt: skip
        self._jar._write(attributes, value)

    @property
    def signed(self) -> SealedCookies:
        """Signed cookies, written permanently."""
        return SealedCookies(self._jar, "signed", permanent=True)

    @property
    def encrypted(self) -> SealedCookies:
        """Encrypted cookies, written permanently."""
        return SealedCookies(self._jar, "encrypted", permanent=True)


class SealedCookies:
    """``jar.signed`` and ``jar.encrypted``: JSON values sealed and bound to the cookie name.

    A cookie that is missing, tampered with, sealed under a foreign secret, moved from
    another name or expired reads as missing: ``get()`` returns the default, ``[]`` raises
    :class:`KeyError` and ``in`` is false.

    .. versionadded:: 0.1
    """

    __slots__ = ("_jar", "_kind", "_permanent")

    def __init__(self, jar: CookieJar, kind: _Kind, *, permanent: bool = False) -> None:
        self._jar = jar
        self._kind = kind
        self._permanent = permanent

    def get(self, name: str, default: Any = None) -> Any:
        """The opened value of cookie ``name``, or ``default`` if it is missing or invalid."""
        raw = self._jar.get(name)
        if raw is None:
            return default
        codec = self._jar._codecs.get(self._kind)
        try:
            opened = codec.open(raw, purpose=name, now=int(self._jar._clock()))
            return _decoder.decode(opened.payload)
        except InvalidMessage as exc:
            logger.debug("%s cookie %r refused: %s", self._kind, name, exc)
        except serializer.DECODE_ERRORS:  # authentic but not JSON: not for our own seals
            logger.debug("%s cookie %r refused: not JSON", self._kind, name)
        return default

    def __getitem__(self, name: str) -> Any:
        value = self.get(name, _MISSING)
        if value is _MISSING:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name, _MISSING) is not _MISSING

    def set(
        self,
        name: str,
        value: Any,
        *,
        options: CookieOptions | None = None,
        max_age: int | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool | Literal["auto"] = "auto",
        httponly: bool = True,
        samesite: SameSite = "lax",
        partitioned: bool = False,
        permanent: bool = False,
    ) -> None:
        """Seal ``value`` (any JSON value) into cookie ``name``; options as in ``jar.set``.

        The seal expires with the cookie: now + ``max_age``, or now + 400 days for a
        browser-session cookie.

        :raises TypeError: when ``value`` cannot be written as JSON.
        """
        attributes = _options(
            name, options, permanent or self._permanent, max_age=max_age, path=path,
            domain=domain, secure=secure, httponly=httponly, samesite=samesite,
            partitioned=partitioned,
        )  # fmt: skip
        try:
            payload = _encoder.encode(value)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise TypeError(
                f"cookie {name!r}: the value cannot be written as JSON ({exc}); signed and "
                "encrypted cookies hold JSON only (dict with str keys, list, str, int, "
                "float, bool, None)."
            ) from exc
        now = int(self._jar._clock())
        sealed = self._jar._codecs.get(self._kind).seal(
            payload,
            purpose=name,
            issued_at=now,
            expires_at=now + (attributes.max_age or MAX_AGE_LIMIT),
        )
        self._jar._write(attributes, sealed)

    def delete(self, name: str, path: str = "/", domain: str | None = None) -> None:
        """Same as :meth:`CookieJar.delete`."""
        self._jar.delete(name, path=path, domain=domain)


_MISSING = object()


def _options(
    name: str, options: CookieOptions | None, permanent: bool, **keywords: Any
) -> CookieOptions:
    """Cookie ``name``'s attributes, built here for every jar method.

    The keywords over the jar's defaults; or ``options``, with each keyword that differs
    from its default applied over it.
    """
    if permanent:
        if keywords.get("max_age") is not None:
            raise ConfigurationError(f"cookie {name!r}: give max_age or permanent=True, not both.")
        keywords["max_age"] = MAX_AGE_LIMIT
    if options is None:  # the common case, built directly (every caller gives max_age)
        return CookieOptions(name=name, **keywords)
    changes = {key: value for key, value in keywords.items() if value != getattr(_DEFAULTS, key)}
    return dataclasses.replace(options, name=name, **changes)
