"""SessionMiddleware: pure ASGI, lazy, and quiet when nothing changed.

Per request it puts a lazy :class:`~asgisession.session.Session` into ``scope["session"]``
and wraps ``send``; on ``http.response.start`` (or ``websocket.accept``) it asks the
backend what to write and adds ``Set-Cookie`` (plus ``Vary: Cookie`` and
``Cache-Control: private``). The body passes through untouched and is never buffered;
lifespan and unknown scope types pass through as they are. Per-request state lives in an
:class:`~asgisession._exchange.Exchange` (one per request), never on ``self``.

The request's cookie jar (:func:`~asgisession.jar.cookies`) is created on first use by a
factory in ``scope["asgisession.cookies"]``; its ``Set-Cookie`` headers are appended after
the app's and the session's on the same message.

With a server-side store, a request that carries a session cookie has its session loaded
before the app runs (unless its path is in ``defer_load``). When the store fails, the
request is answered ``503`` with ``Retry-After`` if and only if the app needed the session
(``on_store_error="unavailable"``, the default), or the app gets an empty session that is
never written (``"anonymous"``). A response with a 5xx status never commits the session.

Frameworks catch the ``StoreUnavailable`` raised into the app and send their own 500; no
byte of it has reached the client when its ``http.response.start`` passes through our
``send``, so a 5xx sent after the app hit the failure is replaced by the 503 and its body
dropped. Likewise a commit that fails (``CookieOverflow``, ``SerializationError``, a failed
save) withholds the app's response and sends the one ``on_commit_error`` chooses instead.

The per-request policies (lazy load and preload, the 503 for a store the app needed,
read-only sessions, ``on_commit_error``, lost changes, the jar's headers) are the
exchange's, in :mod:`asgisession._exchange`; this module keeps the settings and checks them
once, in the constructor.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, TypeAlias

from ._exchange import Exchange
from ._http import path_prefixes
from ._options import DEFAULT as _DEFAULT
from ._options import store_timeout as _store_timeout
from ._peer_names import peer_keywords
from ._types import AnyASGIApp, ASGIApp, Receive, Scope, Send
from .backends.base import SessionBackend
from .backends.build import build_backend
from .backends.build import check_seconds as _check_seconds
from .cookies import (
    CookieOptions,
    SameSite,
)
from .crypto import CookieFormat, Keyring, MessageCodec, SecretKeyBase
from .errors import (
    ConfigurationError,
    RejectReason,
    StoreUnavailable,
)
from .expiry import policy_of
from .formats import resolve_format
from .jar import JarCodecs
from .serializer import Serializer
from .session import LoadedState, in_use
from .stores.base import Store

__all__ = ["CommitErrorHook", "SessionMiddleware"]

logger: logging.Logger = logging.getLogger("asgisession")

DAY = 24 * 3600

#: ``on_commit_error(scope, error)``: the ASGI app that answers instead (a Starlette or
#: FastAPI ``Response`` is one), or ``None`` for the default; may be a coroutine function.
CommitErrorHook: TypeAlias = Callable[
    [Scope, Exception], "AnyASGIApp | Awaitable[AnyASGIApp | None] | None"
]


class SessionMiddleware:
    """Give every HTTP and WebSocket request a session in ``scope["session"]``.

    ::

        app = SessionMiddleware(app, secret_key_base=os.environ["SECRET_KEY_BASE"])

    :param app: the ASGI app to wrap.
    :param secret_key_base: the secret (at least 32 random bytes), or several, newest
        first: the newest seals, all of them open, and a cookie opened with an older one is
        re-issued under the newest on that response.
    :param cookie: the session cookie's name and attributes, as a
        :class:`~asgisession.cookies.CookieOptions` (its defaults: ``"session"``, 14 days,
        ``Path=/``, this host only, Secure on https, HttpOnly, ``SameSite=Lax``). The
        keywords ``cookie_name`` to ``partitioned`` below are shortcuts for its fields;
        give one or the other, not both.
    :param cookie_name: the session cookie's name, also the purpose its seal is bound to.
    :param cookie_format: ``"encrypted"`` (AES-256-GCM, the default), ``"signed"``
        (HMAC-SHA256: readable by the client, not changeable), a
        :class:`~asgisession.crypto.MessageCodec` of your own, or a
        :class:`~asgisession.crypto.CookieFormat` such as
        :class:`~asgisession.rails.RailsCookies` (Rails' session cookie and cookie jar) or
        :class:`~asgisession.rotation.Rotation` (write one format, read several).
    :param lifetime: absolute session lifetime in seconds (default 14 days), counted from
        the first write or the last :meth:`~asgisession.session.Session.regenerate`.
    :param idle_timeout: seconds of inactivity after which the session expires, or ``None``.
    :param refresh_after: with ``idle_timeout``: an active session's expiry is pushed
        forward (cookie re-issued; server stores: TTL touched) at most this often; a tenth
        of the idle timeout by default. Read-only requests write nothing in between.
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
        ``self.lost_changes`` counts responses whose session changed after they started
        (those changes cannot be saved; each is logged at WARNING with the keys lost).
        ``self.slow_store_calls`` counts the store's calls slower than its ``slow_after``.
    :param clock: returns the current unix time; for tests.
    :param store: keep session data server-side in this
        :class:`~asgisession.stores.base.Store` (the cookie then holds only a sealed id).
        The middleware does not close it: the app owns it.
    :param store_timeout: *deprecated*: set ``timeout=`` on the store instead. The bundled
        stores time their own calls and ignore it; a store of your own still has each call
        bounded by it (2 s unless given) until it goes away in 0.3.
    :param on_store_error: ``"unavailable"`` (default): a request that needs its session
        while the store fails gets ``503`` with ``Retry-After``; ``"anonymous"``: it gets an
        empty session that is never written (nothing overwrites the user's cookie).
    :param retry_after: the ``Retry-After`` seconds of that 503. It replaces whatever other
        5xx the framework's error handling sends once the app met the failure; a 503 of the
        app's own is kept, with this ``Retry-After`` if it has none.
    :param on_commit_error: called as ``on_commit_error(scope, error)`` when the session cannot
        be saved as the app's response starts (:class:`~asgisession.CookieOverflow`,
        :class:`~asgisession.SerializationError`, :class:`~asgisession.SessionConflict`, or
        :class:`~asgisession.StoreUnavailable` from a failed save). Nothing of the app's
        response has been sent: it is dropped, no ``Set-Cookie`` goes out (the user keeps the
        cookie they have), and the ASGI app the hook returns answers instead (a Starlette or
        FastAPI ``Response`` is one; it may be a coroutine function). Returning ``None``, or no
        hook: the error is raised from the app's ``send``, before anything is sent (a failed
        save: the 503 above). HTTP only: on a WebSocket handshake the error is raised from
        ``send`` as before.
    :param defer_load: path prefixes, or a predicate on the scope, for which a server-side
        session is not loaded before the app runs; such apps ``await session.load()``.
    :param user_key: the session key whose value names the user (e.g. ``"user_id"``), for
        "log out everywhere": see :func:`~asgisession.revocation.revoke_user`. Server-side
        sessions are then listed per user (the store needs a per-user index).
    :param revocation_store: with the cookie store and ``user_key``: the store that keeps
        per-user "not before" times. A cookie that names a user then costs one lookup.
    :param serializer: turns session data into bytes and back: strict JSON by default
        (:data:`~asgisession.serializer.JSON`; a value that would read back changed
        raises :class:`~asgisession.errors.SerializationError`), or
        :class:`~asgisession.tagged.TaggedJSON` for ``datetime``, ``UUID``, ``bytes``,
        ``Decimal``, ``set``, ``tuple`` and more. With ``backend=``, the backend's own.
    :param seal_records: with ``store=``: seal each record at rest (the default), with a
        key derived from ``secret_key_base`` and bound to the record's store key.
        ``False`` writes records in the clear, for tools that must read them; anyone who
        reads the store, a backup or its traffic then reads every session
        (docs/security.md). Either way every form is read.
    :param on_conflict: with ``store=``: a save finding that a parallel request of the same
        session wrote it meanwhile merges key by key (both requests' changes are kept);
        for a key both changed, ``"this_request"`` (default) keeps this request's value,
        ``"error"`` saves nothing and hands :class:`~asgisession.errors.SessionConflict`
        to ``on_commit_error`` (docs/stores.md, "Parallel requests").
    :param backend: a custom :class:`~asgisession.backends.base.SessionBackend`, which brings its
        own cookie options, lifetime and idle timeout (those parameters are then ignored;
        ``cookie=`` is refused).
    :raises ConfigurationError: for any invalid setting, here rather than per request.

    .. versionadded:: 0.1
    """

    @peer_keywords
    def __init__(
        self,
        app: AnyASGIApp,
        *,
        secret_key_base: SecretKeyBase,
        cookie: CookieOptions | None = None,
        cookie_name: str = _DEFAULT,
        cookie_format: Literal["encrypted", "signed"] | MessageCodec | CookieFormat = "encrypted",
        lifetime: int = 14 * DAY,
        idle_timeout: int | None = None,
        refresh_after: int | None = None,
        max_age: int | None = _DEFAULT,
        path: str = _DEFAULT,
        domain: str | None = _DEFAULT,
        secure: bool | Literal["auto"] = _DEFAULT,
        httponly: bool = _DEFAULT,
        samesite: SameSite = _DEFAULT,
        partitioned: bool = _DEFAULT,
        on_reject: Callable[[RejectReason], None] | None = None,
        clock: Callable[[], float] = time.time,
        store: Store | None = None,
        store_timeout: float | None = _DEFAULT,
        on_store_error: Literal["unavailable", "anonymous"] = "unavailable",
        retry_after: int = 5,
        on_commit_error: CommitErrorHook | None = None,
        defer_load: Sequence[str] | Callable[[Scope], bool] = (),
        user_key: str | None = None,
        revocation_store: Store | None = None,
        backend: SessionBackend | None = None,
        serializer: Serializer | None = None,
        seal_records: bool = True,
        on_conflict: Literal["this_request", "error"] = "this_request",
    ) -> None:
        self.app: ASGIApp = app
        self.keyring: Keyring = Keyring(secret_key_base)
        self.rejections: Counter[RejectReason] = Counter()
        #: Responses whose session changed after ``http.response.start`` (or
        #: ``websocket.accept``) was sent: those changes could not be saved.
        self.lost_changes: int = 0
        self._on_reject = on_reject
        self._clock = clock
        resolved = resolve_format(cookie_format)
        self._jar_codecs = JarCodecs(self.keyring, resolved)
        if on_store_error not in ("unavailable", "anonymous"):
            raise ConfigurationError(
                f"on_store_error={on_store_error!r}; use 'unavailable' or 'anonymous'."
            )
        _check_seconds("retry_after", retry_after)
        self._anonymous_on_error = on_store_error == "anonymous"
        self._retry_after = str(retry_after).encode()
        if on_commit_error is not None and not callable(on_commit_error):
            raise ConfigurationError(
                f"on_commit_error={on_commit_error!r}; give a function of (scope, error) "
                "that returns the ASGI app to answer with, or None."
            )
        self._on_commit_error = on_commit_error
        self._defer_load = _deferral(defer_load)
        self.backend: SessionBackend
        self.serializer: Serializer
        self.backend, self.serializer = build_backend(
            self.keyring, resolved, cookie=cookie, cookie_name=cookie_name, max_age=max_age,
            path=path, domain=domain, secure=secure, httponly=httponly, samesite=samesite,
            partitioned=partitioned, lifetime=lifetime, idle_timeout=idle_timeout,
            refresh_after=refresh_after, store=store, timeout=_store_timeout(store_timeout),
            user_key=user_key, revocation_store=revocation_store, backend=backend,
            serializer=serializer, seal_records=seal_records,
            on_conflict=on_conflict,
        )  # fmt: skip
        self._policy = policy_of(self.backend, clock)

    @property
    def slow_store_calls(self) -> Counter[str]:
        """The server-side store's calls slower than its ``slow_after``, by operation.

        Each was logged at WARNING too. Kept by the bundled Redis, memcached and SQLite
        stores (their ``slow_calls``); empty for the cookie store and for stores that keep
        no count.
        """
        counts = getattr(getattr(self.backend, "store", None), "slow_calls", None)
        return counts if isinstance(counts, Counter) else Counter()

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
        exchange = Exchange(self, scope, receive, send)
        if not self.backend.loads_in_line:
            await exchange.preload()
        try:
            await self.app(scope, receive, exchange.send)
        except StoreUnavailable as exc:
            if exchange.replaced:
                return  # answered already: the 503, or the response on_commit_error chose
            if exchange.started:
                raise
            logger.warning("session store unavailable: %s", exc)
            await exchange.unavailable(scope["type"])
            return
        if exchange.committed and in_use(exchange.session):
            exchange.check_lost()


def _deferral(
    defer_load: Sequence[str] | Callable[[Scope], bool],
) -> Callable[[Scope], bool] | None:
    """The predicate of ``defer_load``; ``None`` when nothing is deferred (no call per request)."""
    if callable(defer_load):
        return defer_load
    deferred = path_prefixes("defer_load", defer_load)
    if not defer_load:
        return None
    return lambda scope: deferred(str(scope.get("path", "")))
