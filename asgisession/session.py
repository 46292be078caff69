"""The session object an app sees as ``scope["session"]``.

It is a ``MutableMapping[str, Any]`` that loads its data on first use (a request that never
touches it costs nothing) and remembers what happened to it, so the middleware writes a
cookie only when something changed.

Changes inside nested values (``session["cart"].append(x)``) are caught too: when a list or
dict was handed out, the data is re-serialised at commit time and compared with what was
loaded. Setting ``session.modified = True`` forces a write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, overload

from .errors import RejectReason, SessionNotLoaded

__all__ = ["LoadedState", "Session"]


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

    @property
    def present(self) -> bool:
        """Whether a valid session came in with the request."""
        return self.serialized is not None


NOT_LOADED = (
    "this session lives in a server-side store and is not loaded yet: call "
    "`await session.load()` before reading or writing it, or let the middleware load it "
    "before the app runs (it does, unless the path is in `defer_load`)."
)
#: Session keys that belong to the session's identity, not its data: regenerate() drops them.
#: ``_csrf_token`` is the CSRF token secret (the name Rails uses).
IDENTITY_KEYS: tuple[str, ...] = ("_csrf_token",)
#: Values that can change in place once handed out (see :attr:`Session.exposed`).
_MUTABLE = (dict, list)
_MISSING: Any = object()
SyncLoader = Callable[[], LoadedState]
AsyncLoader = Callable[[], Awaitable[LoadedState]]


class Session(MutableMapping[str, Any]):
    """A lazy, change-tracking session mapping; what ``scope["session"]`` holds.

    Starlette's and FastAPI's ``request.session`` return it as is. It is a mapping, not a
    ``dict``: use ``dict(session)`` where a real dict is needed (e.g. ``json.dumps``).
    Keys must be strings and values JSON-compatible.

    :param sync_loader: loads the data in-line; cookie sessions have one.
    :param async_loader: loads the data with I/O; used by :meth:`load`.

    .. versionadded:: 0.1
    """

    __slots__ = (
        "_accessed", "_async_loader", "_before_commit", "_changes", "_data", "_exposed",
        "_modified", "_regenerated", "_resets", "_state", "_sync_loader",
    )  # fmt: skip

    def __init__(
        self, sync_loader: SyncLoader | None = None, async_loader: AsyncLoader | None = None
    ) -> None:
        self._sync_loader = sync_loader
        self._async_loader = async_loader
        self._state: LoadedState | None = None
        self._data: dict[str, Any] = {}
        self._exposed = False
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
            self._accept(self._sync_loader())
        return self._data

    def _accept(self, state: LoadedState) -> None:
        self._state = state
        self._data = state.data

    def attach(self, state: LoadedState) -> None:
        """Give the session its data without counting as an access (for middleware preloads).

        A preloaded session that the app never touches is still "not accessed", so it gets
        no ``Set-Cookie`` and no ``Vary``.
        """
        if self._state is None:
            self._accept(state)

    def before_commit(self, callback: Callable[[Session], None]) -> None:
        """Run ``callback(session)`` once, just before the session is committed.

        For helpers that keep state of their own in the session (flash messages): they
        write it back at the last moment, and only on requests that used them.
        """
        self._before_commit.append(callback)

    def run_before_commit(self) -> None:
        """Run (and forget) the callbacks registered with :meth:`before_commit`."""
        if not self._before_commit:  # the usual case: nothing registered
            return
        callbacks, self._before_commit = self._before_commit, []
        for callback in callbacks:
            callback(self)

    def fail_with(self, error: BaseException) -> None:
        """Make every synchronous access raise ``error`` (a preload that failed)."""
        if self._state is None:

            def fail() -> LoadedState:
                raise error

            self._sync_loader = fail

    @property
    def loaded(self) -> bool:
        """Whether the data has been loaded (which happens on first access)."""
        return self._state is not None

    @property
    def accessed(self) -> bool:
        """Whether the app touched the session at all on this request."""
        return self._accessed

    @property
    def state(self) -> LoadedState:
        """Where the loaded data came from (loads it if needed)."""
        self._load_sync()
        assert self._state is not None
        return self._state

    def raw(self) -> dict[str, Any]:
        """The loaded data itself, for backends: reading it marks nothing as exposed."""
        return self._load_sync()

    @property
    def is_new(self) -> bool:
        """Whether no valid session came in with this request."""
        return not self.state.present

    @property
    def rejection(self) -> RejectReason | None:
        """Why the incoming session cookie was refused, or ``None``."""
        return self.state.rejection

    # -- change tracking ---------------------------------------------------------------------

    @property
    def modified(self) -> bool:
        """Whether the data was changed through the mapping (or marked so)."""
        return self._modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self._load_sync()
        self._modified = bool(value)
        self._changes += 1

    @property
    def changes(self) -> int:
        """How many changes went through the mapping on this request (nested ones excepted)."""
        return self._changes

    @property
    def exposed(self) -> bool:
        """Whether a mutable value (list or dict) was handed out and may have changed."""
        return self._exposed

    @property
    def regenerated(self) -> bool:
        """Whether :meth:`regenerate` or :meth:`reset` was called on this request."""
        return self._regenerated

    def regenerate(self) -> None:
        """Give the session a new identity and keep its data: call it at login.

        It defeats session fixation: whatever identity an attacker planted before login is
        not the one that becomes authenticated. For cookie sessions it also starts a new
        absolute lifetime; server-side stores also issue a new id and drop the old record.
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

        Helpers' pending write-backs (:meth:`before_commit`) are dropped too, so a flash set
        before the reset is gone with the rest, as in Rails; one set after it is kept.
        """
        self._load_sync()
        self._data.clear()
        self._before_commit.clear()
        self._resets += 1
        self._regenerated = True
        self._modified = True
        self._changes += 1

    @property
    def resets(self) -> int:
        """How many times :meth:`reset` ran on this request (helpers re-read after one)."""
        return self._resets

    # -- the mapping -------------------------------------------------------------------------

    # get, __getitem__, __setitem__ and __contains__ are written out rather than left to the
    # MutableMapping mixins: an app calls them on most requests, and the mixins' chains
    # (get -> __getitem__ -> KeyError) cost a Python call or an exception each.

    def __getitem__(self, key: str) -> Any:
        value = self._load_sync()[key]
        if isinstance(value, _MUTABLE):
            self._exposed = True
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
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys must be str, not {type(key).__name__} ({key!r})")
        self._load_sync()[key] = value
        self._modified = True
        self._changes += 1

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
