"""Log out everywhere: per-user session lists and "not before" times, kept in a Store.

A session belongs to a user when its data holds the configured ``user_key`` (for example
``session["user_id"] = 42`` with ``user_key="user_id"``). Then:

- server-side sessions are listed in a per-user index (a :class:`SupportsUserIndex`
  store), which :meth:`Revocations.revoke_user` walks to delete every record; the index
  prunes members as their sessions expire, so it never grows without bound;
- cookie sessions have nothing on the server to delete, so revoking also stores a per-user
  "not before" time: a cookie for that user issued before it is refused (reason
  ``revoked``) from its next request on.

Store keys are hashes of the user key (``u:`` for the index, ``nb:`` for not-before), so
the store never holds user ids in the clear. The app holds the store, so the public face is
three functions that take it::

    await revoke_user(store, user_id)            # log out everywhere
    await user_sessions(store, user_id)          # "your devices"
    await revoke_session(store, user_id, key)    # log out one device
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .cookies import MAX_AGE_LIMIT
from .errors import ConfigurationError
from .stores.base import Store, SupportsUserIndex, hash_key

__all__ = [
    "Revocations",
    "UserSession",
    "revoke_session",
    "revoke_user",
    "user_of",
    "user_sessions",
]

#: How long a not-before time is kept: the longest any session can live (400 days).
NOT_BEFORE_TTL = MAX_AGE_LIMIT


@dataclass(frozen=True, slots=True)
class UserSession:
    """One live server-side session of a user ("your devices").

    :ivar key: the session's store key (a hash; safe to show, useless as a cookie).
    :ivar expires_at: unix seconds when it ends at the latest.

    .. versionadded:: 0.1
    """

    key: str
    expires_at: int


def user_of(data: dict[str, Any], user_key: str | None) -> str | None:
    """The user a session belongs to, as a string, or ``None``."""
    if user_key is None:
        return None
    value = data.get(user_key)
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    return str(value)


class Revocations:
    """The per-user index and not-before times, in one store.

    :param store: where they live (the session store, or any other).

    .. versionadded:: 0.1
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        # Asked once: isinstance against a runtime-checkable Protocol is slow (see
        # ServerBackend), and a login with a user_key asks on every request.
        self._indexed: SupportsUserIndex | None = (
            store if isinstance(store, SupportsUserIndex) else None
        )

    @property
    def indexed(self) -> bool:
        """Whether the store keeps per-user session lists."""
        return self._indexed is not None

    def _index(self) -> SupportsUserIndex:
        if self._indexed is None:
            raise ConfigurationError(
                f"{type(self.store).__name__} keeps no per-user index (SupportsUserIndex); "
                "listing and deleting a user's server-side sessions needs one."
            )
        return self._indexed

    async def link(self, user: str, session_key: str, *, expires_at: int) -> None:
        """Record that ``session_key`` belongs to ``user`` until ``expires_at``."""
        await self._index().index_add(hash_key("u:", user), session_key, expires_at=expires_at)

    async def unlink(self, user: str, session_key: str) -> None:
        """Forget that ``session_key`` belongs to ``user``."""
        await self._index().index_remove(hash_key("u:", user), session_key)

    async def sessions(self, user: str, *, now: int) -> list[UserSession]:
        """The user's live server-side sessions, soonest-expiring first."""
        if not self.indexed:
            return []
        members = await self._index().index_members(hash_key("u:", user), now=now)
        return sorted(
            (UserSession(key, expires_at) for key, expires_at in members.items()),
            key=lambda s: (s.expires_at, s.key),
        )

    async def not_before(self, user: str) -> int | None:
        """The time before which this user's cookies are refused, if a revocation set one."""
        raw = await self.store.load(hash_key("nb:", user))
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            return None

    async def revoke_user(self, user: str, *, now: int) -> int:
        """End every session of ``user``; return how many server-side records were deleted.

        Cookie sessions issued before ``now`` are refused from their next request on.
        """
        await self.store.save(hash_key("nb:", user), str(now).encode(), ttl=NOT_BEFORE_TTL)
        if not self.indexed:
            return 0
        index = hash_key("u:", user)
        members = await self._index().index_members(index, now=now)
        for session_key in members:
            await self.store.delete(session_key)
            await self._index().index_remove(index, session_key)
        return len(members)

    async def revoke_session(self, user: str, session_key: str, *, now: int) -> bool:
        """End one server-side session of ``user``; ``False`` if it is not theirs (or gone)."""
        index = hash_key("u:", user)
        if session_key not in await self._index().index_members(index, now=now):
            return False
        await self.store.delete(session_key)
        await self._index().index_remove(index, session_key)
        return True


def _now() -> int:
    return int(time.time())


async def revoke_user(store: Store, user: object, *, now: int | None = None) -> int:
    """Log ``user`` out everywhere; return how many server-side sessions were deleted.

    Server-side sessions are deleted through the user's index; cookie sessions issued
    before this call are refused from their next request on (the middleware must have
    ``user_key`` set, and, for the cookie store, ``revocation_store=store``). Times are whole
    seconds: a cookie issued in the same second as the revocation is not refused, which is
    what lets the current device stay logged in by calling ``session.regenerate()`` right
    after this, in the same request.

    :param now: the revocation time (unix seconds); the current time by default.

    .. versionadded:: 0.1
    """
    return await Revocations(store).revoke_user(str(user), now=_now() if now is None else now)


async def user_sessions(store: Store, user: object, *, now: int | None = None) -> list[UserSession]:
    """The live server-side sessions of ``user`` ("your devices"); empty for cookie sessions.

    .. versionadded:: 0.1
    """
    return await Revocations(store).sessions(str(user), now=_now() if now is None else now)


async def revoke_session(
    store: Store, user: object, session_key: str, *, now: int | None = None
) -> bool:
    """End one session of ``user`` by the key :func:`user_sessions` gave; ``False`` if not theirs.

    .. versionadded:: 0.1
    """
    return await Revocations(store).revoke_session(
        str(user), session_key, now=_now() if now is None else now
    )
