"""Sans-IO cookie handling: parse ``Cookie`` headers, render ``Set-Cookie``, check sizes.

Nothing here knows about ASGI beyond header pairs, and nothing here knows about sessions.
Option names are Set-Cookie's own: ``max_age``, ``path``, ``domain``, ``secure``,
``httponly``, ``samesite``, ``partitioned``.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from .errors import ConfigurationError

__all__ = [
    "MAX_AGE_LIMIT",
    "MAX_COOKIE_HEADER_SIZE",
    "MAX_COOKIE_SIZE",
    "CookieOptions",
    "RequestCookies",
    "cookie_header_size",
    "cookie_values",
    "http_date",
    "iter_cookies",
]

#: Browsers keep a cookie only while its name plus value is at most this many bytes
#: (RFC 6265bis section 5.7, and what Chrome and Firefox enforce).
MAX_COOKIE_SIZE = 4096
#: Browsers cap Max-Age at 400 days (RFC 6265bis section 5.5), so asgisession does too.
MAX_AGE_LIMIT = 400 * 24 * 3600
#: A request whose ``Cookie`` headers together pass this many bytes has none of its cookies
#: read. Common servers and proxies refuse header lines of 8-16 KiB by default, so no site
#: that works gets this much; and reading it would let one request buy tens of
#: milliseconds of CPU per parse: a 1 MiB header of short pairs is 200,000 cookies.
MAX_COOKIE_HEADER_SIZE = 64 * 1024

SameSite = Literal["lax", "strict", "none"]
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: RFC 6265's cookie-octets: a value may hold these bytes and no others.
_COOKIE_OCTETS = bytes(
    [0x21, *range(0x23, 0x2C), *range(0x2D, 0x3B), *range(0x3C, 0x5C), *range(0x5D, 0x7F)]
)
_ATTRIBUTE_VALUE = re.compile(r"[\x20-\x3a\x3c-\x7e]*")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(timestamp: float) -> str:
    """An IMF-fixdate (RFC 9110 section 5.6.7), e.g. ``Thu, 01 Jan 1970 00:00:00 GMT``.

    Written out by hand because ``strftime`` names days and months in the process locale,
    and ``email.utils.formatdate`` is slower (see docs/benchmarks.md, "Shapes chosen for
    speed").
    """
    t = time.gmtime(timestamp)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


@functools.lru_cache(maxsize=16)
def _expires(timestamp: float) -> str:
    """:func:`http_date`, cached: the Set-Cookies of one second share it ("cookie write" row)."""
    return http_date(timestamp)


def cookie_header_size(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """Bytes in all of a request's ``Cookie`` header values together."""
    return sum(len(value) for name, value in headers if name.lower() == b"cookie")


def iter_cookies(
    headers: Iterable[tuple[bytes, bytes]], *, max_size: int | None = MAX_COOKIE_HEADER_SIZE
) -> Iterator[tuple[str, str]]:
    """Yield ``(name, value)`` for every cookie in every ``Cookie`` header, in order.

    All ``cookie`` headers are read, since HTTP/2 may split one into several. Parsing is
    forgiving (RFC 6265bis section 5.6 style) and linear in the header's size: pairs
    without ``=`` or with an empty name are skipped, and one pair of surrounding double
    quotes is removed from a value. Bytes are read as Latin-1 so no input can fail to decode.

    :param max_size: when the ``Cookie`` headers together are longer than this many bytes,
        nothing is yielded (see :data:`MAX_COOKIE_HEADER_SIZE`); ``None`` reads any size,
        and reads ``headers`` lazily, as it goes.
    """
    if max_size is not None:
        yield from RequestCookies(headers, max_size=max_size).pairs()
        return
    for header_name, header_value in headers:
        if header_name.lower() == b"cookie":
            yield from _parse((header_value,))


def _parse(header_values: Iterable[bytes]) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of ``Cookie`` header values (see :func:`iter_cookies`)."""
    pairs = []
    for header_value in header_values:
        for part in header_value.decode("latin-1").split(";"):
            name, eq, value = part.partition("=")
            name = name.strip(" \t")
            if not eq or not name:
                continue
            value = value.strip(" \t")
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            pairs.append((name, value))
    return pairs


def cookie_values(headers: Iterable[tuple[bytes, bytes]], name: str) -> list[str]:
    """Every value sent for the cookie ``name``, in the order the client sent them.

    Browsers send the cookie with the longest matching Path first (RFC 6265 section 5.4),
    so the first value is the most specific one. Empty when the ``Cookie`` headers are
    over :data:`MAX_COOKIE_HEADER_SIZE`.
    """
    return [value for cookie_name, value in iter_cookies(headers) if cookie_name == name]


class RequestCookies:
    """One request's cookies: its ``Cookie`` headers found at most once, parsed at most once.

    The middleware makes one per request and shares it between the session and the cookie
    jar; nothing is scanned until one of them needs a cookie, so a request that uses
    neither pays for none of it. Oversized headers (over :data:`MAX_COOKIE_HEADER_SIZE`
    together) are refused whole before any parsing: they then hold no cookies at all.

    :param headers: the request's header pairs (any case); kept, and read on first use.
    :param max_size: the limit on the ``Cookie`` headers' bytes together.

    .. versionadded:: 0.2
    """

    __slots__ = ("_cookie_headers", "_headers", "_max_size", "_oversized", "_pairs")

    def __init__(
        self, headers: Iterable[tuple[bytes, bytes]], *, max_size: int = MAX_COOKIE_HEADER_SIZE
    ) -> None:
        self._headers = headers
        self._max_size = max_size
        self._cookie_headers: list[bytes] = []
        self._oversized: bool | None = None
        self._pairs: list[tuple[str, str]] | None = None

    @property
    def oversized(self) -> bool:
        """Whether the ``Cookie`` headers together pass ``max_size`` bytes."""
        if self._oversized is None:
            # Only a 6-byte name can be "cookie": the length test spares a lower() per header.
            for name, value in self._headers:
                if len(name) == 6 and name.lower() == b"cookie":
                    self._cookie_headers.append(value)
            self._oversized = sum(map(len, self._cookie_headers)) > self._max_size
        return self._oversized

    def pairs(self) -> list[tuple[str, str]]:
        """Every ``(name, value)``, in order, as :func:`iter_cookies` yields them."""
        if self._pairs is None:
            self._pairs = [] if self.oversized else _parse(self._cookie_headers)
        return self._pairs

    def values(self, name: str) -> list[str]:
        """Every value sent for the cookie ``name``, as :func:`cookie_values` lists them."""
        # Hot path of every request that reads its session (the middleware section's read
        # and write rows): pairs() inline and a loop, not a comprehension, spare two frames,
        # and the property is asked only when the middleware has not asked it already.
        pairs = self._pairs
        if pairs is None:
            oversized = self.oversized if self._oversized is None else self._oversized
            pairs = self._pairs = [] if oversized else _parse(self._cookie_headers)
        found = []
        for cookie_name, value in pairs:
            if cookie_name == name:
                found.append(value)
        return found


@dataclass(frozen=True, slots=True)
class CookieOptions:
    """How a cookie is named and scoped; validated when built.

    :param name: the cookie name, an RFC 6265 token. A ``__Host-`` name needs
        ``secure=True``, ``path="/"`` and no domain; a ``__Secure-`` name needs ``secure=True``.
    :param max_age: seconds the browser keeps the cookie, at most 400 days; ``None`` for a
        cookie that ends with the browser session.
    :param path: the Path attribute.
    :param domain: the Domain attribute; ``None`` keeps the cookie on this host only.
    :param secure: ``True``, ``False``, or ``"auto"`` (Secure when the request came over
        https or wss).
    :param httponly: hide the cookie from JavaScript.
    :param samesite: ``"lax"``, ``"strict"`` or ``"none"`` (which needs ``secure=True``).
    :param partitioned: CHIPS partitioning (needs ``secure=True``).
    :raises ConfigurationError: for any invalid combination.

    .. versionadded:: 0.1
    """

    name: str = "session"
    max_age: int | None = 14 * 24 * 3600
    path: str = "/"
    domain: str | None = None
    secure: bool | Literal["auto"] = "auto"
    httponly: bool = True
    samesite: SameSite = "lax"
    partitioned: bool = False
    # What render() puts around the value and lifetime, joined once here rather than per
    # Set-Cookie: "Path=..[; Domain=..]", and the flags without and with Secure.
    _scope: str = field(init=False, repr=False, compare=False)
    _flags: tuple[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or _TOKEN.fullmatch(self.name) is None:
            raise ConfigurationError(
                f"cookie name {self.name!r} is not a valid cookie name: use letters, digits "
                "and !#$%&'*+-.^_`|~ only (no spaces, quotes, commas, semicolons or '=')."
            )
        samesite = self.samesite.lower() if isinstance(self.samesite, str) else ""
        if samesite not in ("lax", "strict", "none"):
            raise ConfigurationError(f"samesite={self.samesite!r}; use 'lax', 'strict' or 'none'.")
        object.__setattr__(self, "samesite", samesite)
        if not isinstance(self.secure, bool) and self.secure != "auto":
            raise ConfigurationError(f"secure={self.secure!r}; use True, False or 'auto'.")
        if self.max_age is not None and (
            isinstance(self.max_age, bool)
            or not isinstance(self.max_age, int)
            or not 0 < self.max_age <= MAX_AGE_LIMIT
        ):
            raise ConfigurationError(
                f"max_age={self.max_age}; it must be between 1 second and 400 days "
                f"({MAX_AGE_LIMIT} s), the most browsers keep, or None for a cookie that "
                "ends with the browser session."
            )
        for label, text in (("path", self.path), ("domain", self.domain)):
            if text is not None and (not text or _ATTRIBUTE_VALUE.fullmatch(text) is None):
                raise ConfigurationError(
                    f"{label}={text!r} is empty or holds a control character or ';'."
                )
        if not self.path.startswith("/"):
            raise ConfigurationError(f"path={self.path!r} must start with '/'.")
        if samesite == "none" and self.secure is not True:
            raise ConfigurationError(
                "samesite='none' needs secure=True: browsers drop a SameSite=None cookie "
                "that is not Secure. Use samesite='lax' unless the session must travel in "
                "cross-site requests."
            )
        if self.partitioned and self.secure is not True:
            raise ConfigurationError(
                "partitioned=True needs secure=True (CHIPS cookies are Secure)."
            )
        if self.name.startswith("__Host-") and (
            self.secure is not True or self.path != "/" or self.domain is not None
        ):
            raise ConfigurationError(
                f"cookie {self.name!r}: a __Host- cookie needs secure=True, path='/' and no "
                "domain, or browsers refuse it."
            )
        if self.name.startswith("__Secure-") and self.secure is not True:
            raise ConfigurationError(
                f"cookie {self.name!r}: a __Secure- cookie needs secure=True, or browsers "
                "refuse it."
            )
        scope = [f"Path={self.path}"]
        if self.domain is not None:
            scope.append(f"Domain={self.domain}")
        object.__setattr__(self, "_scope", "; ".join(scope))
        object.__setattr__(self, "_flags", (self._flags_for(False), self._flags_for(True)))

    def _flags_for(self, secure: bool) -> str:
        flags = ["Secure"] if secure else []
        if self.httponly:
            flags.append("HttpOnly")
        flags.append(f"SameSite={self.samesite.capitalize()}")
        if self.partitioned:
            flags.append("Partitioned")
        return "; ".join(flags)

    def is_secure(self, scheme: str) -> bool:
        """Whether the Secure attribute applies to a request with this URL scheme."""
        return self.secure is True or (self.secure == "auto" and scheme in ("https", "wss"))

    def render(
        self, value: str, *, secure: bool, max_age: int | None = None, now: float | None = None
    ) -> str:
        """Render a ``Set-Cookie`` header value.

        :param value: the cookie value; it must already be made of cookie-octets.
        :param secure: whether to add ``Secure`` (see :meth:`is_secure`).
        :param max_age: the Max-Age to send, ``None`` for a browser-session cookie; an
            ``Expires`` date computed from ``now`` (default: the current time) goes with it
            for old clients.
        """
        if not value.isascii() or value.encode().translate(None, _COOKIE_OCTETS):
            raise ValueError("cookie value holds characters a cookie cannot carry")
        if max_age is None:
            return self._join(value, None, secure)
        expires = _expires((time.time() if now is None else now) + max_age)
        return self._join(value, f"Max-Age={max_age}; Expires={expires}", secure)

    def render_deletion(self, *, secure: bool) -> str:
        """A ``Set-Cookie`` value that makes browsers drop the cookie (same Path and Domain)."""
        return self._join("", "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT", secure)

    def _join(self, value: str, lifetime: str | None, secure: bool) -> str:
        if lifetime is None:
            return f"{self.name}={value}; {self._scope}; {self._flags[secure]}"
        return f"{self.name}={value}; {self._scope}; {lifetime}; {self._flags[secure]}"

    def size(self, value: str) -> int:
        """Bytes the browser counts against ``MAX_COOKIE_SIZE`` (4096): name plus value."""
        # The name is a token, so ASCII; so is every sealed value. For ASCII, characters are
        # bytes: isascii() reads a flag, where encode() would copy up to 4 KiB per call.
        return len(self.name) + (len(value) if value.isascii() else len(value.encode()))
