"""Where a request comes from, and which path it names: the checks that read only headers.

Rules, stated once:

1. ``Sec-Fetch-Site`` decides when the browser sends it: ``same-origin`` and ``none`` (a
   typed URL, a bookmark) pass, and so does any value with a trusted ``Origin``;
   ``same-site`` passes with ``allow_same_site``; anything else (``cross-site``, an unknown
   or repeated value) fails.
2. Else ``Origin``: it must be this request's own origin or a trusted one; ``null``,
   malformed or repeated values fail.
3. Else, on https only, ``Referer`` the same way; none at all fails. Plain http without
   these headers, and a WebSocket handshake without ``Origin`` (not a browser's), leave the
   decision to the token. Whether the request is https does not depend on its ``Host``: an
   unparsable or repeated ``Host`` leaves the own origin unknown, and then only a trusted
   origin passes (fail closed).
4. The request's own origin is its scheme and ``Host`` (or the server address when there is
   no ``Host``), or ``X-Forwarded-Proto``/``X-Forwarded-Host`` (their last value) only when
   ``trust_forwarded_headers``. Ports are explicit, so ``http://a`` is ``http://a:80``.
5. A trusted origin is ``scheme://host[:port]``; ``*.`` before the host trusts every
   subdomain, never the bare domain.
6. Only a path already in normal form can be exempt: an encoded slash, backslash or NUL, or
   a path that normalising would change (``//``, ``.``, ``..``), gets every check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from .._http import header_values
from .._types import Scope
from ..errors import ConfigurationError
from .reasons import CSRFReason

__all__: list[str] = []

#: ``(scheme, host, port)``, lower-case, the port always given.
Origin = tuple[str, str, int]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _parse_origin(text: str) -> Origin | None:
    """``(scheme, host, port)`` of an absolute http(s) URL, or ``None``."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


class _TrustedOrigin:
    """One ``trusted_origins`` entry: ``https://app.example.com`` or ``https://*.example.com``."""

    def __init__(self, pattern: str) -> None:
        wildcard = "://*." in pattern
        parsed = _parse_origin(pattern.replace("://*.", "://", 1) if wildcard else pattern)
        rest = pattern.split("://", 1)[-1]
        if parsed is None or "/" in rest or "*" in rest.replace("*.", "", 1 if wildcard else 0):
            raise ConfigurationError(
                f"trusted_origins entry {pattern!r}: give scheme://host[:port], where the "
                "host may start with '*.' (any subdomain), e.g. 'https://*.example.com'."
            )
        self.scheme, self.host, self.port = parsed
        self.wildcard = wildcard

    def matches(self, origin: Origin) -> bool:
        scheme, host, port = origin
        if (scheme, port) != (self.scheme, self.port):
            return False
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host


class _OriginCheck:
    """The origin rule for one middleware's settings; call it with a scope for a verdict."""

    def __init__(
        self,
        trusted_origins: Sequence[str],
        *,
        allow_same_site: bool,
        trust_forwarded_headers: bool,
    ) -> None:
        if isinstance(trusted_origins, str):
            raise ConfigurationError("trusted_origins takes a list of origins, not one string.")
        self._trusted = [_TrustedOrigin(pattern) for pattern in trusted_origins]
        self._allow_same_site = allow_same_site
        self._forwarded = trust_forwarded_headers

    def __call__(self, scope: Scope) -> tuple[CSRFReason | None, list[bytes]]:
        """The origin rule's verdict and the request headers it looked at (for ``Vary``)."""
        headers: Sequence[tuple[bytes, bytes]] = scope.get("headers") or ()
        consulted = [b"Sec-Fetch-Site", b"Origin"]
        origins = header_values(headers, b"origin")
        origin_text = origins[0].decode("latin-1") if len(origins) == 1 else None
        origin = _parse_origin(origin_text) if origin_text is not None else None
        fetch_sites = header_values(headers, b"sec-fetch-site")
        if fetch_sites:
            site = fetch_sites[0].strip().lower() if len(fetch_sites) == 1 else b""
            # "none" is a user-initiated navigation (bookmark, typed URL), never a page's doing.
            if site in (b"same-origin", b"none") or self._is_trusted(origin):
                return None, consulted
            if site == b"same-site":
                return (None if self._allow_same_site else CSRFReason.SAME_SITE), consulted
            return CSRFReason.CROSS_SITE, consulted
        scheme, own = self._own_origin(scope, headers)
        if origins:
            if origin_text is not None and origin_text.strip().lower() == "null":
                return CSRFReason.NULL_ORIGIN, consulted
            if origin is not None and (origin == own or self._is_trusted(origin)):
                return None, consulted
            return CSRFReason.BAD_ORIGIN, consulted
        if scheme != "https" or scope["type"] == "websocket":
            # Plain http without browser signals: the token decides. Browsers always send
            # Origin on WebSocket handshakes, so one without it is not a browser's.
            return None, consulted
        consulted.append(b"Referer")
        referers = header_values(headers, b"referer")
        if not referers:
            return CSRFReason.NO_REFERER, consulted
        referer = _parse_origin(referers[0].decode("latin-1")) if len(referers) == 1 else None
        if referer is not None and (referer == own or self._is_trusted(referer)):
            return None, consulted
        return CSRFReason.BAD_ORIGIN, consulted

    def _own_origin(
        self, scope: Scope, headers: Sequence[tuple[bytes, bytes]]
    ) -> tuple[str, Origin | None]:
        """The request's scheme, and its origin (``None`` when its host cannot be known).

        The scheme is known even when the host is not, so an https request with a missing,
        repeated or unparsable ``Host`` still gets the ``Referer`` rule (and fails it unless
        the ``Referer`` is trusted): nothing can equal an origin that is unknown.
        """
        scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"))
        scheme = scheme or str(scope.get("scheme", "http")).lower()
        hosts = header_values(headers, b"host")
        if self._forwarded:
            protos = header_values(headers, b"x-forwarded-proto")
            forwarded = header_values(headers, b"x-forwarded-host")
            # The last value is the one the nearest proxy added; earlier ones may be the
            # client's own, when a proxy appends instead of replacing.
            if protos:
                scheme = protos[-1].split(b",")[-1].strip().decode("latin-1").lower()
            if forwarded:
                hosts = [forwarded[-1].split(b",")[-1].strip()]
        if len(hosts) != 1:
            server = scope.get("server")
            if hosts or not server or server[1] is None:
                return scheme, None
            hosts = [f"{server[0]}:{server[1]}".encode("latin-1")]
        return scheme, _parse_origin(f"{scheme}://{hosts[0].decode('latin-1')}")

    def _is_trusted(self, origin: Origin | None) -> bool:
        return origin is not None and any(t.matches(origin) for t in self._trusted)


def _normalised_path(scope: Scope) -> str | None:
    """The decoded path if it is already normal (no ``//``, ``.``, ``..``); else ``None``.

    An encoded slash or backslash in ``raw_path`` means the path the router sees may not be
    the one written here, so such a request is never exempt.
    """
    path = scope.get("path")
    raw = scope.get("raw_path")
    if not isinstance(path, str) or "\\" in path or "\x00" in path:
        return None
    if isinstance(raw, bytes) and re.search(rb"%(2f|5c|00)", raw, re.IGNORECASE):
        return None
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    normal = "/" + "/".join(segments) + ("/" if path.endswith("/") and segments else "")
    # Fail closed: a path that normalising changes may route differently from how it
    # matches, so it gets no exemption at all (webhook senders never write such paths).
    return normal if normal == path else None
