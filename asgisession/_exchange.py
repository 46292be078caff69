"""One request's session work, for :class:`~asgisession.SessionMiddleware`.

The middleware makes one :class:`Exchange` per HTTP or WebSocket request. It holds that
request's state (the lazy session, the cookie jar once asked for, whether the response
started, what was committed) and is the ``send`` the app gets: on the response's first
message it commits the session and adds its headers, then every other message passes.

One object with slots, rather than closures over a dozen variables, because a request that
never touches its session should cost little more than any middleware that wraps ``send``
(the middleware section's "untouched" row): the object, the session, two entries in the
scope, and one attribute test per message.

The per-request policies live here: the lazy load and the preload, the ``503`` for a store
the app needed, read-only sessions, ``on_commit_error``, and changes lost after the response
started. The middleware keeps the settings, checked once. The module runs past 300 lines
because those policies share one request's state; the store-failure answers (the preload,
the 503 rewrite, ``on_commit_error``) are the part to move out first when it grows.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._http import cookie_path_matches, keep_private, merge_vary, send_plain
from ._types import AnyASGIApp, Message, Receive, Scope, Send
from .cookies import MAX_COOKIE_HEADER_SIZE, RequestCookies
from .errors import (
    CookieOverflow,
    RejectReason,
    SerializationError,
    SessionConflict,
    StoreUnavailable,
)
from .jar import SCOPE_KEY as JAR_SCOPE_KEY
from .jar import CookieJar
from .session import Commit, LoadedState, Session, SessionControl, in_use

if TYPE_CHECKING:
    from .middleware import SessionMiddleware

__all__ = ["Exchange"]

logger: logging.Logger = logging.getLogger("asgisession")

_COMMIT_ON = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})
_HTTP_START = frozenset({"http.response.start", "websocket.http.response.start"})
_VARY = (b"Cookie",)
#: What a commit can fail with: the session is then not saved and the app's response withheld.
COMMIT_ERRORS = (CookieOverflow, SerializationError, SessionConflict, StoreUnavailable)


class Incoming:
    """What one request brought: its cookies, its time, and the session's loaders.

    It holds no reference to the scope or the session, so the session (whose loaders are
    its methods) and the scope (which holds its :meth:`jar`) make no reference cycle with
    it: a request's objects are freed when it ends, without the garbage collector.

    :param middleware: the middleware whose settings apply.
    :param headers: the request's headers; the ``Cookie`` ones are found on first use.
    :param scheme: the request's scheme (the jar's cookies are Secure on https).
    """

    __slots__ = ("_cookies", "_headers", "_jar", "_middleware", "_now", "_scheme", "load_failed")

    def __init__(
        self, middleware: SessionMiddleware, headers: Sequence[tuple[bytes, bytes]], scheme: str
    ) -> None:
        self._middleware = middleware
        self._headers = headers
        self._scheme = scheme
        # Found and parsed at most once, on first use, for the session and the jar alike.
        self._cookies: RequestCookies | None = None
        self._now: int | None = None
        self._jar: CookieJar | None = None
        #: Whether the app needed its session while the store failed: its 5xx becomes a 503.
        self.load_failed = False

    def cookies(self) -> RequestCookies:
        """The request's cookies; the clock is read with them, once, as the request's time."""
        if self._cookies is None:
            self._cookies = RequestCookies(self._headers)
            self._now = int(self._middleware._clock())
        return self._cookies

    def load_sync(self) -> LoadedState:
        """Open the session in-line (a backend that needs no I/O, such as the cookie store)."""
        cookies = self._cookies
        if cookies is None:  # cookies() in line: the cookie read row's first use
            cookies = self._cookies = RequestCookies(self._headers)
            self._now = int(self._middleware._clock())
        if cookies.oversized:
            return self._refused_oversized()
        middleware = self._middleware
        backend = middleware.backend
        assert self._now is not None
        state = backend.open(cookies.values(backend.cookie.name), self._now)
        return state if state.rejection is None else middleware._counted(state)

    async def load(self) -> LoadedState:
        """Load the session from the backend; a store failure follows ``on_store_error``."""
        cookies = self._cookies or self.cookies()
        if cookies.oversized:
            return self._refused_oversized()
        middleware = self._middleware
        backend = middleware.backend
        assert self._now is not None
        try:
            return middleware._counted(
                await backend.load(cookies.values(backend.cookie.name), self._now)
            )
        except StoreUnavailable:
            if not middleware._anonymous_on_error:
                self.load_failed = True
                raise
            logger.warning("session store unavailable; serving an anonymous session")
            return LoadedState(had_cookie=True, read_only=True)

    def _refused_oversized(self) -> LoadedState:
        logger.debug(
            "Cookie headers over %d bytes: no cookie read, the session starts empty",
            MAX_COOKIE_HEADER_SIZE,
        )
        return self._middleware._counted(
            LoadedState(had_cookie=True, rejection=RejectReason.OVERSIZED)
        )

    def jar(self) -> CookieJar:
        """The request's cookie jar (``asgisession.cookies(scope)``), made on first use."""
        if self._jar is None:
            self._jar = CookieJar(
                self._headers,
                codecs=self._middleware._jar_codecs,
                clock=self._middleware._clock,
                scheme=self._scheme,
                pairs=self.cookies().pairs(),
            )
        return self._jar


