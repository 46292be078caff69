"""The seam between the middleware and a storage strategy, and what both backends share.

The middleware does HTTP (reading cookies, adding headers); a backend decides what the
cookie holds. The cookie store (:class:`~asgisession.backends.cookie.CookieBackend`) keeps
the whole session in it; a server-side backend
(:class:`~asgisession.backends.server.ServerBackend`) keeps a sealed id there and the data
in a :class:`~asgisession.stores.base.Store`. Both open, time and render their sealed
cookie with :class:`SealedCookie`.

Reading tries at most :data:`MAX_CANDIDATES` distinct values of the session cookie, in the
order the browser sent them. Duplicates happen when an old cookie with another Path or
Domain is still in the browser, or when a sibling subdomain plants one (a longer Path is
sent first). A value that does not open is skipped, so a stale or junk duplicate cannot
shadow the real session; repeated identical values count once. Two values that both open
to *different* sessions are ignored together (:attr:`~asgisession.errors.RejectReason.DUPLICATE`):
the server cannot tell which one the browser was given, and taking either could put the
user inside a session someone else planted. The bound keeps the work a request can cause
small.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ..cookies import MAX_COOKIE_SIZE, CookieOptions
from ..crypto import MessageCodec, Opened
from ..errors import ConfigurationError, InvalidMessage, RejectReason
from ..expiry import expiry_of, session_end
from ..serializer import Serializer
from ..session import Commit, LoadedState

__all__ = ["MAX_CANDIDATES", "Candidates", "SealedCookie", "SessionBackend", "refresh_interval"]

logger: logging.Logger = logging.getLogger("asgisession")

#: How many values of a duplicated session cookie are tried before giving up.
MAX_CANDIDATES = 3


class SessionBackend(Protocol):
    """**Protocol:** loads a request's session from its cookie values and commits it.

    .. versionadded:: 0.1
    """

    #: The session cookie's name and attributes.
    cookie: CookieOptions

    #: Whether :meth:`open` works without I/O, so the session can load on first access.
    loads_in_line: bool

    def open(self, values: list[str], now: int) -> LoadedState:
        """Load without I/O; backends that need I/O raise :class:`SessionNotLoaded`."""
        ...

    async def load(self, values: list[str], now: int) -> LoadedState:
        """Load the session from the request's cookie values (most specific first)."""
        ...

    async def commit(self, commit: Commit, *, secure: bool, now: int) -> str | None:
        """Persist what the request did; return the ``Set-Cookie`` value to send, or ``None``.

        The middleware calls it once per request, when the app loaded the session and
        ``SessionControl.commit`` gave a ``Commit`` (not for a
        session the request only read whose loaded state the backend marked
        :attr:`~asgisession.session.LoadedState.settled`); never for one served read-only.

        .. versionchanged:: 0.2
           Takes the request's :class:`~asgisession.session.Commit` (the one decision of
           what changed), not the session.
        """
        ...


class Candidates:
    """The values of a session cookie worth trying, and why the ones tried were refused.

    Empty values (what a deletion leaves behind in some clients) are no cookie at all;
    identical values count once; at most :data:`MAX_CANDIDATES` distinct ones are tried.
    Both backends loop over :attr:`values`, report each refusal with :meth:`refuse` and
    each value that opened with :meth:`accept`, then return :meth:`result`.
    """

    __slots__ = ("_conflict", "_found", "_identity", "_name", "had_cookie", "rejection", "values")

    def __init__(self, values: list[str], cookie_name: str) -> None:
        present = list(dict.fromkeys(filter(None, values)))
        #: The distinct values to try, in the order the browser sent them.
        self.values: list[str] = (
            present[:MAX_CANDIDATES] if len(present) > MAX_CANDIDATES else present
        )
        #: Whether the request carried the cookie at all (a valid value or not).
        self.had_cookie: bool = bool(present)
        #: The reason the first refused value was refused.
        self.rejection: RejectReason | None = None
        self._name = cookie_name
        self._found: LoadedState | None = None
        self._identity = b""
        self._conflict = False

    def accept(self, state: LoadedState, identity: bytes) -> None:
        """Note a value that opened; ``identity`` names its session (data, or id).

        The first is kept; another one naming a different session makes the request's
        cookie ambiguous (see :meth:`result`).
        """
        if self._found is None:
            self._found, self._identity = state, identity
        elif identity != self._identity:
            self._conflict = True

    def result(self) -> LoadedState:
        """The session of the one value that opened; else an empty one with the reason.

        Two values opening different sessions give an empty session refused as
        :attr:`~asgisession.errors.RejectReason.DUPLICATE`, logged at WARNING: neither is
        used, since either may have been planted (by a sibling subdomain, say).
        """
        if self._conflict:
            logger.warning(
                "request carried %d session cookies %r that open different sessions; "
                "both ignored (a planted cookie? use a __Host- cookie name)",
                len(self.values),
                self._name,
            )
            return LoadedState(had_cookie=True, rejection=RejectReason.DUPLICATE)
        if self._found is not None:
            return self._found
        return self.none_valid()

    def refuse(self, exc: InvalidMessage) -> None:
        """Note (and log) why a value was refused; the first reason is the one reported."""
        self.rejection = self.rejection or exc.reason
        logger.debug("session cookie %r refused: %s", self._name, exc)

    @staticmethod
    def only(values: list[str]) -> str | None:
        """The value, when the request carried exactly one non-empty one; else ``None``.

        The usual request: there is then nothing to weigh, and no :class:`Candidates` to make.
        """
        return values[0] if len(values) == 1 and values[0] else None

    @staticmethod
    def refused_only(exc: InvalidMessage, cookie_name: str) -> LoadedState:
        """The empty session of a request whose :meth:`only` value was refused (logged)."""
        logger.debug("session cookie %r refused: %s", cookie_name, exc)
        return LoadedState(had_cookie=True, rejection=exc.reason)

    def none_valid(self) -> LoadedState:
        """The empty session of a request none of whose values opened."""
        return LoadedState(had_cookie=self.had_cookie, rejection=self.rejection)


