"""Sessions outside ASGI: open one from a Cookie header, change it, get the Set-Cookie back.

A ``websockets`` server, a gRPC or TCP service, a worker, a test or a CLI that shares the
web app's login cookie uses :class:`Sessions`. It takes the settings
:class:`~asgisession.middleware.SessionMiddleware` takes (or the middleware itself, with
:meth:`Sessions.from_middleware`) and builds the same backend from them
(:func:`~asgisession.backends.build.build_backend`), so every rule is the middleware's own:
the seal's purpose and expiry, the idle timeout, key rotation, revocation, duplicate
cookies and the refusal reason; on commit, regenerate and reset, no resurrection of a
session ended meanwhile, no record written for an id the store does not have, nothing
written when nothing changed. What is left to the caller is HTTP: where the Cookie header
comes from and where the ``Set-Cookie`` value goes.

::

    sessions = Sessions(secret_key_base=secret, store=store)
    session = await sessions.load(cookie_header=request_headers.get("cookie"))
    session["seen"] = session.get("seen", 0) + 1
    set_cookie = await sessions.commit(session)   # a Set-Cookie value, or None
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ._options import DEFAULT as _DEFAULT
from ._options import OLD_STORE_TIMEOUT
from .backends.base import SessionBackend
from .backends.build import build_backend
from .backends.server import ServerBackend
from .cookies import CookieOptions, RequestCookies, SameSite
from .crypto import CookieFormat, Keyring, MessageCodec, SecretKeyBase
from .errors import RejectReason
from .expiry import policy_of
from .formats import resolve_format
from .serializer import JSON, Serializer
from .session import LoadedState, Session, control_of
from .stores.base import Store

if TYPE_CHECKING:
    from .middleware import SessionMiddleware

__all__ = ["CookieHeader", "Opened", "SessionInfo", "Sessions"]

logger: logging.Logger = logging.getLogger("asgisession")

DAY = 24 * 3600
#: One ``Cookie`` header value, or all of a request's (HTTP/2 may send several).
CookieHeader = str | bytes | Iterable[str | bytes]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What :meth:`Sessions.load` found, for logs and tools (the state as loaded).

    .. versionadded:: 0.3
    """

    #: Why the cookie was refused (an empty session was given instead), or ``None``.
    rejection: RejectReason | None
    #: Whether a cookie came at all (valid or not).
    had_cookie: bool
    #: Unix seconds when the loaded session was last issued, and when it expires.
    issued_at: int | None
    expires_at: int | None
    #: Opened with an older secret or a format only read: the next commit re-issues it.
    stale: bool
    #: The user it belongs to (``user_key``), when one is configured and set.
    user: str | None
    #: Server-side sessions: the key the store is called with (the one
    #: :func:`~asgisession.revocation.user_sessions` lists; a hash, never the id).
    store_key: str | None
    #: ``store_key`` with the store's own namespace, as the server holds it (what
    #: ``redis-cli`` shows); the same as ``store_key`` for a store without one.
    stored_as: str | None


@dataclass(slots=True)
class Opened:
    """The session of :meth:`Sessions.open`; ``set_cookie`` is filled when the block ends."""

    session: Session
    #: The ``Set-Cookie`` value to send once the block ended without an error, or ``None``.
    set_cookie: str | None = None


