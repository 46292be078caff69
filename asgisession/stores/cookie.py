"""The cookie store: the whole session, sealed, in one cookie. The default.

Reading tries at most :data:`MAX_CANDIDATES` values of the session cookie, in the order the
browser sent them, and takes the first that opens. Duplicates happen when an old cookie
with another Path or Domain is still in the browser; taking the first *valid* one means a
stale or planted duplicate cannot shadow the real session, and the bound keeps the work a
request can cause small.
"""

from __future__ import annotations

import logging

from .. import serializer
from ..cookies import MAX_COOKIE_SIZE, CookieOptions
from ..crypto import MessageCodec, Opened
from ..errors import CookieOverflow, InvalidMessage, RejectReason
from ..revocation import Revocations, user_of
from ..session import LoadedState, Session
from .base import bounded, refresh_interval

__all__ = ["MAX_CANDIDATES", "CookieBackend", "SealedCookie"]

logger: logging.Logger = logging.getLogger("asgisession")

#: How many values of a duplicated session cookie are tried before giving up.
MAX_CANDIDATES = 3


class SealedCookie:
    """What both backends do with their sealed cookie: open it, time it, render it.

    Subclasses set ``codec``, ``cookie``, ``idle_timeout`` and ``_refresh_after``.
    """

    codec: MessageCodec
    cookie: CookieOptions
    idle_timeout: int | None
    _refresh_after: int | None

    def _open_sealed(self, value: str, now: int) -> Opened:
        """Open one cookie value, or raise InvalidMessage with the reason.

        Size first (oversized input is never decoded), then the seal, then the idle timeout.
        """
        if self.cookie.size(value) > MAX_COOKIE_SIZE:
            raise InvalidMessage(RejectReason.OVERSIZED, f"{len(value)} bytes")
        opened = self.codec.open(value, purpose=self.cookie.name, now=now)
        if self.idle_timeout is not None and now >= opened.issued_at + self.idle_timeout:
            raise InvalidMessage(RejectReason.IDLE_TIMEOUT, f"idle since {opened.issued_at}")
        return opened

    def _refresh_due(self, issued_at: int | None, now: int) -> bool:
        """Whether an active session's cookie should be re-issued to push the idle timeout."""
        return (
            self._refresh_after is not None
            and issued_at is not None
            and now - issued_at >= self._refresh_after
        )

    def _render_sealed(self, value: str, expires_at: int, *, secure: bool, now: int) -> str:
        """The Set-Cookie for a sealed value.

        Its Max-Age makes the browser forget it when the server would refuse it anyway
        (absolute expiry or idle timeout).
        """
        max_age = self.cookie.max_age
        if max_age is not None:
            max_age = max(1, min(max_age, expires_at - now, self.idle_timeout or max_age))
        return self.cookie.render(value, secure=secure, max_age=max_age, now=now)


class CookieBackend(SealedCookie):
    """Keeps the session in the cookie itself, sealed by a :class:`.MessageCodec`.

    :param codec: seals and opens the cookie value (encrypted by default, or signed).
    :param cookie: the cookie's name and attributes; the name is also the seal's purpose.
    :param lifetime: seconds from login (or first write) until the session expires,
        however active it is.
    :param idle_timeout: seconds without a request after which the session expires, or
        ``None``.
    :param refresh_after: how often an active session's cookie is re-issued to push the
        idle timeout forward; a tenth of the idle timeout by default.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        codec: MessageCodec,
        cookie: CookieOptions,
        *,
        lifetime: int,
        idle_timeout: int | None = None,
        refresh_after: int | None = None,
        user_key: str | None = None,
        revocations: Revocations | None = None,
        timeout: float | None = 2.0,
    ) -> None:
        self.codec = codec
        self.cookie = cookie
        self.lifetime = lifetime
        self.idle_timeout = idle_timeout
        self.user_key = user_key
        self.revocations = revocations
        self.timeout = timeout
        self._refresh_after = refresh_interval(idle_timeout, refresh_after)
        #: Opening a cookie needs no I/O, so sessions load on first access; unless
        #: revocations must be checked, which takes a store lookup.
        self.loads_in_line: bool = revocations is None or user_key is None

    async def load(self, values: list[str], now: int) -> LoadedState:
        """Open the session (see :meth:`open`) and refuse it if its user was revoked since."""
        state = self.open(values, now)
        user = user_of(state.data, self.user_key)
        if self.revocations is None or user is None or state.issued_at is None:
            return state
        not_before = await bounded(
            self.revocations.not_before(user), self.timeout, "a revocation check"
        )
        if not_before is not None and state.issued_at < not_before:
            logger.debug("session cookie %r refused: revoked at %d", self.cookie.name, not_before)
            return LoadedState(had_cookie=True, rejection=RejectReason.REVOKED)
        state.user = user
        return state

    def open(self, values: list[str], now: int) -> LoadedState:
        """Open the first valid value; an empty session (with the reason) when none is."""
        # An empty value is what a deletion leaves behind in some clients: no cookie at all.
        values = list(filter(None, values))
        rejection: RejectReason | None = None
        for value in values[:MAX_CANDIDATES]:
            try:
                return self._open_one(value, now)
            except InvalidMessage as exc:
                rejection = rejection or exc.reason
                logger.debug("session cookie %r refused: %s", self.cookie.name, exc)
        return LoadedState(had_cookie=bool(values), rejection=rejection)

    def _open_one(self, value: str, now: int) -> LoadedState:
        opened = self._open_sealed(value, now)
        try:
            data = serializer.loads(opened.payload)
        except ValueError as exc:
            raise InvalidMessage(RejectReason.BAD_PAYLOAD, str(exc)) from None
        return LoadedState(
            data=data,
            serialized=opened.payload,
            had_cookie=True,
            issued_at=opened.issued_at,
            expires_at=opened.expires_at,
            key_index=opened.key_index,
        )

    async def commit(self, session: Session, *, secure: bool, now: int) -> str | None:
        """Return the ``Set-Cookie`` value for this response, or ``None`` to send nothing.

        A cookie is written when the data changed, the session was regenerated, it was
        opened with an older secret (re-issued under the newest), or an idle timeout is
        due for a refresh. An emptied session that came with a cookie gets a deletion.

        :raises CookieOverflow: when the sealed cookie would pass 4096 bytes.
        :raises SerializationError: naming a key whose value is not JSON.
        """
        if not session.accessed or not session.loaded:
            return None
        state = session.state
        payload: bytes | None = None
        write = session.modified or session.regenerated
        if not write and session.exposed:
            payload = serializer.dumps(session.raw())
            write = payload != state.serialized
        if not write and state.present:
            write = state.key_index != 0 or self._refresh_due(state.issued_at, now)
        if not write:
            return None
        data = session.raw()
        if not data:
            return self.cookie.render_deletion(secure=secure) if state.had_cookie else None
        if payload is None:
            payload = serializer.dumps(data)
        if session.regenerated or state.expires_at is None:
            expires_at = now + self.lifetime
        else:
            expires_at = state.expires_at
        value = self.codec.seal(
            payload, purpose=self.cookie.name, issued_at=now, expires_at=expires_at
        )
        size = self.cookie.size(value)
        if size > MAX_COOKIE_SIZE:
            raise CookieOverflow(
                self.cookie.name, size, MAX_COOKIE_SIZE, serializer.sizes_by_key(data)[:5]
            )
        return self._render_sealed(value, expires_at, secure=secure, now=now)
