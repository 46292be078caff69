"""SessionMiddleware: pure ASGI, lazy, and quiet when nothing changed.

Per request it puts a lazy :class:`~asgisession.session.Session` into ``scope["session"]``
and wraps ``send``; on ``http.response.start`` (or ``websocket.accept``) it asks the
backend what to write and adds ``Set-Cookie`` (plus ``Vary: Cookie`` and
``Cache-Control: private``). The body passes through untouched and is never buffered;
lifespan and unknown scope types pass through as they are. Per-request state lives in the
closure, never on ``self``.

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

It runs past 300 lines because the per-request policies (lazy load and preload, the 503 for
a store the app needed, read-only sessions, ``on_commit_error``, lost changes, the jar's
headers) share one request's state inside one ``send`` wrapper; the constructor's checks are
the other half, and the first to move out when it grows again.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeAlias

from ._http import cookie_path_matches, keep_private, merge_vary, path_prefixes, send_plain
from ._options import DEFAULT as _DEFAULT
from ._options import store_timeout as _store_timeout
from ._peer_names import peer_keywords
from ._types import AnyASGIApp, ASGIApp, Message, Receive, Scope, Send
from .backends.base import SessionBackend
from .backends.build import build_backend
from .backends.build import check_seconds as _check_seconds
from .cookies import (
    MAX_COOKIE_HEADER_SIZE,
    CookieOptions,
    RequestCookies,
    SameSite,
)
from .crypto import CookieFormat, Keyring, MessageCodec, SecretKeyBase
from .errors import (
    ConfigurationError,
    CookieOverflow,
    RejectReason,
    SerializationError,
    SessionConflict,
    StoreUnavailable,
)
from .expiry import policy_of
from .formats import resolve_format
from .jar import SCOPE_KEY as JAR_SCOPE_KEY
from .jar import CookieJar, JarCodecs
from .serializer import Serializer
from .session import Commit, LoadedState, Session, SessionControl, in_use
from .stores.base import Store

__all__ = ["CommitErrorHook", "SessionMiddleware"]

logger: logging.Logger = logging.getLogger("asgisession")

DAY = 24 * 3600
_COMMIT_ON = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})
_HTTP_START = frozenset({"http.response.start", "websocket.http.response.start"})
_VARY = (b"Cookie",)
#: What a commit can fail with: the session is then not saved and the app's response withheld.
_COMMIT_ERRORS = (CookieOverflow, SerializationError, SessionConflict, StoreUnavailable)

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

    def _refused_oversized(self) -> LoadedState:
        logger.debug(
            "Cookie headers over %d bytes: no cookie read, the session starts empty",
            MAX_COOKIE_HEADER_SIZE,
        )
        return self._counted(LoadedState(had_cookie=True, rejection=RejectReason.OVERSIZED))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        backend = self.backend
        name = backend.cookie.name
        # Everything read from the scope is read now: after the hand-off it is the app's.
        # The Cookie headers are found and parsed at most once, on first use, for the session
        # and the cookie jar alike. Oversized ones are refused whole, unparsed.
        headers: Sequence[tuple[bytes, bytes]] = scope.get("headers") or ()
        request_cookies = RequestCookies(headers)
        scheme = scope.get("scheme", "http")
        request_path = scope.get("path", "")
        now = int(self._clock())

        def load_sync() -> LoadedState:
            if request_cookies.oversized:
                return self._refused_oversized()
            state = backend.open(request_cookies.values(name), now)
            return state if state.rejection is None else self._counted(state)

        # Whether the app needed its session while the store failed: its 5xx becomes our 503.
        load_failed = preload_failed = False

        async def load() -> LoadedState:
            nonlocal load_failed
            if request_cookies.oversized:
                return self._refused_oversized()
            try:
                return self._counted(await backend.load(request_cookies.values(name), now))
            except StoreUnavailable:
                if not self._anonymous_on_error:
                    load_failed = True
                    raise
                logger.warning("session store unavailable; serving an anonymous session")
                return LoadedState(had_cookie=True, read_only=True)

        session = Session(load_sync if backend.loads_in_line else None, load, policy=self._policy)
        # Made only for a session that is preloaded or used: most requests need none.
        control: SessionControl | None = None
        if not backend.loads_in_line:
            control = SessionControl(session)
            if request_cookies.oversized:
                control.attach(self._refused_oversized())
            elif not any(request_cookies.values(name)):
                control.attach(LoadedState())  # a new session: nothing to fetch
            elif not self._defer_load(scope):
                try:
                    control.attach(await load())
                except StoreUnavailable as exc:
                    control.fail_with(exc)
                    load_failed, preload_failed = False, True
        scope["session"] = session
        jar: list[CookieJar] = []  # filled by cookies(scope): no jar, no cost

        def make_jar() -> CookieJar:
            if not jar:
                jar.append(
                    CookieJar(
                        headers,
                        codecs=self._jar_codecs,
                        clock=self._clock,
                        scheme=scheme,
                        pairs=request_cookies.pairs(),
                    )
                )
            return jar[0]

        scope[JAR_SCOPE_KEY] = make_jar
        started = committed = replaced = False
        changes_at_commit = resets_at_commit = 0
        committed_as: Commit | None = None  # what was written, to name what a late change lost

        async def send_wrapper(message: Message) -> None:
            nonlocal started, committed, replaced, changes_at_commit, resets_at_commit
            nonlocal committed_as, control
            if replaced:
                return  # our answer went out in place of the app's response: drop the rest
            status = message.get("status", 200)
            if (
                message["type"] == "http.response.start"
                and status >= 500
                # the app met the store failure (a failed preload counts once it was used)
                and (load_failed or (preload_failed and in_use(session) and not session.loaded))
            ):
                if status == 503:  # the app's own page for it: kept, with a Retry-After
                    headers = message["headers"] = list(message.get("headers") or ())
                    if not any(key.lower() == b"retry-after" for key, _ in headers):
                        headers.append((b"retry-after", self._retry_after))
                else:
                    logger.warning("session store unavailable: the app's %d sent as 503", status)
                    replaced = started = True
                    await self._unavailable("http", send)
                    return
            if not committed and message["type"] in _COMMIT_ON:
                committed = True
                if in_use(session):
                    control = control or SessionControl(session)
                    control.run_before_commit()
                    changes_at_commit, resets_at_commit = control.changes, control.resets
                    if control.accessed and message.get("status", 200) < 500:
                        secure = backend.cookie.is_secure(scheme)
                        try:
                            committed_as = await self._commit(
                                control, message, secure, str(request_path)
                            )
                        except _COMMIT_ERRORS as exc:
                            if message["type"] != "http.response.start":
                                raise
                            # No answer chosen: raised into the app, as without a hook.
                            if not await self._commit_failed(scope, receive, send, exc):
                                raise
                            replaced = started = True
                            return
                if jar and message.get("status", 200) < 500:
                    _add_jar_cookies(jar[0], message)
            started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except StoreUnavailable as exc:
            if replaced:
                return  # answered already: the 503, or the response on_commit_error chose
            if started:
                raise
            logger.warning("session store unavailable: %s", exc)
            await self._unavailable(scope["type"], send)
            return
        if committed and in_use(session):
            control = control or SessionControl(session)
        if committed and control is not None and control.changes != changes_at_commit:
            self._lost(control, committed_as, control.resets != resets_at_commit)

    def _lost(self, control: SessionControl, committed: Commit | None, reset: bool) -> None:
        """Log (WARNING) and count a session changed after the response started.

        What a late change lost is found by comparing the data with what was committed (the
        payload written, else what was loaded), so no copy of the data is kept per request.
        Changes inside a nested list or dict are not named.
        """
        self.lost_changes += 1
        lost: list[str] = []
        if control.session.loaded:
            before = self._committed_data(control, committed)
            after = control.data()
            lost = sorted(
                key
                for key in before.keys() | after.keys()
                if key not in before or key not in after or before[key] != after[key]
            )
        logger.warning(
            "session changed after the response started; not saved: keys %s%s (write the "
            "session before sending the response, or before websocket.accept)",
            lost,
            " and a reset()/regenerate()" if reset or control.regenerated else "",
        )

    def _committed_data(self, control: SessionControl, committed: Commit | None) -> dict[str, Any]:
        """The data as the response's commit left it: written, emptied, or as loaded."""
        if committed is not None and committed.changed and not committed.state.read_only:
            if committed.cleared:
                return {}
            if committed.payload is not None:
                return self.serializer.loads(committed.payload)
        serialized = control.state.serialized
        return self.serializer.loads(serialized) if serialized else {}

    async def _unavailable(self, scope_type: str, send: Send) -> None:
        if scope_type == "websocket":
            await send({"type": "websocket.close", "code": 1013, "reason": "Try Again Later"})
            return
        body = b"Service Unavailable: the session store cannot be reached. Try again shortly.\n"
        await send_plain(send, 503, body, [(b"retry-after", self._retry_after)])

    async def _commit_failed(
        self, scope: Scope, receive: Receive, send: Send, error: Exception
    ) -> bool:
        """Answer in place of a response whose session could not be saved; whether it did.

        The response ``on_commit_error`` returns, else a 503 for a failed save. Otherwise
        nothing is sent: the error is raised into the app's ``send``, as it always was.
        """
        responder: AnyASGIApp | None = None
        if self._on_commit_error is not None:
            chosen = self._on_commit_error(scope, error)
            responder = await chosen if inspect.isawaitable(chosen) else chosen
        unavailable = isinstance(error, StoreUnavailable)
        if responder is not None:
            log = logger.warning if unavailable else logger.error
            log("session not saved; on_commit_error answered: %s", error, exc_info=error)
            await responder(scope, receive, send)
            return True
        if unavailable:
            logger.warning("session store unavailable: %s", error)
            await self._unavailable("http", send)
            return True
        return False

    async def _commit(
        self, control: SessionControl, message: Message, secure: bool, request_path: str
    ) -> Commit | None:
        """Commit an accessed session and add its headers.

        A session served read-only (the store failed and the policy is ``"anonymous"``) is
        never committed, whichever the backend: writing it would replace the cookie the
        user really has with one for an empty session.

        On a request outside the cookie's Path (asked only when a cookie is to be sent: the
        middleware section's read row sends none) the cookie read cannot be
        the configured one, so no deletion is sent: it would end the user's configured
        cookie, which this request never saw, and leave the one it read in place.
        """
        commit = control.commit(self.serializer)
        set_cookie: str | None = None
        if commit is not None and commit.state.read_only:
            if commit.changed:
                logger.debug("session served read-only: this request's changes were not saved")
        elif commit is not None:
            set_cookie = await self.backend.commit(commit, secure=secure, now=int(self._clock()))
        if (
            set_cookie is not None
            and not cookie_path_matches(self.backend.cookie.path, request_path)
            and set_cookie == self.backend.cookie.render_deletion(secure=secure)
        ):
            logger.warning(
                "session ended on a request outside the cookie's Path %r: no deletion sent "
                "(the cookie read is another one of the same name; only its Path can clear it)",
                self.backend.cookie.path,
            )
            set_cookie = None
        is_http = message["type"] in _HTTP_START
        if set_cookie is None and not is_http:
            return commit
        headers = message["headers"] = list(message.get("headers") or ())
        if is_http:
            merge_vary(headers, _VARY)
        if set_cookie is not None:
            headers.append((b"set-cookie", set_cookie.encode("latin-1")))
            if is_http:
                _keep_private(headers)
        return commit


def _deferral(defer_load: Sequence[str] | Callable[[Scope], bool]) -> Callable[[Scope], bool]:
    if callable(defer_load):
        return defer_load
    deferred = path_prefixes("defer_load", defer_load)
    return lambda scope: deferred(str(scope.get("path", "")))


def _add_jar_cookies(jar: CookieJar, message: Message) -> None:
    """Append the jar's ``Set-Cookie`` headers; the app's and the session's stay."""
    set_cookies = jar.pending()
    is_http = message["type"] in _HTTP_START
    if not set_cookies and not (jar.read and is_http):
        return
    headers = message["headers"] = list(message.get("headers") or ())
    if is_http and jar.read:
        merge_vary(headers, _VARY)
    headers.extend((b"set-cookie", value.encode("latin-1")) for value in set_cookies)
    if set_cookies and is_http:
        _keep_private(headers)


def _keep_private(headers: list[tuple[bytes, bytes]]) -> None:
    """Make a response with a Set-Cookie private to caches, logging an app value overridden."""
    replaced = keep_private(headers)
    if replaced is not None:
        logger.warning(
            "Cache-Control %r on a response that sets a cookie: made private, so no shared "
            "cache hands the cookie to others",
            replaced.decode("latin-1"),
        )
