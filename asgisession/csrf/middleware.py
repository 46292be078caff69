"""CSRFMiddleware: which requests are checked, in what order, and what a failure does.

Rules, stated once:

1. Safe methods (``GET``, ``HEAD``, ``OPTIONS``, exactly as spelled) pass untouched and never
   rotate the token; so do scope types other than ``http`` (WebSocket handshakes get the
   origin check only with ``check_websocket_origin``). ``_method`` and
   ``X-HTTP-Method-Override`` are never read.
2. Every other method must pass the origin check (``origin.py``), then the token check,
   before the app runs; an exempt path (already in normal form) skips both.
3. The token check tries the header (``X-CSRF-Token`` unless ``header_name`` says otherwise)
   first, and reads the form body (``forms.py``) for the field (``authenticity_token`` unless
   ``field_name`` says otherwise) only when that header is missing or wrong and the body is a
   form. A repeated header or field, or a field that is not a plain string, is ambiguous and
   fails, even when the repeat comes after the app started reading (then the app's
   ``receive`` says the client left and the 403 goes out if no response has started).
4. A failure is logged at WARNING on the ``asgisession.csrf`` logger with the method, the
   path and its :class:`~asgisession.CSRFReason` (WARNING, so that a server's default
   logging shows it), then handled as ``on_failure`` says; the 403 body names the reason
   only with ``expose_reason=True``. A form with no token field in its first
   ``max_body_size`` bytes gets 413, whose body names the option and the header.
5. Every checked response varies on the headers the checks read (``Vary``), merged with the
   app's own.
6. Reading a form body ahead of the app is bounded in time and in number: a body with no
   progress for ``body_timeout`` seconds gets 408, and past ``max_buffered_bodies`` bodies
   being read or held at once a form gets 503 with ``Retry-After`` (its body unread). Both
   are logged at WARNING and counted (:attr:`CSRFMiddleware.bodies_cut_off`,
   :attr:`CSRFMiddleware.bodies_refused_busy`): neither is a CSRF failure, and
   ``on_failure`` is not called.

It runs past 300 lines because the ASGI flow of a checked request (read ahead, replay, late-
repeat refusal, failure strategies) is one job.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Literal

from .._http import header_values, merge_vary, path_prefixes, send_plain
from .._types import AnyASGIApp, ASGIApp, Message, Receive, Scope, Send
from ..errors import ConfigurationError
from ..session import LoadedState, Session
from .fields import _is_form, _scanner
from .forms import _BodyReader, _Disconnected, _Stalled, _TooLarge
from .origin import _normalised_path, _OriginCheck
from .reasons import CSRFReason, _explain
from .tokens import FIELD_NAME, SESSION_KEY, _decode_secret, _session, token_matches

__all__ = ["SAFE_METHODS", "CSRFMiddleware", "FailureHandler"]

#: One logger for the whole package, named as it was before the split (docs/csrf.md).
logger: logging.Logger = logging.getLogger("asgisession.csrf")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FailureHandler = Callable[[Scope, Receive, Send, CSRFReason], Awaitable[None]]

_FORBIDDEN = "Forbidden: the request failed the CSRF check."
#: The Retry-After (seconds) of the 503 for a form over ``max_buffered_bodies``.
_BUSY_RETRY_AFTER = b"5"
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP field name (RFC 9110 token)


def _exemption(exempt: Sequence[str] | Callable[[str], bool]) -> Callable[[str], bool]:
    return exempt if callable(exempt) else path_prefixes("exempt", exempt)


class _Busy(Exception):
    """``max_buffered_bodies`` bodies are being read or held: this one is not read."""


class CSRFMiddleware:
    """Reject cross-site requests that change state: an origin check, then a token check.

    ::

        app = SessionMiddleware(
            CSRFMiddleware(app, trusted_origins=["https://*.example.com"], exempt=["/hooks/"]),
            secret_key_base=os.environ["SECRET_KEY_BASE"],
        )

    Templates call :func:`csrf_token` for the hidden ``authenticity_token`` field or the
    ``X-CSRF-Token`` header (both names can be changed, for example to Django's).
    :class:`~asgisession.SessionMiddleware` must wrap this one.

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
    :param max_body_size: bytes of form body read to find the token field; a form whose
        field comes later (after large file parts) gets 413. What is read ahead of the
        field is held in memory up to 256 KiB, then in a temporary file.
    :param body_timeout: seconds a form body being read for its token may go without a
        byte (10 by default; ``None``: no limit). Past it (cut off between ``body_timeout``
        and ``body_timeout * 1.125`` seconds after the last message) the request gets 408
        and the bytes held are dropped. Only the reading ahead of the app is timed: once
        the app reads the body, a time limit is the app's or the server's.
    :param max_buffered_bodies: how many form bodies may be read ahead or held (not yet
        handed to the app) at once, across all requests (64 by default; ``None``: no
        limit). A form beyond it gets 503 with ``Retry-After: 5``, its body unread. With
        ``max_body_size``, it bounds what bodies cost: at most 256 KiB each in memory
        (16 MiB in all by default), the rest of each in a temporary file.
    :param field_name: the form field that carries the token (Django's templates post
        ``csrfmiddlewaretoken``, Flask-WTF's ``csrf_token``).
    :param header_name: the request header that carries the token (Django and Flask-WTF
        use ``X-CSRFToken``).
    :param expose_reason: put the reason of a refusal in the 403 body, for development
        (it tells an attacker which check failed; it is always logged).
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
        max_body_size: int = 10 * 1024 * 1024,
        allow_unmasked: bool = False,
        check_websocket_origin: bool = False,
        field_name: str = FIELD_NAME,
        header_name: str = "X-CSRF-Token",
        expose_reason: bool = False,
        body_timeout: float | None = 10.0,
        max_buffered_bodies: int | None = 64,
    ) -> None:
        self.app: ASGIApp = app
        #: Form bodies cut off by ``body_timeout`` (each answered 408), since the start.
        self.bodies_cut_off: int = 0
        #: Forms refused with 503 because ``max_buffered_bodies`` were being read at once.
        self.bodies_refused_busy: int = 0
        self._buffered = 0
        self._origin_check = _OriginCheck(
            trusted_origins,
            allow_same_site=allow_same_site,
            trust_forwarded_headers=trust_forwarded_headers,
        )
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
        if not isinstance(field_name, str) or not field_name:
            raise ConfigurationError(f"field_name={field_name!r}; give the form field's name.")
        if not isinstance(header_name, str) or not _HEADER.fullmatch(header_name):
            raise ConfigurationError(f"header_name={header_name!r}; give an HTTP header name.")
        self._field = field_name
        self._header = header_name
        self._header_key = header_name.lower().encode("ascii")
        self._expose_reason = expose_reason
        if body_timeout is not None and (
            isinstance(body_timeout, bool)
            or not isinstance(body_timeout, (int, float))
            or not 0 < body_timeout < float("inf")
        ):
            raise ConfigurationError(f"body_timeout={body_timeout!r}; give seconds > 0, or None.")
        self._body_timeout = body_timeout
        if max_buffered_bodies is not None and (
            isinstance(max_buffered_bodies, bool)
            or not isinstance(max_buffered_bodies, int)
            or max_buffered_bodies < 1
        ):
            raise ConfigurationError(
                f"max_buffered_bodies={max_buffered_bodies!r}; give a count >= 1, or None."
            )
        self._max_buffered = max_buffered_bodies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket" and self._check_websocket:
            path = _normalised_path(scope)
            if path is None or not self._exempt(path):
                reason, _ = self._origin_check(scope)
                if reason is not None:
                    self._log(scope, reason)
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

        reader: _BodyReader | None = None
        reason, consulted = self._origin_check(scope)
        if reason is None:
            try:
                reason, reader = await self._token_check(scope, receive, session)
            except _TooLarge:
                await self._too_large(scope, send)
                return
            except _Stalled as stalled:
                await self._stalled(scope, send, stalled.read)
                return
            except _Busy:
                await self._busy(scope, send)
                return
            except _Disconnected:
                return
        consulted.append(self._header.encode("ascii"))
        started = False
        watched: _BodyReader | None = None  # the reader of an accepted form, watched for repeats

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if watched is not None and watched.refused_late:
                return  # the 403 went out, or the app's response is cut short
            if message["type"] == "http.response.start":
                started = True
                headers = message["headers"] = list(message.get("headers") or ())
                merge_vary(headers, consulted)
            await send(message)

        if reason is None:
            if reader is None:
                await self.app(scope, receive, send_wrapper)
                return

            async def refuse_late() -> None:
                late = CSRFReason.AMBIGUOUS_TOKEN
                self._log(scope, late)
                if not started:  # from now on send_wrapper drops what the app sends
                    vary = [(b"vary", b", ".join(consulted))]
                    await send_plain(send, 403, self._forbidden(late), vary)

            watched = reader
            reader.on_refused_late = refuse_late
            try:
                await self.app(scope, reader.receive, send_wrapper)
            except Exception:
                # The app saw "the client left" because of the repeat, and said so by raising.
                if not reader.refused_late:
                    raise
            finally:
                reader.close()
            return
        self._log(scope, reason)
        try:
            failed_receive = receive if reader is None else reader.receive
            await self._fail(scope, failed_receive, send_wrapper, session, reason)
        finally:
            if reader is not None:
                reader.close()

    async def _fail(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        session: MutableMapping[str, Any],
        reason: CSRFReason,
    ) -> None:
        """What ``on_failure`` says to do with a refused request."""
        on_failure = self._on_failure
        if on_failure == "forbid":
            await send_plain(send, 403, self._forbidden(reason))
        elif on_failure == "null_session":
            # The outer SessionMiddleware keeps its own object: what the app writes to this
            # one is dropped with it.
            empty = Session(lambda: LoadedState(read_only=True))
            await self.app({**scope, "session": empty}, receive, send)
        elif on_failure == "reset_session":
            if isinstance(session, Session):
                session.reset()
            else:
                session.clear()
            await self.app(scope, receive, send)
        else:
            assert callable(on_failure)
            await on_failure(scope, receive, send, reason)

    def _log(self, scope: Scope, reason: CSRFReason) -> None:
        logger.warning(
            "CSRF check failed: %s %s refused (%s): %s.",
            scope.get("method", "WEBSOCKET"),
            scope.get("path"),
            reason.value,
            _explain(reason, header=self._header, field=self._field),
        )

    def _forbidden(self, reason: CSRFReason) -> bytes:
        if not self._expose_reason:
            return (_FORBIDDEN + "\n").encode()
        explained = _explain(reason, header=self._header, field=self._field)
        return f"{_FORBIDDEN}\nReason: {reason.value}: {explained}.\n".encode()

    async def _too_large(self, scope: Scope, send: Send) -> None:
        explained = (
            f"no {self._field} field in the first {self._max_body} bytes of the form body. "
            f"Put the {self._field} field before the file fields, send the token in the "
            f"{self._header} header instead, or raise CSRFMiddleware's max_body_size"
        )
        logger.warning(
            "CSRF check failed: %s %s refused with 413: %s.",
            scope["method"], scope.get("path"), explained,
        )  # fmt: skip
        await send_plain(send, 413, f"Payload Too Large: {explained}.\n".encode())

    async def _stalled(self, scope: Scope, send: Send, read: int) -> None:
        self.bodies_cut_off += 1
        explained = (
            f"no byte of the form body arrived for {self._body_timeout} s "
            f"(after {read} bytes); CSRFMiddleware's body_timeout"
        )
        logger.warning(
            "Form body cut off: %s %s answered 408: %s.",
            scope["method"], scope.get("path"), explained,
        )  # fmt: skip
        await send_plain(send, 408, f"Request Timeout: {explained}.\n".encode())

    async def _busy(self, scope: Scope, send: Send) -> None:
        self.bodies_refused_busy += 1
        explained = (
            f"{self._max_buffered} form bodies are being read already "
            "(CSRFMiddleware's max_buffered_bodies)"
        )
        logger.warning(
            "Form body not read: %s %s answered 503: %s.",
            scope["method"], scope.get("path"), explained,
        )  # fmt: skip
        body = f"Service Unavailable: {explained}; try again shortly.\n".encode()
        await send_plain(send, 503, body, [(b"retry-after", _BUSY_RETRY_AFTER)])

    async def _token_check(
        self, scope: Scope, receive: Receive, session: MutableMapping[str, Any]
    ) -> tuple[CSRFReason | None, _BodyReader | None]:
        """The token rule's verdict, and the body reader the app must read from, if any."""
        if isinstance(session, Session):
            await session.load()  # a deferred server-side session
        secret = _decode_secret(session.get(SESSION_KEY))
        headers: Sequence[tuple[bytes, bytes]] = scope.get("headers") or ()
        sent = header_values(headers, self._header_key)
        if len(sent) > 1:
            return CSRFReason.AMBIGUOUS_TOKEN, None
        if sent and self._matches(secret, sent[0], scope):
            return None, None
        content_types = header_values(headers, b"content-type")
        if len(content_types) != 1 or not _is_form(content_types[0]):
            return (CSRFReason.BAD_TOKEN if sent else CSRFReason.MISSING_TOKEN), None
        if self._max_buffered is not None and self._buffered >= self._max_buffered:
            raise _Busy
        scanner = _scanner(content_types[0], self._field)
        reader = _BodyReader(receive, scanner, self._max_body, self._body_timeout, self._unbuffered)
        self._buffered += 1  # until reader.close()
        try:
            await reader.read()
        except BaseException:
            reader.close()
            raise
        found = reader.scanner.found
        if reader.scanner.malformed and not found:
            return CSRFReason.MALFORMED_BODY, reader
        if len(found) > 1 or None in found:
            return CSRFReason.AMBIGUOUS_TOKEN, reader
        if not found:
            return (CSRFReason.BAD_TOKEN if sent else CSRFReason.MISSING_TOKEN), reader
        value = found[0]
        assert value is not None
        if self._matches(secret, value, scope):
            return None, reader
        return CSRFReason.BAD_TOKEN, reader

    def _unbuffered(self) -> None:
        self._buffered -= 1

    def _matches(self, secret: bytes | None, token: bytes, scope: Scope) -> bool:
        if secret is None or not token.isascii():
            return False
        return token_matches(
            secret, token.decode("ascii"), allow_unmasked=self._allow_unmasked,
            path=str(scope.get("path", "")), method=str(scope.get("method", "")),
        )  # fmt: skip
