"""Store URLs: the parsing every ``from_url`` shares, with errors that name the wrong part.

Each adapter's ``from_url`` takes its own scheme, reads the common options from the query
string (``?timeout=1.5&namespace=app:``) and refuses anything it would otherwise ignore:
an unknown parameter, a value of the wrong kind, a part of the URL the store has no use
for. Errors never repeat a password from the URL: :func:`redact` replaces it with ``***``.

Only the standard library is imported here, so the dispatcher
(:func:`asgisession.stores.from_url`) can read a scheme without importing any client.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from ..errors import ConfigurationError

__all__ = [
    "Converter",
    "as_bool",
    "as_int",
    "as_seconds",
    "as_seconds_or_none",
    "as_str",
    "merge",
    "query_options",
    "redact",
    "split",
    "split_hosts",
]

#: Turns one query value into an option; raises ValueError with the reason when it cannot.
Converter = Callable[[str], Any]


def redact(url: str) -> str:
    """``url`` with the password of its user info (if any) replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc_end = len(rest)
    for stop in "/?#":
        at = rest.find(stop)
        if at != -1:
            netloc_end = min(netloc_end, at)
    netloc = rest[:netloc_end]
    userinfo, at_sign, host = netloc.rpartition("@")
    if not at_sign or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{rest[netloc_end:]}"


def split(url: str, schemes: tuple[str, ...], store: str, *, several: bool = False) -> SplitResult:
    """Split ``url``, checking its scheme is one of ``schemes`` and its port is a number.

    With ``several``, the host part may name several hosts joined by ``,``, whose ports the
    caller checks (:func:`split_hosts`).
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"{store}.from_url() takes a str URL, not {type(url).__name__}.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes or not url.lower().startswith(parts.scheme + "://"):
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ConfigurationError(
            f"{redact(url)!r}: the scheme {parts.scheme + ':' if parts.scheme else '(none)'} "
            f"is not one {store} takes; use {wanted}."
        )
    if "," in parts.netloc and not several:
        raise ConfigurationError(
            f"{redact(url)!r}: the URL names several hosts; {store} talks to one server."
        )
    if parts.fragment:
        raise ConfigurationError(f"{redact(url)!r}: a store URL has no #fragment.")
    try:
        if not several:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        port = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        raise ConfigurationError(
            f"{redact(url)!r}: the port {port!r} is not a number from 1 to 65535."
        ) from None
    return parts


def split_hosts(url: str, netloc: str, default_port: int) -> list[tuple[str, int]]:
    """The ``(host, port)`` pairs of a host part naming one or several hosts joined by ``,``."""
    found = []
    for item in netloc.split(","):
        try:
            parts = urlsplit("//" + item)
            host, port = parts.hostname, parts.port
        except ValueError:
            raise ConfigurationError(
                f"{redact(url)!r}: the host {item!r} has a port that is not a number "
                "from 1 to 65535."
            ) from None
        if not host:
            raise ConfigurationError(f"{redact(url)!r}: the host list has an empty entry.")
        found.append((unquote(host), default_port if port is None else port))
    return found


def query_options(
    url: str, parts: SplitResult, converters: Mapping[str, Converter]
) -> dict[str, Any]:
    """The query parameters of ``url`` converted to options; each known and given once."""
    options: dict[str, Any] = {}
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ConfigurationError(
            f"{redact(url)!r}: the query {parts.query!r} is not name=value pairs joined by &."
        ) from None
    for name, value in pairs:
        if name not in converters:
            known = ", ".join(sorted(converters)) or "none"
            raise ConfigurationError(
                f"{redact(url)!r}: the query parameter {name!r} is not one this store takes "
                f"(it takes: {known})."
            )
        if name in options:
            raise ConfigurationError(
                f"{redact(url)!r}: the query parameter {name!r} is given twice."
            )
        try:
            options[name] = converters[name](value)
        except ValueError as exc:
            raise ConfigurationError(
                f"{redact(url)!r}: the query parameter {name}={value!r} is wrong: {exc}."
            ) from None
    return options


def merge(url: str, from_query: dict[str, Any], keywords: dict[str, Any]) -> dict[str, Any]:
    """Options from the query and from keywords; one given both ways is an error."""
    for name in from_query.keys() & keywords.keys():
        raise ConfigurationError(
            f"{redact(url)!r}: {name} is given both in the URL's query and as a keyword; "
            "give it once."
        )
    return {**keywords, **from_query}


def as_seconds(value: str) -> float:
    """A finite number of seconds > 0."""
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError("give a number of seconds") from None
    if not (0 < seconds < math.inf):
        raise ValueError("give a finite number of seconds > 0")
    return seconds


def as_seconds_or_none(value: str) -> float | None:
    """:func:`as_seconds`, or ``none`` for no bound."""
    if value.lower() == "none":
        return None
    try:
        return as_seconds(value)
    except ValueError:
        raise ValueError("give a finite number of seconds > 0, or none") from None


def as_int(minimum: int) -> Converter:
    """A converter to a whole number >= ``minimum``."""

    def convert(value: str) -> int:
        if not value.isdigit() or int(value) < minimum:
            raise ValueError(f"give a whole number >= {minimum}")
        return int(value)

    return convert


def as_bool(value: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    word = value.lower()
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off"):
        return False
    raise ValueError("give true or false")


def as_str(value: str) -> str:
    """The value as given (already percent-decoded)."""
    return value
