"""The cookie store: the whole session, sealed, in one cookie. The default.

Of the session cookie's values the one that opens is taken; two that open to different
sessions are both ignored (see :mod:`asgisession.backends.base`).
"""

from __future__ import annotations

import logging

from ..cookies import MAX_COOKIE_SIZE, CookieOptions
from ..crypto import MessageCodec
from ..errors import CookieOverflow, InvalidMessage, RejectReason
from ..expiry import EXPIRY_KEY, expiry_of
from ..revocation import Revocations, user_of
from ..serializer import JSON, Serializer
from ..session import Commit, LoadedState
from .base import Candidates, SealedCookie

__all__ = ["CookieBackend"]

logger: logging.Logger = logging.getLogger("asgisession")


class CookieBackend(SealedCookie):
    """Keeps the session in the cookie itself, sealed by a :class:`.MessageCodec`.

    :param codec: seals and opens the cookie value (encrypted by default, or signed).
    :param cookie: the cookie's name and attributes; the name is also the seal's purpose.
    :param lifetime: seconds from login (or first write) until the session expires,
        however active it is.
    :param idle_timeout: seconds without a request after which the session expires, or
        ``None``.
    :param serializer: turns the data into bytes and back (strict JSON by default).
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
        serializer: Serializer = JSON,
    ) -> None:
        super().__init__(
            codec, cookie, lifetime=lifetime, idle_timeout=idle_timeout,
            refresh_after=refresh_after, user_key=user_key, serializer=serializer,
        )  # fmt: skip
        self.revocations = revocations
        #: Opening a cookie needs no I/O, so sessions load on first access; unless
        #: revocations must be checked, which takes a store lookup.
        self.loads_in_line: bool = revocations is None or user_key is None

    async def load(self, values: list[str], now: int) -> LoadedState:
        """Open the session (see :meth:`open`) and refuse it if its user was revoked since."""
        state = self.open(values, now)
        user = user_of(state.data, self.user_key)
        if self.revocations is None or user is None or state.issued_at is None:
            return state
        not_before = await self.revocations.not_before(user)  # the store times its calls
        if not_before is not None and state.issued_at < not_before:
            logger.debug("session cookie %r refused: revoked at %d", self.cookie.name, not_before)
            return LoadedState(had_cookie=True, rejection=RejectReason.REVOKED)
        state.user = user
        return state

    def open(self, values: list[str], now: int) -> LoadedState:
        """Open the one valid value; an empty session (with the reason) when none is.

        Values that open to different sessions refuse each other (see
        :meth:`~asgisession.backends.base.Candidates.result`).
        """
        only = Candidates.only(values)
        if only is not None:
            try:
                return self._open_one(only, now)
            except InvalidMessage as exc:
                return Candidates.refused_only(exc, self.cookie.name)
        candidates = self._candidates(values)
        for value in candidates.values:
            try:
                state = self._open_one(value, now)
            except InvalidMessage as exc:
                candidates.refuse(exc)
                continue
            assert state.serialized is not None
            candidates.accept(state, state.serialized)
        return candidates.result()

    def _open_one(self, value: str, now: int) -> LoadedState:
        opened = self._open_sealed(value, now)
        try:
            data = self.serializer.loads(opened.payload)
        except ValueError as exc:
            raise InvalidMessage(RejectReason.BAD_PAYLOAD, str(exc)) from None
        if EXPIRY_KEY in data:  # only a session that chose its end has one to check
            self._check_chosen_end(data, now)
        return LoadedState(
            data=data,
            serialized=opened.payload,
            had_cookie=True,
            issued_at=opened.issued_at,
            expires_at=opened.expires_at,
            stale=opened.stale,
            # commit() writes an unchanged session only when this holds.
            settled=not self._reissue_due(opened.stale, opened.issued_at, now),
        )

    async def commit(self, commit: Commit, *, secure: bool, now: int) -> str | None:
        """Return the ``Set-Cookie`` value for this response, or ``None`` to send nothing.

        A cookie is written when the data changed, the session was regenerated, it was
        opened with an older secret (re-issued under the newest), or an idle timeout is
        due for a refresh. An emptied session that came with a cookie gets a deletion.

        :raises CookieOverflow: when the sealed cookie would pass 4096 bytes.
        :raises SerializationError: naming a value the serializer would not read back as is.
        """
        state = commit.state
        # LoadedState.present inline: serves "cookie write".
        write = commit.changed or (
            state.serialized is not None and self._reissue_due(state.stale, state.issued_at, now)
        )
        if not write:
            return None
        if commit.cleared:
            return self.cookie.render_deletion(secure=secure) if state.had_cookie else None
        expires_at = self._end(commit, now)
        value = self.codec.seal(
            commit.serialized(), purpose=self.cookie.name, issued_at=now, expires_at=expires_at
        )
        cookie = self.cookie
        # As in _open_sealed: an ASCII value that fits is not measured ("cookie write" row).
        unsure = len(value) > MAX_COOKIE_SIZE - len(cookie.name) or not value.isascii()
        if unsure and (size := cookie.size(value)) > MAX_COOKIE_SIZE:
            raise CookieOverflow(
                cookie.name, size, MAX_COOKIE_SIZE, self.serializer.sizes_by_key(commit.data)[:5]
            )
        expiry = expiry_of(commit.data) if EXPIRY_KEY in commit.data else None
        return self._render_sealed(value, expires_at, secure=secure, now=now, expiry=expiry)
