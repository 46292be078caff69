"""CSRFMiddleware and the token helpers: Rails-compatible authenticity tokens, pure ASGI.

Rules, stated once:

1. Safe methods (``GET``, ``HEAD``, ``OPTIONS``, exactly as spelled) pass untouched and never
   rotate the token. Every other method must pass both checks below before the app runs;
   ``_method`` and ``X-HTTP-Method-Override`` are never read.
2. Origin first: ``Sec-Fetch-Site`` when the browser sends it, else ``Origin``, else (on
   https only) ``Referer``. The request's own origin comes from the scope and ``Host``, or
   from ``X-Forwarded-Proto``/``X-Forwarded-Host`` (last value) only when
   ``trust_forwarded_headers``.
3. Then the token: the session holds a 32-byte secret (``session["_csrf_token"]``, 43
   characters of unpadded base64url, as Rails 7 stores it). Pages get
   ``mask(HMAC-SHA256(secret, "!real_csrf_token"))``, a fresh one-time pad per call (BREACH),
   86 characters. It comes back in ``X-CSRF-Token`` or in the form field
   ``authenticity_token``; Rails' per-form tokens (for this request's path and method) are
   accepted too, so forms rendered by a Rails app sharing the session post here. Every
   comparison is constant-time.
4. A form body is read only when the header token is missing or wrong, only for the two form
   content types, at most ``max_body_size`` bytes (else 413), and replayed byte for byte.
   Anything malformed (encoding, length, repeats, non-string values) is a rejection, never
   an exception.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Literal
from urllib.parse import unquote_to_bytes, urlsplit

from ._http import header_values, merge_vary, path_prefixes, send_plain
from ._types import AnyASGIApp, AnyScope, ASGIApp, Message, Receive, Scope, Send
from .crypto import b64url_decode, b64url_encode
from .errors import ConfigurationError, InvalidMessage
from .session import LoadedState, Session

__all__ = ["CSRFMiddleware", "CSRFReason", "csrf_token"]

logger: logging.Logger = logging.getLogger("asgisession.csrf")

SESSION_KEY = "_csrf_token"
FIELD_NAME = "authenticity_token"
HEADER_NAME = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_LENGTH = 32
_GLOBAL_MESSAGE = b"!real_csrf_token"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]
FailureHandler = Callable[[Scope, Receive, Send, "CSRFReason"], Awaitable[None]]


class CSRFReason(str, enum.Enum):
    """Why a request failed the CSRF checks; stable strings, fit for logs and metrics.

    .. versionadded:: 0.1
    """

    #: ``Sec-Fetch-Site: cross-site`` (or an unknown value) and no trusted ``Origin``.
    CROSS_SITE = "cross_site"
    #: ``Sec-Fetch-Site: same-site`` without ``allow_same_site`` or a trusted ``Origin``.
    SAME_SITE = "same_site"
    #: ``Origin`` (or ``Referer``) names another, untrusted origin, or is malformed.
    BAD_ORIGIN = "bad_origin"
    #: ``Origin: null`` (sandboxed frames, some redirects).
    NULL_ORIGIN = "null_origin"
    #: An https request with neither ``Sec-Fetch-Site``, ``Origin`` nor ``Referer``.
    NO_REFERER = "no_referer"
    #: No token in the header or the form.
    MISSING_TOKEN = "missing_token"  # noqa: S105 - a reason, not a secret
    #: A token is present but wrong: another session, bad length or characters, unmasked.
    BAD_TOKEN = "bad_token"  # noqa: S105 - a reason, not a secret
    #: The token header or field appears more than once, or is not a plain string.
    AMBIGUOUS_TOKEN = "ambiguous_token"  # noqa: S105 - a reason, not a secret
    #: The form body could not be parsed (bad boundary, truncated multipart).
    MALFORMED_BODY = "malformed_body"


# -- tokens --------------------------------------------------------------------------------


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


def _session(scope: AnyScope) -> MutableMapping[str, Any]:
    session = scope.get("session")
    if session is None:
        raise ConfigurationError(
            "CSRF protection needs scope['session']: wrap the app as "
            "SessionMiddleware(CSRFMiddleware(app, ...), secret_key_base=...), with "
            "SessionMiddleware outside."
        )
    return session  # type: ignore[no-any-return]  # the scope is untyped


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


# -- bodies --------------------------------------------------------------------------------

# One `; name=value` parameter; the value is a token or a quoted string with \-escapes.
_PARAM = re.compile(rb';\s*([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;"]*)\s*', re.DOTALL)
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_MAX_PARTS = 1000


def _parse_params(value: bytes) -> tuple[bytes, dict[bytes, bytes]] | None:
    """``type; a=1; b="2"`` to ``(b"type", {b"a": b"1", b"b": b"2"})``; ``None`` if malformed."""
    head, sep, rest = value.partition(b";")
    params: dict[bytes, bytes] = {}
    rest = sep + rest
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.end() == pos:
            return None
        key, raw = match.group(1).lower(), match.group(2)
        if raw.startswith(b'"'):
            raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1], flags=re.DOTALL)
        if key in params:  # a repeated parameter (two boundaries, two names) is ambiguous
            return None
        params[key] = raw
        pos = match.end()
    return head.strip().lower(), params


_Found = list[bytes | None]  # the field's values; None stands for a non-string value


def _urlencoded_fields(body: bytes, name: bytes) -> _Found:
    found: _Found = []
    for pair in body.split(b"&"):
        key, _, value = pair.partition(b"=")
        key = unquote_to_bytes(key.replace(b"+", b" "))
        if key == name:
            found.append(unquote_to_bytes(value.replace(b"+", b" ")))
        elif key.startswith(name + b"["):  # authenticity_token[]=… : an array or hash
            found.append(None)
    return found


def _multipart_fields(body: bytes, boundary: bytes, name: bytes) -> _Found | None:
    """The values of field ``name`` in a multipart body; ``None`` if it is malformed.

    Just enough of RFC 7578 to find one field: delimiter lines, part headers and the
    ``name`` of ``Content-Disposition``. The body is already bounded by the caller.
    """
    delimiter = b"--" + boundary
    separator = b"\r\n" + delimiter
    if body.startswith(delimiter):
        pos = len(delimiter)
    else:  # a preamble before the first delimiter is allowed, and ignored
        first = body.find(separator)
        if first < 0:
            return None
        pos = first + len(separator)
    found: _Found = []
    for _ in range(_MAX_PARTS):
        if body.startswith(b"--", pos):  # the close delimiter; the epilogue is ignored
            return found
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):
            return None
        start = eol + 2
        end = body.find(separator, start)
        if end < 0:
            return None
        part = body[start:end]
        if part.startswith(b"\r\n"):
            head, content = b"", part[2:]
        else:
            head_end = part.find(b"\r\n\r\n")
            if head_end < 0:
                return None
            head, content = part[:head_end], part[head_end + 4 :]
        dispositions = []
        for line in head.split(b"\r\n"):
            key, colon, value = line.partition(b":")
            if not colon:
                return None
            if key.strip().lower() == b"content-disposition":
                dispositions.append(_parse_params(value))
        if len(dispositions) > 1 or (dispositions and dispositions[0] is None):
            return None
        if dispositions:
            disposition = dispositions[0]
            assert disposition is not None
            kind, params = disposition
            field = params.get(b"name")
            if kind == b"form-data" and field == name:
                found.append(None if b"filename" in params else content)
            elif kind == b"form-data" and field is not None and field.startswith(name + b"["):
                found.append(None)
        pos = end + len(separator)
    return None  # too many parts to be a form worth reading


def _form_fields(content_type: bytes, body: bytes) -> _Found | None:
    parsed = _parse_params(content_type)
    if parsed is None:
        return None
    kind, params = parsed
    name = FIELD_NAME.encode()
    if kind == b"application/x-www-form-urlencoded":
        return _urlencoded_fields(body, name)
    boundary = params.get(b"boundary")
    if boundary is None or not _BOUNDARY.fullmatch(boundary):
        return None
    return _multipart_fields(body, boundary, name)


def _is_form(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind.decode("latin-1") in _FORM_TYPES


# -- origins -------------------------------------------------------------------------------


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


# -- the middleware ------------------------------------------------------------------------

_FORBIDDEN = b"Forbidden: the request failed the CSRF check.\n"
_TOO_LARGE = b"Payload Too Large: the form body is over the CSRF reader's limit.\n"


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


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


def _exemption(exempt: Sequence[str] | Callable[[str], bool]) -> Callable[[str], bool]:
    return exempt if callable(exempt) else path_prefixes("exempt", exempt)


class CSRFMiddleware:
    """Reject cross-site requests that change state: an origin check, then a token check.

    ::

        app = SessionMiddleware(
            CSRFMiddleware(app, trusted_origins=["https://*.example.com"], exempt=["/hooks/"]),
            secret_key_base=os.environ["SECRET_KEY_BASE"],
        )

    Templates call :func:`csrf_token` for the hidden ``authenticity_token`` field or the
    ``X-CSRF-Token`` header. :class:`~asgisession.SessionMiddleware` must wrap this one.

    :param app: the ASGI app to protect.
    :param trusted_origins: other origins allowed to post here, ``scheme://host[:port]``;
        a host may start with ``*.`` to trust every subdomain (not the bare domain).
    :param allow_same_site: let ``Sec-Fetch-Site: same-site`` (a sibling subdomain) pass the
        origin check; off by default, since a sibling subdomain is not this app.
    :param trust_forwarded_headers: take this request's own origin from
        ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` (their last value: the one the
        nearest proxy added). Only behind a proxy that sets both.
    :param exempt: path prefixes, or a predicate on the normalised path, that skip both
        checks (webhooks that authenticate otherwise).
    :param on_failure: ``"forbid"`` (403, the default), ``"null_session"`` (the app runs
        with an empty session that is never saved), ``"reset_session"`` (the session is
        reset, then the app runs), or an async ``handler(scope, receive, send, reason)``.
    :param max_body_size: bytes of form body read to find the token; more gets 413.
    :param allow_unmasked: accept the raw 43-character secret as a token (off: it may have
        leaked through a page that printed the session).
    :param check_websocket_origin: run the origin check on WebSocket handshakes too; a
        failure closes the handshake (the server answers 403).
    :raises ConfigurationError: for any invalid setting.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        app: AnyASGIApp,
        *,
        trusted_origins: Sequence[str] = (),
        allow_same_site: bool = False,
        trust_forwarded_headers: bool = False,
        exempt: Sequence[str] | Callable[[str], bool] = (),
        on_failure: Literal["forbid", "null_session", "reset_session"] | FailureHandler = "forbid",
        max_body_size: int = 1024 * 1024,
        allow_unmasked: bool = False,
        check_websocket_origin: bool = False,
    ) -> None:
        self.app: ASGIApp = app
        if isinstance(trusted_origins, str):
            raise ConfigurationError("trusted_origins takes a list of origins, not one string.")
        self._trusted = [_TrustedOrigin(pattern) for pattern in trusted_origins]
        self._allow_same_site = allow_same_site
        self._forwarded = trust_forwarded_headers
        self._exempt = _exemption(exempt)
        if not callable(on_failure) and on_failure not in (
            "forbid",
            "null_session",
            "reset_session",
        ):
            raise ConfigurationError(
                f"on_failure={on_failure!r}; use 'forbid', 'null_session', 'reset_session' "
                "or an async handler(scope, receive, send, reason)."
            )
        self._on_failure = on_failure
        if isinstance(max_body_size, bool) or not isinstance(max_body_size, int):
            raise ConfigurationError(f"max_body_size={max_body_size!r}; give a byte count.")
        if max_body_size < 1:
            raise ConfigurationError(f"max_body_size={max_body_size!r}; give at least 1.")
        self._max_body = max_body_size
        self._allow_unmasked = allow_unmasked
        self._check_websocket = check_websocket_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket" and self._check_websocket:
            path = _normalised_path(scope)
            if path is None or not self._exempt(path):
                reason, _ = self._origin_check(scope)
                if reason is not None:
                    logger.info("CSRF: websocket handshake refused (%s)", reason.value)
                    await send({"type": "websocket.close", "code": 1008})
                    return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        session = _session(scope)
        if scope.get("method") in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        path = _normalised_path(scope)
        if path is not None and self._exempt(path):
            await self.app(scope, receive, send)
            return

        reason, consulted = self._origin_check(scope)
        if reason is None:
            try:
                reason, receive = await self._token_check(scope, receive, session)
            except _TooLarge:
                logger.info("CSRF: form body over %d bytes", self._max_body)
                await send_plain(send, 413, _TOO_LARGE)
                return
            except _Disconnected:
                return
        consulted.append(b"X-CSRF-Token")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message["headers"] = list(message.get("headers") or ())
                merge_vary(headers, consulted)
            await send(message)

        if reason is None:
            await self.app(scope, receive, send_wrapper)
            return
        logger.info(
            "CSRF check failed (%s): %s %r", reason.value, scope["method"], scope.get("path")
        )
        on_failure = self._on_failure
        if on_failure == "forbid":
            await send_plain(send_wrapper, 403, _FORBIDDEN)
        elif on_failure == "null_session":
            # The outer SessionMiddleware keeps its own object: what the app writes to this
            # one is dropped with it.
            empty = Session(lambda: LoadedState(read_only=True))
            await self.app({**scope, "session": empty}, receive, send_wrapper)
        elif on_failure == "reset_session":
            if isinstance(session, Session):
                session.reset()
            else:
                session.clear()
            await self.app(scope, receive, send_wrapper)
        else:
            assert callable(on_failure)
            await on_failure(scope, receive, send_wrapper, reason)

    def _own_origin(self, scope: Scope, headers: Sequence[tuple[bytes, bytes]]) -> Origin | None:
        scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"))
        scheme = scheme or str(scope.get("scheme", "http"))
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
                return None
            hosts = [f"{server[0]}:{server[1]}".encode("latin-1")]
        return _parse_origin(f"{scheme}://{hosts[0].decode('latin-1')}")

    def _trusted_origin(self, origin: Origin | None) -> bool:
        return origin is not None and any(t.matches(origin) for t in self._trusted)

    def _origin_check(self, scope: Scope) -> tuple[CSRFReason | None, list[bytes]]:
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
            if site in (b"same-origin", b"none") or self._trusted_origin(origin):
                return None, consulted
            if site == b"same-site":
                return (None if self._allow_same_site else CSRFReason.SAME_SITE), consulted
            return CSRFReason.CROSS_SITE, consulted
        own = self._own_origin(scope, headers)
        if origins:
            if origin_text is not None and origin_text.strip().lower() == "null":
                return CSRFReason.NULL_ORIGIN, consulted
            if origin is not None and (origin == own or self._trusted_origin(origin)):
                return None, consulted
            return CSRFReason.BAD_ORIGIN, consulted
        if own is None or own[0] != "https" or scope["type"] == "websocket":
            # Plain http without browser signals: the token decides. Browsers always send
            # Origin on WebSocket handshakes, so one without it is not a browser's.
            return None, consulted
        consulted.append(b"Referer")
        referers = header_values(headers, b"referer")
        if not referers:
            return CSRFReason.NO_REFERER, consulted
        referer = _parse_origin(referers[0].decode("latin-1")) if len(referers) == 1 else None
        if referer is not None and (referer == own or self._trusted_origin(referer)):
            return None, consulted
        return CSRFReason.BAD_ORIGIN, consulted

    async def _token_check(
        self, scope: Scope, receive: Receive, session: MutableMapping[str, Any]
    ) -> tuple[CSRFReason | None, Receive]:
        """The token rule's verdict, and the ``receive`` the app must use from now on."""
        if isinstance(session, Session):
            await session.load()  # a deferred server-side session
        secret = _decode_secret(session.get(SESSION_KEY))
        headers: Sequence[tuple[bytes, bytes]] = scope.get("headers") or ()
        sent = header_values(headers, HEADER_NAME)
        if len(sent) > 1:
            return CSRFReason.AMBIGUOUS_TOKEN, receive
        if sent and self._matches(secret, sent[0], scope):
            return None, receive
        content_types = header_values(headers, b"content-type")
        if len(content_types) != 1 or not _is_form(content_types[0]):
            return (CSRFReason.BAD_TOKEN if sent else CSRFReason.MISSING_TOKEN), receive
        body, receive = await self._read_body(headers, receive)
        found = _form_fields(content_types[0], body)
        if found is None:
            return CSRFReason.MALFORMED_BODY, receive
        if len(found) > 1 or None in found:
            return CSRFReason.AMBIGUOUS_TOKEN, receive
        if not found:
            return (CSRFReason.BAD_TOKEN if sent else CSRFReason.MISSING_TOKEN), receive
        value = found[0]
        assert value is not None
        if self._matches(secret, value, scope):
            return None, receive
        return CSRFReason.BAD_TOKEN, receive

    def _matches(self, secret: bytes | None, token: bytes, scope: Scope) -> bool:
        if secret is None or not token.isascii():
            return False
        return token_matches(
            secret, token.decode("ascii"), allow_unmasked=self._allow_unmasked,
            path=str(scope.get("path", "")), method=str(scope.get("method", "")),
        )  # fmt: skip

    async def _read_body(
        self, headers: Sequence[tuple[bytes, bytes]], receive: Receive
    ) -> tuple[bytes, Receive]:
        """Buffer the whole body (bounded) and return it with a ``receive`` that replays it."""
        lengths = header_values(headers, b"content-length")
        if lengths and lengths[0].strip().isdigit() and int(lengths[0]) > self._max_body:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return body, replay
