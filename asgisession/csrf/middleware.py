"""CSRFMiddleware: which requests are checked, in what order, and what a failure does.

Rules, stated once:

1. Safe methods (``GET``, ``HEAD``, ``OPTIONS``, exactly as spelled) pass untouched and never
   rotate the token; so do scope types other than ``http`` (WebSocket handshakes get the
   origin check only with ``check_websocket_origin``). ``_method`` and
   ``X-HTTP-Method-Override`` are never read.
2. Every other method must pass the origin check (``origin.py``), then the token check,
   before the app runs; an exempt path (already in normal form) skips both.
3. The token check tries ``X-CSRF-Token`` first, and reads the form body (``forms.py``) only
   when that header is missing or wrong and the body is a form. A repeated header or field,
   or a field that is not a plain string, is ambiguous and fails.
4. A failure is logged at INFO on the ``asgisession.csrf`` logger with its
   :class:`~asgisession.CSRFReason`, then handled as ``on_failure`` says; the 403 body never
   names the reason. A form body over ``max_body_size`` gets 413.
5. Every checked response varies on the headers the checks read (``Vary``), merged with the
   app's own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Literal

from .._http import header_values, merge_vary, path_prefixes, send_plain
from .._types import AnyASGIApp, ASGIApp, Message, Receive, Scope, Send
from ..errors import ConfigurationError
from ..session import LoadedState, Session
from .forms import _Disconnected, _form_fields, _is_form, _read_body, _TooLarge
from .origin import _normalised_path, _OriginCheck
from .reasons import CSRFReason
from .tokens import HEADER_NAME, SESSION_KEY, _decode_secret, _session, token_matches

__all__ = ["SAFE_METHODS", "CSRFMiddleware", "FailureHandler"]

#: One logger for the whole package, named as it was before the split (docs/csrf.md).
logger: logging.Logger = logging.getLogger("asgisession.csrf")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FailureHandler = Callable[[Scope, Receive, Send, CSRFReason], Awaitable[None]]

_FORBIDDEN = b"Forbidden: the request failed the CSRF check.\n"
_TOO_LARGE = b"Payload Too Large: the form body is over the CSRF reader's limit.\n"


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
        body, receive = await _read_body(headers, receive, self._max_body)
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