class Sessions:
    """Open and commit sessions outside ASGI, exactly as :class:`SessionMiddleware` does.

    The keywords are SessionMiddleware's (see its parameters) except those about requests
    and responses (``on_store_error``, ``retry_after``, ``on_commit_error``,
    ``defer_load``, ``on_reject``, the deprecated ``store_timeout``). Give the web app's
    settings and store, and a cookie it issued opens here and one made here opens there.
    ``secret_key_base`` may also be a :class:`~asgisession.crypto.Keyring` already built
    from it (a tool that reads the secrets once).

    A store failure raises :class:`~asgisession.errors.StoreUnavailable` from
    :meth:`load` and :meth:`commit`; a cookie that does not open (tampered, expired,
    foreign, revoked, for a session the store no longer has) never raises: it gives an
    empty session whose :attr:`~asgisession.session.Session.rejection` says why.

    .. versionadded:: 0.3
    """

    def __init__(
        self,
        *,
        secret_key_base: SecretKeyBase | Keyring,
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
        clock: Callable[[], float] = time.time,
        store: Store | None = None,
        user_key: str | None = None,
        revocation_store: Store | None = None,
        backend: SessionBackend | None = None,
        serializer: Serializer | None = None,
        seal_records: bool = True,
        on_conflict: Literal["this_request", "error"] = "this_request",
    ) -> None:
        keyring = (
            secret_key_base if isinstance(secret_key_base, Keyring) else Keyring(secret_key_base)
        )
        built, serializer = build_backend(
            keyring, resolve_format(cookie_format), cookie=cookie,
            cookie_name=cookie_name, max_age=max_age, path=path, domain=domain, secure=secure,
            httponly=httponly, samesite=samesite, partitioned=partitioned, lifetime=lifetime,
            idle_timeout=idle_timeout, refresh_after=refresh_after, store=store,
            # What SessionMiddleware bounds a store of your own with, so both behave alike.
            timeout=OLD_STORE_TIMEOUT, user_key=user_key, revocation_store=revocation_store,
            backend=backend, serializer=serializer, seal_records=seal_records,
            on_conflict=on_conflict,
        )  # fmt: skip
        self.backend: SessionBackend = built
        self.serializer: Serializer = serializer
        self._clock = clock
        self._policy = policy_of(built, clock)

    @classmethod
    def from_backend(
        cls,
        backend: SessionBackend,
        *,
        serializer: Serializer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Sessions:
        """Sessions over a backend already built (its serializer unless one is given)."""
        sessions = cls.__new__(cls)
        sessions.backend = backend
        if serializer is None:
            serializer = getattr(backend, "serializer", JSON)
        assert serializer is not None
        sessions.serializer = serializer
        sessions._clock = clock
        sessions._policy = policy_of(backend, clock)
        return sessions

    @classmethod
    def from_middleware(cls, middleware: SessionMiddleware) -> Sessions:
        """The sessions of a :class:`SessionMiddleware`: its backend, serializer and clock."""
        return cls.from_backend(
            middleware.backend, serializer=middleware.serializer, clock=middleware._clock
        )

    @property
    def cookie(self) -> CookieOptions:
        """The session cookie's name and attributes."""
        return self.backend.cookie

    @property
    def store(self) -> Store | None:
        """The server-side store, or ``None`` for the cookie store."""
        store: Store | None = getattr(self.backend, "store", None)
        return store

    async def load(
        self,
        *,
        cookie_header: CookieHeader | None = None,
        cookie: str | None = None,
        read_only: bool = False,
    ) -> Session:
        """The session a request's cookies carry: loaded, and empty when none is valid.

        :param cookie_header: the request's ``Cookie`` header value (or all of them); the
            session cookie is found in it by name, as the middleware finds it.
        :param cookie: the session cookie's value itself, instead of a header.
        :param read_only: nothing will be written: :meth:`commit` returns ``None``.
        :raises StoreUnavailable: when a server-side store fails.
        """
        if cookie_header is not None and cookie is not None:
            raise TypeError("give cookie_header= or cookie=, not both")
        state = await self._state(cookie_header, cookie)
        state.read_only = read_only
        session = Session(None, lambda: _ready(state), policy=self._policy)
        await session.load()  # marks it used: what the caller changes is committed
        return session

    async def _state(self, cookie_header: CookieHeader | None, cookie: str | None) -> LoadedState:
        now = int(self._clock())
        if cookie is not None:
            return await self.backend.load([cookie], now)
        if cookie_header is None:
            return await self.backend.load([], now)
        if isinstance(cookie_header, str | bytes):
            cookie_header = [cookie_header]
        headers = [
            (b"cookie", value if isinstance(value, bytes) else value.encode("latin-1"))
            for value in cookie_header
        ]
        request_cookies = RequestCookies(headers)
        if request_cookies.oversized:
            return LoadedState(had_cookie=True, rejection=RejectReason.OVERSIZED)
        return await self.backend.load(request_cookies.values(self.cookie.name), now)

    async def commit(self, session: Session, *, secure: bool | None = None) -> str | None:
        """Save what was done to ``session``; the ``Set-Cookie`` value to send, or ``None``.

        Call it once, when the caller is done with the session (the middleware does it as
        the response starts). ``None`` means send nothing: the cookie the client has is
        still right (nothing changed, or the session was loaded read-only).

        :param secure: whether the cookie gets ``Secure``; by default the cookie options
            decide as for an https request (``secure="auto"`` then means ``True``).
        :raises CookieOverflow: the cookie store's session no longer fits in a cookie.
        :raises SerializationError: a value would not read back as it is.
        :raises StoreUnavailable: the store failed; nothing is reported as saved.
        """
        control = control_of(session)
        control.run_before_commit()
        commit = control.commit(self.serializer)
        if commit is None:
            return None
        if commit.state.read_only:
            if commit.changed:
                logger.debug("session loaded read-only: its changes were not saved")
            return None
        if secure is None:
            secure = self.cookie.is_secure("https")
        return await self.backend.commit(commit, secure=secure, now=int(self._clock()))

    @asynccontextmanager
    async def open(
        self,
        *,
        cookie_header: CookieHeader | None = None,
        cookie: str | None = None,
        secure: bool | None = None,
    ) -> AsyncIterator[Opened]:
        """Load, hand over, and commit when the block ends without an error.

        ::

            async with sessions.open(cookie_header=header) as opened:
                opened.session["seen"] = True
            send_header("Set-Cookie", opened.set_cookie)   # when not None
        """
        opened = Opened(await self.load(cookie_header=cookie_header, cookie=cookie))
        yield opened
        opened.set_cookie = await self.commit(opened.session, secure=secure)

    def info(self, session: Session) -> SessionInfo:
        """What was loaded into ``session``: refusal reason, times, user, store key."""
        state = control_of(session).state
        store_key = stored_as = None
        if state.session_id is not None and isinstance(self.backend, ServerBackend):
            store_key = self.backend.key(state.session_id)
            inner = getattr(self.backend.store, "inner", self.backend.store)  # timed() wraps
            namespace = getattr(inner, "namespace", "")
            stored_as = (namespace if isinstance(namespace, str) else "") + store_key
        return SessionInfo(
            rejection=state.rejection,
            had_cookie=state.had_cookie,
            issued_at=state.issued_at,
            expires_at=state.expires_at,
            stale=state.stale,
            user=state.user,
            store_key=store_key,
            stored_as=stored_as,
        )


async def _ready(state: LoadedState) -> LoadedState:
    return state