class Exchange:
    """One request's session and response, seen from the middleware.

    :param middleware: the middleware whose settings apply.
    :param scope: the request's scope; ``session`` and the jar's factory are put in it.
    :param receive: the request's ``receive`` (for a response ``on_commit_error`` chooses).
    :param send: the server's ``send``; the app gets :meth:`send` instead.
    """

    __slots__ = (
        "_at_commit", "_incoming", "_middleware", "_path", "_receive", "_scheme", "_scope",
        "_send", "committed", "committed_as", "control", "preload_failed", "replaced",
        "session", "started",
    )  # fmt: skip

    def __init__(
        self, middleware: SessionMiddleware, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self._middleware = middleware
        self._scope = scope
        self._receive = receive
        self._send = send
        # Everything read from the scope is read now: after the hand-off it is the app's.
        scheme = self._scheme = scope.get("scheme", "http")
        self._path: Any = scope.get("path", "")
        incoming = self._incoming = Incoming(middleware, scope.get("headers") or (), scheme)
        in_line = middleware.backend.loads_in_line
        # Positional: a class called with keywords costs ~1,100 instructions more (every row).
        self.session: Session = Session(
            incoming.load_sync if in_line else None, incoming.load, middleware._policy
        )
        scope["session"] = self.session
        scope[JAR_SCOPE_KEY] = incoming.jar
        #: Made only for a session that is preloaded or used: most requests need none.
        self.control: SessionControl | None = None
        #: Whether any message reached the server, the response's first was committed,
        #: and whether our own answer replaced the app's response.
        self.started = self.committed = self.replaced = False
        #: Whether the preload failed (raised to the app only if it uses the session).
        self.preload_failed = False
        #: What the commit wrote, and (accessed, changes, resets) of the session then: what
        #: a change after it lost is named from them.
        self.committed_as: Commit | None = None
        self._at_commit: tuple[bool, int, int] = (False, 0, 0)

    async def preload(self) -> None:
        """Load a server-side session before the app runs (unless its path defers it).

        A request without a session cookie needs no fetch: it gets a new session at once.
        A failed preload is kept, and raised only if the app uses the session.
        """
        control = self.control = SessionControl(self.session)
        incoming = self._incoming
        cookies = incoming.cookies()
        if cookies.oversized:
            control.attach(incoming._refused_oversized())
        elif not any(cookies.values(self._middleware.backend.cookie.name)):
            control.attach(LoadedState())
        elif (deferred := self._middleware._defer_load) is None or not deferred(self._scope):
            try:
                control.attach(await incoming.load())
            except StoreUnavailable as exc:
                control.fail_with(exc)
                incoming.load_failed, self.preload_failed = False, True

    # -- the response --------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """The ``send`` the app gets: commit on the response's first message, then pass."""
        if self.committed:  # the usual message: the response's body
            if not self.replaced:
                await self._send(message)
            return
        if self.replaced:
            return  # our answer went out in place of the app's response: drop the rest
        kind = message["type"]
        incoming = self._incoming
        if (
            (incoming.load_failed or self.preload_failed)
            and kind == "http.response.start"
            and message.get("status", 200) >= 500
            and await self._answer_store_failure(message)
        ):
            return
        if kind in _COMMIT_ON:
            self.committed = True
            ok = message.get("status", 200) < 500
            session = self.session
            if in_use(session):
                control = self.control = self.control or SessionControl(session)
                at_commit = self._at_commit = control.prepare_commit()
                if at_commit[0] and ok:  # accessed
                    try:
                        self.committed_as = await self._commit(control, message)
                    except COMMIT_ERRORS as exc:
                        if kind != "http.response.start":
                            raise
                        # No answer chosen: raised into the app, as without a hook.
                        if not await self._commit_failed(exc):
                            raise
                        self.replaced = self.started = True
                        return
            if incoming._jar is not None and ok:
                _add_jar_cookies(incoming._jar, message)
        self.started = True
        await self._send(message)

    async def _answer_store_failure(self, message: Message) -> bool:
        """An app's 5xx after it met the store's failure: a 503 instead; whether it replaced.

        A failed preload counts once the app used the session. A 503 of the app's own is
        kept, with a ``Retry-After`` if it has none.
        """
        session = self.session
        if not (self._incoming.load_failed or (in_use(session) and not session.loaded)):
            return False
        if message["status"] == 503:
            headers = message["headers"] = list(message.get("headers") or ())
            if not any(key.lower() == b"retry-after" for key, _ in headers):
                headers.append((b"retry-after", self._middleware._retry_after))
            return False
        logger.warning("session store unavailable: the app's %d sent as 503", message["status"])
        self.replaced = self.started = True
        await self.unavailable("http")
        return True

    async def _commit(self, control: SessionControl, message: Message) -> Commit | None:
        """Commit an accessed session and add its headers.

        A session served read-only (the store failed and the policy is ``"anonymous"``) is
        never committed, whichever the backend: writing it would replace the cookie the
        user really has with one for an empty session.

        On a request outside the cookie's Path (asked only when a cookie is to be sent: the
        middleware section's read row sends none) the cookie read cannot be the configured
        one, so no deletion is sent: it would end the user's configured cookie, which this
        request never saw, and leave the one it read in place.
        """
        middleware = self._middleware
        backend = middleware.backend
        commit = control.commit(middleware.serializer)
        set_cookie: str | None = None
        if commit is not None and commit.state.read_only:
            if commit.changed:
                logger.debug("session served read-only: this request's changes were not saved")
        elif commit is not None:
            secure = backend.cookie.is_secure(self._scheme)
            set_cookie = await backend.commit(commit, secure=secure, now=int(middleware._clock()))
            if (
                set_cookie is not None
                and not cookie_path_matches(backend.cookie.path, str(self._path))
                and set_cookie == backend.cookie.render_deletion(secure=secure)
            ):
                logger.warning(
                    "session ended on a request outside the cookie's Path %r: no deletion "
                    "sent (the cookie read is another one of the same name; only its Path can "
                    "clear it)",
                    backend.cookie.path,
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

    async def _commit_failed(self, error: Exception) -> bool:
        """Answer in place of a response whose session could not be saved; whether it did.

        The response ``on_commit_error`` returns, else a 503 for a failed save. Otherwise
        nothing is sent: the error is raised into the app's ``send``, as it always was.
        """
        responder: AnyASGIApp | None = None
        hook = self._middleware._on_commit_error
        if hook is not None:
            chosen = hook(self._scope, error)
            responder = await chosen if inspect.isawaitable(chosen) else chosen
        unavailable = isinstance(error, StoreUnavailable)
        if responder is not None:
            log = logger.warning if unavailable else logger.error
            log("session not saved; on_commit_error answered: %s", error, exc_info=error)
            await responder(self._scope, self._receive, self._send)
            return True
        if unavailable:
            logger.warning("session store unavailable: %s", error)
            await self.unavailable("http")
            return True
        return False

    async def unavailable(self, scope_type: str) -> None:
        """Answer that the session store cannot be reached: a 503, or close code 1013."""
        if scope_type == "websocket":
            await self._send({"type": "websocket.close", "code": 1013, "reason": "Try Again Later"})
            return
        body = b"Service Unavailable: the session store cannot be reached. Try again shortly.\n"
        await send_plain(self._send, 503, body, [(b"retry-after", self._middleware._retry_after)])

    # -- after the app -------------------------------------------------------------------------

    def check_lost(self) -> None:
        """After the app: log and count changes made once the response had started.

        Called only for a committed response whose session is in use.
        """
        control = self.control = self.control or SessionControl(self.session)
        _, changes, resets = self._at_commit
        if control.changes != changes:
            self._lost(control, control.resets != resets)

    def _lost(self, control: SessionControl, reset: bool) -> None:
        """Log (WARNING) and count a session changed after the response started.

        What a late change lost is found by comparing the data with what was committed (the
        payload written, else what was loaded), so no copy of the data is kept per request.
        Changes inside a nested list or dict are not named.
        """
        self._middleware.lost_changes += 1
        lost: list[str] = []
        if control.session.loaded:
            before = self._committed_data(control)
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

    def _committed_data(self, control: SessionControl) -> dict[str, Any]:
        """The data as the response's commit left it: written, emptied, or as loaded."""
        committed, serializer = self.committed_as, self._middleware.serializer
        if committed is not None and committed.changed and not committed.state.read_only:
            if committed.cleared:
                return {}
            if committed.payload is not None:
                return serializer.loads(committed.payload)
        serialized = control.state.serialized
        return serializer.loads(serialized) if serialized else {}


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