class SealedCookie:
    """What both backends do with their sealed cookie: open it, time it, render it.

    It also holds the settings both backends take (see their parameters).
    """

    codec: MessageCodec
    cookie: CookieOptions
    lifetime: int
    idle_timeout: int | None
    user_key: str | None
    serializer: Serializer
    _refresh_after: int | None

    def __init__(
        self,
        codec: MessageCodec,
        cookie: CookieOptions,
        *,
        lifetime: int,
        idle_timeout: int | None,
        refresh_after: int | None,
        user_key: str | None,
        serializer: Serializer,
    ) -> None:
        self.codec = codec
        self.cookie = cookie
        self.lifetime = lifetime
        self.idle_timeout = idle_timeout
        self.user_key = user_key
        self.serializer = serializer
        self._refresh_after = refresh_interval(idle_timeout, refresh_after)

    def _candidates(self, values: list[str]) -> Candidates:
        """The request's values of this cookie, to try in order (see :class:`Candidates`)."""
        return Candidates(values, self.cookie.name)

    def _open_sealed(self, value: str, now: int) -> Opened:
        """Open one cookie value, or raise InvalidMessage with the reason.

        Size first (oversized input is never decoded), then the seal, then the idle timeout.
        """
        cookie = self.cookie
        # An ASCII value that fits needs no CookieOptions.size call: serves "cookie read".
        unsure = len(value) > MAX_COOKIE_SIZE - len(cookie.name) or not value.isascii()
        if unsure and cookie.size(value) > MAX_COOKIE_SIZE:
            raise InvalidMessage(RejectReason.OVERSIZED, f"{len(value)} bytes")
        opened = self.codec.open(value, purpose=cookie.name, now=now)
        if self.idle_timeout is not None and now >= opened.issued_at + self.idle_timeout:
            raise InvalidMessage(RejectReason.IDLE_TIMEOUT, f"idle since {opened.issued_at}")
        return opened

    @staticmethod
    def _check_chosen_end(data: dict[str, Any], now: int) -> None:
        """Refuse a session past the end its data chose (``Session.set_expiry``).

        The envelope carries the same end, so this holds where it may not: an older cookie
        of a server-side session (same id, an end from before the choice).
        """
        chosen = expiry_of(data)
        if chosen and now >= chosen:
            raise InvalidMessage(RejectReason.EXPIRED, f"session chose to end at {chosen}")

    def _end(self, commit: Commit, now: int) -> int:
        """The unix second the session written by ``commit`` ends (see ``session_end``)."""
        return session_end(
            commit.data, expires_at=commit.state.expires_at, now=now, lifetime=self.lifetime,
            restart=commit.regenerated or commit.expiry_changed,
        )  # fmt: skip

    def _reissue_due(self, stale: bool, issued_at: int | None, now: int) -> bool:
        """Whether a cookie is re-issued though its session did not change.

        It was opened by an older secret (``stale``: re-issued under the newest), or an idle
        timeout is due for a refresh. The refresh is asked only with an idle timeout: one
        frame fewer on every cookie read and write row.
        """
        return stale or (self._refresh_after is not None and self._refresh_due(issued_at, now))

    def _refresh_due(self, issued_at: int | None, now: int) -> bool:
        """Whether an active session's cookie should be re-issued to push the idle timeout."""
        return (
            self._refresh_after is not None
            and issued_at is not None
            and now - issued_at >= self._refresh_after
        )

    def _render_sealed(
        self, value: str, expires_at: int, *, secure: bool, now: int, expiry: int | None = None
    ) -> str:
        """The Set-Cookie for a sealed value.

        Its Max-Age makes the browser forget it when the server would refuse it anyway
        (absolute expiry or idle timeout). ``expiry`` is the session's own choice
        (``expiry_of``): ``0`` sends no Max-Age, an end sends one whatever ``max_age`` says.
        """
        max_age = self.cookie.max_age
        if expiry is not None:
            max_age = expires_at - now if expiry else None
        if max_age is not None:
            max_age = max(1, min(max_age, expires_at - now, self.idle_timeout or max_age))
        return self.cookie.render(value, secure=secure, max_age=max_age, now=now)


def refresh_interval(idle_timeout: int | None, refresh_after: int | None) -> int | None:
    """Seconds after which an active session's expiry is pushed forward; ``None``: never.

    Only an idle timeout needs refreshing. By default it is refreshed once a tenth of it
    has passed, so a read-only request costs a write (a touch, or a re-issued cookie) at
    most that often, and a session never ends while its user is active.

    :raises ConfigurationError: for ``refresh_after`` without an idle timeout, or not
        shorter than it.
    """
    if idle_timeout is None:
        if refresh_after is not None:
            raise ConfigurationError("refresh_after needs an idle_timeout to refresh.")
        return None
    if refresh_after is None:
        return max(1, idle_timeout // 10)
    if isinstance(refresh_after, bool) or not isinstance(refresh_after, int):
        raise ConfigurationError(f"refresh_after={refresh_after!r}; give whole seconds.")
    if not 0 < refresh_after < idle_timeout:
        raise ConfigurationError(
            f"refresh_after={refresh_after} must be between 1 and idle_timeout - 1 "
            f"({idle_timeout - 1}) seconds, or the session would end while in use."
        )
    return refresh_after
