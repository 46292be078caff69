"""SessionMiddleware: pure ASGI, lazy, and quiet when nothing changed.

Per request it puts a lazy :class:`~asgisession.session.Session` into ``scope["session"]``
and wraps ``send``; on ``http.response.start`` (or ``websocket.accept``) it asks the
backend what to write and adds ``Set-Cookie`` (plus ``Vary: Cookie`` and
``Cache-Control: private``). The body passes through untouched and is never buffered;
lifespan and unknown scope types pass through as they are. Per-request state lives in the
closure, never on ``self``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal

from ._types import ASGIApp, Message, Receive, Scope, Send
from .backend import SessionBackend
from .cookies import MAX_AGE_LIMIT, CookieOptions, SameSite, cookie_values
from .crypto import Keyring, MessageCodec, MessageEncryptor, MessageVerifier, SecretKeyBase
from .errors import ConfigurationError, RejectReason
from .session import LoadedState, Session
from .stores.cookie import CookieBackend

__all__ = ["SessionMiddleware"]

logger = logging.getLogger("asgisession")

DAY = 24 * 3600
_COMMIT_ON = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})
_HTTP_START = frozenset({"http.response.start", "websocket.http.response.start"})


class SessionMiddleware:
    """Give every HTTP and WebSocket request a session in ``scope["session"]``.

    ::

        app = SessionMiddleware(app, secret_key_base=os.environ["SECRET_KEY_BASE"])

    :param app: the ASGI app to wrap.
    :param secret_key_base: the secret (at least 32 random bytes), or several, newest
        first: the newest seals, all of them open, and a cookie opened with an older one is
        re-issued under the newest on that response.
    :param cookie_name: the session cookie's name, also the purpose its seal is bound to.
    :param cookie_format: ``"encrypted"`` (AES-256-GCM, the default), ``"signed"``
        (HMAC-SHA256: readable by the client, not changeable), or a
        :class:`~asgisession.crypto.MessageCodec` of your own.
    :param lifetime: absolute session lifetime in seconds (default 14 days), counted from
        the first write or the last :meth:`~asgisession.session.Session.regenerate`.
    :param idle_timeout: seconds of inactivity after which the session expires, or ``None``.
    :param max_age: the cookie's Max-Age (default 14 days, at most 400); ``None`` makes it
        end with the browser session. It never outlives the session's own expiry.
    :param path: the cookie's Path.
    :param domain: the cookie's Domain (``None``: this host only).
    :param secure: ``True``, ``False`` or ``"auto"`` (Secure on https and wss requests).
    :param httponly: keep the cookie from JavaScript (default on).
    :param samesite: ``"lax"`` (default), ``"strict"`` or ``"none"`` (needs ``secure=True``).
    :param partitioned: CHIPS partitioned cookie (needs ``secure=True``).
    :param on_reject: called with the :class:`~asgisession.errors.RejectReason` whenever
        an incoming session cookie is refused (for metrics); ``self.rejections`` counts them.
    :param clock: returns the current unix time; for tests.
    :param backend: a custom :class:`~asgisession.backend.SessionBackend`, which brings its
        own cookie options, lifetime and idle timeout (those parameters are then ignored).
    :raises ConfigurationError: for any invalid setting, here rather than per request.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_key_base: SecretKeyBase,
        cookie_name: str = "session",
        cookie_format: Literal["encrypted", "signed"] | MessageCodec = "encrypted",
        lifetime: int = 14 * DAY,
        idle_timeout: int | None = None,
        max_age: int | None = 14 * DAY,
        path: str = "/",
        domain: str | None = None,
        secure: bool | Literal["auto"] = "auto",
        httponly: bool = True,
        samesite: SameSite = "lax",
        partitioned: bool = False,
        on_reject: Callable[[RejectReason], None] | None = None,
        clock: Callable[[], float] = time.time,
        backend: SessionBackend | None = None,
    ) -> None:
        self.app = app
        self.keyring = Keyring(secret_key_base)
        self.rejections: Counter[RejectReason] = Counter()
        self._on_reject = on_reject
        self._clock = clock
        if backend is None:
            _check_seconds("lifetime", lifetime)
            if idle_timeout is not None:
                _check_seconds("idle_timeout", idle_timeout)
            cookie = CookieOptions(
                name=cookie_name, max_age=max_age, path=path, domain=domain, secure=secure,
                httponly=httponly, samesite=samesite, partitioned=partitioned,
            )  # fmt: skip
            backend = CookieBackend(
                _codec(cookie_format, self.keyring), cookie, lifetime=lifetime,
                idle_timeout=idle_timeout,
            )  # fmt: skip
        self.backend = backend

    def _counted(self, state: LoadedState) -> LoadedState:
        if state.rejection is not None:
            self.rejections[state.rejection] += 1
            if self._on_reject is not None:
                self._on_reject(state.rejection)
        return state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        backend = self.backend
        name = backend.cookie.name
        # Everything read from the scope is read now: after the hand-off it is the app's.
        headers: Sequence[tuple[bytes, bytes]] = scope.get("headers") or ()
        secure = backend.cookie.is_secure(scope.get("scheme", "http"))
        now = int(self._clock())

        def load_sync() -> LoadedState:
            return self._counted(backend.open(cookie_values(headers, name), now))

        async def load() -> LoadedState:
            return self._counted(await backend.load(cookie_values(headers, name), now))

        session = Session(load_sync if backend.loads_in_line else None, load)
        scope["session"] = session
        committed = False
        changes_at_commit = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal committed, changes_at_commit
            if not committed and message["type"] in _COMMIT_ON:
                committed = True
                changes_at_commit = session.changes
                if session.accessed:
                    await self._commit(session, message, secure)
            await send(message)

        await self.app(scope, receive, send_wrapper)
        if committed and session.changes != changes_at_commit:
            logger.debug(
                "session changed after the response started; the change was not saved "
                "(write the session before sending the response, or before websocket.accept)"
            )

    async def _commit(self, session: Session, message: Message, secure: bool) -> None:
        set_cookie = await self.backend.commit(session, secure=secure, now=int(self._clock()))
        is_http = message["type"] in _HTTP_START
        if set_cookie is None and not is_http:
            return
        headers = message["headers"] = list(message.get("headers") or ())
        if is_http:
            _add_vary_cookie(headers)
        if set_cookie is not None:
            headers.append((b"set-cookie", set_cookie.encode("latin-1")))
            if is_http and not any(k.lower() == b"cache-control" for k, _ in headers):
                headers.append((b"cache-control", b"private"))


