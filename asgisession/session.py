"""The session object an app sees as ``scope["session"]``.

It is a ``MutableMapping[str, Any]`` that loads its data on first use (a request that never
touches it costs nothing) and remembers what happened to it, so the middleware writes a
cookie only when something changed.

Changes inside nested values (``session["cart"].append(x)``) are caught too: when a list or
dict was handed out, the data is re-serialised at commit time and compared with what was
loaded. Setting ``session.modified = True`` forces a write.

What the middleware, the backends and the helpers do with a session (preload it, run the
flash's write-back, decide what to commit) is :class:`SessionControl`'s, kept apart from
the names an app calls; it reads the session's private state, so it lives in this module
too, which is why the module runs past 300 lines.

A session's own expiry (:meth:`Session.set_expiry`, its rules in :mod:`asgisession.expiry`)
and the seed of its log id (:attr:`Session.log_id`) are kept in the session's data, under
reserved keys, for the reason :mod:`asgisession.expiry` gives.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, overload

from ._session_compat import DeprecatedSessionNames
from .errors import RejectReason, SessionNotLoaded
from .expiry import EXPIRY_KEY, ExpiryPolicy, chosen_end, expiry_of, session_end
from .serializer import JSON, Serializer, dumps_checking

__all__ = ["Commit", "LoadedState", "Session", "SessionControl"]

_NO_POLICY = ExpiryPolicy()


@dataclass(slots=True)
class LoadedState:
    """What a backend found for a request: the data and the facts about where it came from.

    .. versionadded:: 0.1
    """

    data: dict[str, Any] = field(default_factory=dict)
    #: The serialised payload as loaded, to tell whether the data changed.
    serialized: bytes | None = None
    #: Whether the request carried a session cookie at all (valid or not).
    had_cookie: bool = False
    #: Unix seconds when the loaded session was last written, and when it expires.
    issued_at: int | None = None
    expires_at: int | None = None
    #: Opened by an older secret or in a format only read: re-issue it under the newest.
    stale: bool = False
    #: Why the incoming cookie was refused, if it was.
    rejection: RejectReason | None = None
    #: Server-side sessions: the session id (the secret the cookie carries).
    session_id: bytes | None = None
    #: Nothing may be written (the store failed and the policy serves an anonymous session).
    read_only: bool = False
    #: The user the loaded session belonged to (the middleware's ``user_key``), if any.
    user: str | None = None
    #: Set by a backend that knows, at load, that committing this session unchanged would
    #: write nothing (not opened by an older secret, no refresh due): a request that only
    #: reads it is then not committed at all. ``False``: always committed.
    settled: bool = False

    @property
    def present(self) -> bool:
        """Whether a valid session came in with the request."""
        return self.serialized is not None


@dataclass(slots=True)
class Commit:
    """What a request did to its session, decided once when the response starts.

    The middleware makes it (``SessionControl.commit()``) and hands it to the backend,
    which turns it into store writes and a ``Set-Cookie``; no backend decides "did the
    session change?" again. Backends read it and never change it. (It is not a frozen
    dataclass because one is made on every request that uses its session, and a frozen
    one costs three times as much to build.)

    .. versionadded:: 0.2
    """

    #: Where the data came from (cookie facts, session id, issue and expiry times).
    state: LoadedState
    #: The data as it stands now.
    data: dict[str, Any]
    #: Whether the data changed: written through the mapping, marked ``modified``,
    #: regenerated or reset, or a handed-out list or dict now serialises differently.
    changed: bool
    #: Whether :meth:`Session.regenerate` or :meth:`Session.reset` ran: a new identity.
    regenerated: bool
    #: Whether the session holds no data (nothing to store; a cookie that came gets deleted).
    cleared: bool
    #: The serialised data, once the change check or :meth:`serialized` computed it.
    payload: bytes | None = None
    #: What turns the data into bytes (the middleware's ``serializer=``).
    serializer: Serializer = JSON
    #: The keys whose values may hold what ``serializer`` has not checked (written, or a
    #: list or dict handed out); ``None``: every key. The others came from its ``loads``.
    dirty: set[str] | None = None
    #: Whether :meth:`Session.set_expiry` changed the session's expiry: a server-side
    #: session's cookie is then re-issued (its end and Max-Age changed).
    expiry_changed: bool = False

    def serialized(self) -> bytes:
        """The serialised data (computed now unless the change check did it already).

        :raises SerializationError: for a value the serializer would not read back as is.
        """
        if self.payload is None:
            self.payload = dumps_checking(self.serializer, self.data, self.dirty)
        return self.payload


NOT_LOADED = (
    "this session lives in a server-side store and is not loaded yet: call "
    "`await session.load()` before reading or writing it, or let the middleware load it "
    "before the app runs (it does, unless the path is in `defer_load`)."
)
#: The session key of the random seed :attr:`Session.log_id` is derived from.
LOG_SEED_KEY = "_log_seed"
#: Session keys that belong to the session's identity, not its data: regenerate() drops them.
#: ``_csrf_token`` is the CSRF token secret (the name Rails uses); ``_log_seed`` makes the
#: log id, which must change with the identity.
IDENTITY_KEYS: tuple[str, ...] = ("_csrf_token", LOG_SEED_KEY)
_LOG_ID_DOMAIN = b"asgisession log id\x00"
#: Values that can change in place once handed out (see :attr:`Session.exposed`).
_MUTABLE = (dict, list)
_MISSING: Any = object()
SyncLoader = Callable[[], LoadedState]
AsyncLoader = Callable[[], Awaitable[LoadedState]]


def log_id_of(seed: str) -> str:
    """The log id of a session whose seed is ``seed`` (see :attr:`Session.log_id`)."""
    return hashlib.sha256(_LOG_ID_DOMAIN + seed.encode()).hexdigest()[:24]


class Session(DeprecatedSessionNames, MutableMapping[str, Any]):
    """A lazy, change-tracking session mapping; what ``scope["session"]`` holds.

    Starlette's and FastAPI's ``request.session`` return it as is. It is a mapping, not a
    ``dict``: use ``dict(session)`` where a real dict is needed (e.g. ``json.dumps``).
    Keys must be strings and values JSON-compatible.

    Its public names are what an app calls: the mapping, :meth:`load`, :meth:`regenerate`,
    :meth:`reset`, :attr:`modified`, :attr:`is_new`, :attr:`rejection`, :attr:`loaded`, the
    expiry (:meth:`set_expiry` and its readers) and :attr:`log_id`.
    What the middleware, the backends and the helpers need is on ``SessionControl``.

    :param sync_loader: loads the data in-line; cookie sessions have one.
    :param async_loader: loads the data with I/O; used by :meth:`load`.
    :param policy: the middleware's expiry settings, for :meth:`set_expiry`.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       :meth:`set_expiry`, :attr:`expiry_age`, :attr:`expiry_date`,
       :attr:`expires_at_browser_close` and :attr:`log_id`.
    """

    __slots__ = (
        "_accessed", "_async_loader", "_before_commit", "_changes", "_data", "_dirty",
        "_expiry_changed", "_exposed", "_modified", "_policy", "_regenerated", "_resets",
        "_state", "_sync_loader",
    )  # fmt: skip

    def __init__(
        self,
        sync_loader: SyncLoader | None = None,
        async_loader: AsyncLoader | None = None,
        policy: ExpiryPolicy = _NO_POLICY,
    ) -> None:
        self._policy = policy
        self._expiry_changed = False
        self._sync_loader = sync_loader
        self._async_loader = async_loader
        self._state: LoadedState | None = None
        self._data: dict[str, Any] = {}
        self._exposed = False
        #: Keys written, or whose list or dict was handed out: only their values can hold
        #: what the serializer has not checked (the rest came from its own loads).
        self._dirty: set[str] | None = None
        self._modified = False
        self._regenerated = False
        self._accessed = False
        self._changes = 0
        self._before_commit: list[Callable[[Session], None]] = []
        self._resets = 0

    # -- loading ---------------------------------------------------------------------------

    async def load(self) -> None:
        """Load the data now, with I/O if the store needs it. Does nothing once loaded."""
        self._accessed = True
        if self._state is None:
            if self._async_loader is not None:
                self._accept(await self._async_loader())
            else:
                self._load_sync()

    def _load_sync(self) -> dict[str, Any]:
        self._accessed = True
        if self._state is None:
            if self._sync_loader is None:
                raise SessionNotLoaded(NOT_LOADED)
            state = self._sync_loader()
            self._state, self._data = state, state.data  # _accept in line: every read row
        return self._data

    def _accept(self, state: LoadedState) -> None:
        self._state = state
        self._data = state.data

    @property
    def loaded(self) -> bool:
        """Whether the data has been loaded (which happens on first access)."""
        return self._state is not None

    @property
    def is_new(self) -> bool:
        """Whether no valid session came in with this request."""
        return not self._loaded_state().present

    @property
    def rejection(self) -> RejectReason | None:
        """Why the incoming session cookie was refused, or ``None``."""
        return self._loaded_state().rejection

    def _loaded_state(self) -> LoadedState:
        self._load_sync()
        assert self._state is not None
        return self._state

    # -- change tracking ---------------------------------------------------------------------

    @property
    def modified(self) -> bool:
        """Whether the data was changed through the mapping (or marked so).

        Set it to ``True`` to force a write, e.g. after changing a value in place.
        """
        return self._modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self._load_sync()
        self._modified = bool(value)
        self._changes += 1

    def regenerate(self) -> None:
        """Give the session a new identity and keep its data: call it at login.

        It defeats session fixation: whatever identity an attacker planted before login is
        not the one that becomes authenticated. For cookie sessions it also starts a new
        absolute lifetime (an end chosen with :meth:`set_expiry` is kept); server-side
        stores also issue a new id and drop the old record.
        Secrets bound to the old identity (the keys in ``IDENTITY_KEYS``, such as the
        CSRF token secret) are dropped, so tokens handed out before login stop working.
        """
        data = self._load_sync()
        for key in IDENTITY_KEYS:
            data.pop(key, None)
        self._regenerated = True
        self._modified = True
        self._changes += 1

    def reset(self) -> None:
        """Drop all data and the identity: call it at logout.

        Helpers' pending write-backs are dropped too, so a flash set before the reset is
        gone with the rest, as in Rails; one set after it is kept.
        """
        self._load_sync()
        self._data.clear()
        self._before_commit.clear()
        self._resets += 1
        self._regenerated = True
        self._modified = True
        self._changes += 1

    # -- expiry and log id -------------------------------------------------------------------

    def set_expiry(self, value: float | timedelta | datetime | None) -> None:
        """Choose when this session ends, as Django's ``set_expiry`` takes it.

        - ``0`` (or ``timedelta(0)``): the cookie ends when the browser closes (no
          ``Max-Age``). On the server the session still ends as a default one does:
          ``lifetime`` from now, or sooner at the ``idle_timeout``.
        - seconds (``int`` or ``float``) or a ``timedelta``: the session ends that long
          from now, on the server and in the browser (``Max-Age``), however active it is.
        - an aware ``datetime``: the session ends then.
        - ``None``: back to the middleware's default, ``lifetime`` from now.

        The choice is kept by later requests that do not call it, and by :meth:`regenerate`
        (the end stays where it was); :meth:`reset` and :meth:`clear` drop it. Call it on
        every request for Django's "seconds of inactivity". The end is sealed, so the
        client cannot extend it; the ``idle_timeout`` still applies.

        :raises ExpiryTooLong: for a lifetime longer than the middleware's ``lifetime``.
        :raises ValueError: for a negative or non-finite number, a naive or past datetime.
        :raises TypeError: for any other type.
        """
        data = self._load_sync()
        choice = None if value is None else chosen_end(value, self._policy)
        if choice == expiry_of(data) and (choice is not None or EXPIRY_KEY not in data):
            return
        if choice is None:
            del data[EXPIRY_KEY]
        else:
            data[EXPIRY_KEY] = choice
            self._touch(EXPIRY_KEY)
        self._expiry_changed = True
        self._modified = True
        self._changes += 1

    @property
    def expires_at_browser_close(self) -> bool:
        """Whether the cookie ends when the browser closes (no ``Max-Age``).

        ``True`` after ``set_expiry(0)``; on the default, whether the middleware's
        ``max_age`` is ``None``.
        """
        choice = expiry_of(self._load_sync())
        return self._policy.browser_close if choice is None else choice == 0

    @property
    def expiry_date(self) -> datetime | None:
        """When the session ends on the server (aware, UTC), if nothing ends it sooner.

        The idle timeout may end it sooner. ``None`` when the session does not know the
        middleware's lifetime (a session made without one).
        """
        end = self._end()
        return None if end is None else datetime.fromtimestamp(end, timezone.utc)

    @property
    def expiry_age(self) -> int | None:
        """Seconds from now until :attr:`expiry_date`; ``None`` when that is ``None``."""
        end = self._end()
        return None if end is None else max(0, end - int(self._policy.clock()))

    def _end(self) -> int | None:
        data = self._load_sync()
        state = self._loaded_state()
        lifetime = self._policy.lifetime
        if lifetime is None:
            return expiry_of(data) or state.expires_at
        restart = self._regenerated or self._expiry_changed
        now = int(self._policy.clock())
        return session_end(
            data, expires_at=state.expires_at, restart=restart, now=now, lifetime=lifetime
        )

    @property
    def log_id(self) -> str | None:
        """A stable id of this session that is safe to log; ``None`` while it holds nothing.

        24 hex digits, the same on every request of the session (cookie refreshes, key
        rotations and moves into the store included), and a new one after
        :meth:`regenerate` or :meth:`reset`. It is a one-way hash of a random seed kept in
        the session (under ``_log_seed``), so it says nothing of the cookie or the store
        key and cannot be turned into either.

        The first read on a session that has data but no seed yet puts one in: the session
        is then written with this response (read it before the response starts).
        """
        data = self._load_sync()
        seed = data.get(LOG_SEED_KEY)
        if not isinstance(seed, str):
            if not data:
                return None
            seed = data[LOG_SEED_KEY] = secrets.token_urlsafe(16)
            self._touch(LOG_SEED_KEY)
            # Not counted in _changes: a seed made after the response started is not a
            # change the app lost (the next request makes another and keeps it).
            self._modified = True
        return log_id_of(seed)

    # -- the mapping -------------------------------------------------------------------------

    # get, __getitem__, __setitem__ and __contains__ are written out rather than left to the
    # MutableMapping mixins: an app calls them on most requests, and the mixins' chains
    # (get -> __getitem__ -> KeyError) cost a Python call or an exception each.

    def __getitem__(self, key: str) -> Any:
        value = self._load_sync()[key]
        if isinstance(value, _MUTABLE):
            self._exposed = True
            self._touch(key)
        return value

    @overload
    def get(self, key: str, /) -> Any | None: ...
    @overload
    def get(self, key: str, /, default: Any) -> Any: ...

    def get(self, key: str, /, default: Any = None) -> Any:
        """``session[key]``, or ``default`` when the key is missing."""
        value = self._load_sync().get(key, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, _MUTABLE):
            self._exposed = True
            self._touch(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys must be str, not {type(key).__name__} ({key!r})")
        self._load_sync()[key] = value
        self._modified = True
        self._changes += 1
        dirty = self._dirty
        if dirty is None:
            self._dirty = {key}
        else:
            dirty.add(key)

    def _touch(self, key: str) -> None:
        dirty = self._dirty
        if dirty is None:
            self._dirty = {key}
        else:
            dirty.add(key)

    def __delitem__(self, key: str) -> None:
        del self._load_sync()[key]
        self._modified = True
        self._changes += 1

    def __iter__(self) -> Iterator[str]:
        return iter(self._load_sync())

    def __len__(self) -> int:
        return len(self._load_sync())

    def __contains__(self, key: object) -> bool:
        return key in self._load_sync()

    def clear(self) -> None:
        """Remove every key. A session that brought a cookie then sends a deletion cookie."""
        data = self._load_sync()
        if data:
            data.clear()
            self._modified = True
            self._changes += 1

    def __repr__(self) -> str:
        if self._state is None:
            return "<Session (not loaded)>"
        return f"<Session {self._data!r}>"


class SessionControl:
    """What the middleware, the backends and the helpers do with a session; apps need none of it.

    A view over one :class:`Session` (it holds no state of its own, so making one costs an
    allocation and nothing else): the middleware makes one per request, and :mod:`.flash`
    and :mod:`.csrf` reach it through :func:`control_of`.

    .. versionadded:: 0.2
    """

    __slots__ = ("_session",)

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def session(self) -> Session:
        """The session this controls."""
        return self._session

    def attach(self, state: LoadedState) -> None:
        """Give the session its data without counting as an access (for middleware preloads).

        A preloaded session that the app never touches is still "not accessed", so it gets
        no ``Set-Cookie`` and no ``Vary``.
        """
        if self._session._state is None:
            self._session._accept(state)

    def fail_with(self, error: BaseException) -> None:
        """Make every synchronous access raise ``error`` (a preload that failed)."""
        session = self._session
        if session._state is None:

            def fail() -> LoadedState:
                raise error

            session._sync_loader = fail

    def before_commit(self, callback: Callable[[Session], None]) -> None:
        """Run ``callback(session)`` once, just before the session is committed.

        For helpers that keep state of their own in the session (flash messages): they
        write it back at the last moment, and only on requests that used them.
        :meth:`Session.reset` drops the callbacks registered before it.
        """
        self._session._before_commit.append(callback)

    def run_before_commit(self) -> None:
        """Run (and forget) the callbacks registered with :meth:`before_commit`."""
        session = self._session
        if not session._before_commit:  # the usual case: nothing registered
            return
        callbacks, session._before_commit = session._before_commit, []
        for callback in callbacks:
            callback(session)

    def prepare_commit(self) -> tuple[bool, int, int]:
        """:meth:`run_before_commit`, then :attr:`accessed`, :attr:`changes` and :attr:`resets`.

        What the middleware asks as the response starts, in one call (the middleware
        section's read and write rows): the counts tell changes made after it.
        """
        session = self._session
        if session._before_commit:
            self.run_before_commit()
        return session._accessed, session._changes, session._resets

    @property
    def accessed(self) -> bool:
        """Whether the app touched the session at all on this request."""
        return self._session._accessed

    @property
    def changes(self) -> int:
        """How many changes went through the mapping on this request (nested ones excepted)."""
        return self._session._changes

    @property
    def resets(self) -> int:
        """How many times :meth:`Session.reset` ran on this request (helpers re-read after one)."""
        return self._session._resets

    @property
    def exposed(self) -> bool:
        """Whether a mutable value (list or dict) was handed out and may have changed."""
        return self._session._exposed

    @property
    def regenerated(self) -> bool:
        """Whether :meth:`Session.regenerate` or :meth:`Session.reset` ran on this request."""
        return self._session._regenerated

    @property
    def state(self) -> LoadedState:
        """Where the loaded data came from (loads it if needed)."""
        return self._session._loaded_state()

    def data(self) -> dict[str, Any]:
        """The loaded data itself: reading it marks nothing as exposed."""
        return self._session._load_sync()

    def commit(self, serializer: Serializer = JSON) -> Commit | None:
        """What to write for this request; ``None`` when there is nothing to commit.

        ``None``: the app never loaded the session, or only read one whose loaded state its
        backend marked :attr:`LoadedState.settled` (nothing set, deleted, reset,
        regenerated, handed out mutable or given an expiry): committing it would write
        nothing, so the backend is not asked.

        The one place that decides whether the data changed: a change through the mapping,
        :attr:`Session.modified`, a regeneration or reset, or (when a list or dict was
        handed out) data that now serialises differently from what was loaded, by
        ``serializer`` (the one the backend reads with).
        """
        session = self._session
        state = session._state
        if not session._accessed or state is None:
            return None
        changed = session._modified or session._regenerated
        if state.settled and not (changed or session._exposed or session._expiry_changed):
            return None  # only read, nothing due: no Commit, no backend (the cookie read row)
        data = session._data
        # Loaded data came from the serializer's own loads only if a payload was loaded.
        dirty = session._dirty if state.serialized is not None else None
        payload: bytes | None = None
        if not changed and session._exposed:
            payload = dumps_checking(serializer, data, dirty)
            changed = payload != state.serialized
        return Commit(
            state, data, changed, session._regenerated, not data, payload, serializer, dirty,
            session._expiry_changed,
        )  # fmt: skip


def in_use(session: Session) -> bool:
    """Whether the app touched ``session`` or a helper awaits its commit.

    The middleware asks this first, without making a :class:`SessionControl`: most requests
    never use their session.
    """
    return session._accessed or bool(session._before_commit)


def control_of(session: Session) -> SessionControl:
    """The :class:`SessionControl` of ``session``, for asgisession's own helpers."""
    return SessionControl(session)