def _codec(
    cookie_format: Literal["encrypted", "signed"] | MessageCodec, keyring: Keyring
) -> MessageCodec:
    if cookie_format == "encrypted":
        return MessageEncryptor(keyring)
    if cookie_format == "signed":
        return MessageVerifier(keyring)
    if isinstance(cookie_format, str) or not hasattr(cookie_format, "open"):
        raise ConfigurationError(
            f"cookie_format={cookie_format!r}; use 'encrypted', 'signed' or a MessageCodec."
        )
    return cookie_format


def _check_seconds(label: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_AGE_LIMIT:
        raise ConfigurationError(
            f"{label}={value!r}; give a whole number of seconds from 1 to 400 days "
            f"({MAX_AGE_LIMIT}): a session cannot outlive the cookie that carries it."
        )


def _add_vary_cookie(headers: list[tuple[bytes, bytes]]) -> None:
    """Merge ``Cookie`` into ``Vary``: the response depends on the session."""
    first = None
    for index, (key, value) in enumerate(headers):
        if key.lower() == b"vary":
            tokens = {token.strip().lower() for token in value.split(b",")}
            if b"cookie" in tokens or b"*" in tokens:
                return
            first = index if first is None else first
    if first is None:
        headers.append((b"vary", b"Cookie"))
    else:
        key, value = headers[first]
        headers[first] = (key, value + b", Cookie" if value.strip() else b"Cookie")
