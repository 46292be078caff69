"""Flash messages: a value set on this request, shown on the next one, then gone.

Rails' semantics and storage shape (``ActionDispatch::Flash::FlashHash``), so a Rails app
sharing the session shows the same messages:

1. On load, every stored flash becomes visible and is marked for discard, so it lives for
   exactly one request after the one that set it, unless :meth:`Flash.keep` is called.
2. ``flash(scope).now[key] = value`` is visible on this request only and never stored.
3. The flash is written back by a :meth:`~asgisession.session.SessionControl.before_commit`
   callback, just before the session is committed, and only on requests that called
   :func:`flash`: it lives under the session key ``"flash"`` as
   ``{"discard":[],"flashes":{...}}``, and that key is removed when nothing is kept. The
   session is written only when that value actually changed.

A request that never calls :func:`flash` touches neither the session nor the flash.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, cast

from ._scope import session_from_scope
from ._types import AnyScope, Scope
from .session import Session, control_of

__all__ = ["FLASH_KEY", "Flash", "FlashNow", "flash"]

#: The session key the flash lives under (the one Rails uses).
FLASH_KEY = "flash"
#: Where the request's :class:`Flash` is cached in the ASGI scope.
SCOPE_KEY = "asgisession.flash"


def flash(scope: AnyScope) -> Flash:
    """The flash of this request: one :class:`Flash` per request, cached in the scope.

    The first call reads the stored flash from ``scope["session"]`` (which marks the
    session as used) and registers the write-back; later calls return the same object.

    :raises ConfigurationError: when no :class:`~asgisession.SessionMiddleware` runs
        outside the app (there is no ``scope["session"]``).
    :raises SessionNotLoaded: for a server-side session whose path is in ``defer_load``
        and that was not loaded yet (``await session.load()`` first).

    .. versionadded:: 0.1
    """
    session = session_from_scope(scope)
    cached = scope.get(SCOPE_KEY)
    if (
        isinstance(cached, Flash)
        and cached.session is session
        and cached.resets == control_of(session).resets
    ):
        return cached
    current = cast(Scope, scope)[SCOPE_KEY] = Flash(session)
    return current


class Flash(MutableMapping[str, Any]):
    """The flash messages of one request; a mapping of message kinds to values.

    ``flash["notice"] = "Signed in"`` is shown on the next request; reading (``get``,
    ``[]``, ``in``, iteration, ``len``, ``items``) sees what the previous request stored
    plus what this one set, including :attr:`now`. Values must be JSON, like any session
    value. Build it with :func:`flash`, not directly.

    .. versionadded:: 0.1
    """

    __slots__ = ("_discard", "_flashes", "_loaded", "now", "resets", "session")

    def __init__(self, session: Session) -> None:
        self.session: Session = session
        control = control_of(session)
        #: The session's reset count when this flash was made; a reset starts a new flash.
        self.resets: int = control.resets
        self._loaded: Any = session.get(FLASH_KEY)
        self._flashes: dict[str, Any] = _stored_flashes(self._loaded)
        #: Keys that are dropped at commit: everything loaded, and everything set ``now``.
        self._discard: set[str] = set(self._flashes)
        #: Messages for this request only: ``flash(scope).now["alert"] = "..."``.
        self.now: FlashNow = FlashNow(self)
        control.before_commit(self._write_back)

    def keep(self, key: str | None = None) -> None:
        """Keep ``key`` (or every message) for one more request."""
        if key is None:
            self._discard.clear()
        else:
            self._discard.discard(key)

    def discard(self, key: str | None = None) -> None:
        """Drop ``key`` (or every message) at the end of this request; it stays readable now."""
        if key is None:
            self._discard.update(self._flashes)
        else:
            self._discard.add(key)

    def to_session_value(self) -> dict[str, Any] | None:
        """What is stored for the next request, in Rails' shape, or ``None`` for nothing."""
        kept = {k: v for k, v in self._flashes.items() if k not in self._discard}
        return {"discard": [], "flashes": kept} if kept else None

    def _write_back(self, session: Session) -> None:
        value = self.to_session_value()
        if value == self._loaded:
            return  # nothing changed: the session is not written for the flash's sake
        if value is None:
            session.pop(FLASH_KEY, None)
        else:
            session[FLASH_KEY] = value

    # -- the mapping -------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._flashes[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"flash keys must be str, not {type(key).__name__} ({key!r})")
        self._discard.discard(key)
        self._flashes[key] = value

    def __delitem__(self, key: str) -> None:
        self._discard.discard(key)
        del self._flashes[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._flashes)

    def __len__(self) -> int:
        return len(self._flashes)

    def __contains__(self, key: object) -> bool:
        return key in self._flashes

    def __repr__(self) -> str:
        return f"<Flash {self._flashes!r} discard={sorted(self._discard)!r}>"


class FlashNow:
    """Writes messages meant for this request only (``flash(scope).now``).

    .. versionadded:: 0.1
    """

    __slots__ = ("_flash",)

    def __init__(self, owner: Flash) -> None:
        self._flash = owner

    def __setitem__(self, key: str, value: Any) -> None:
        self._flash[key] = value
        self._flash.discard(key)

    def __getitem__(self, key: str) -> Any:
        return self._flash[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The message under ``key`` (set now or not), or ``default``."""
        return self._flash.get(key, default)


def _stored_flashes(value: Any) -> dict[str, Any]:
    """The visible messages of a stored flash; anything malformed reads as no messages."""
    if not isinstance(value, dict):
        return {}
    flashes = value.get("flashes")
    discard = value.get("discard")
    if not isinstance(flashes, dict):
        return {}
    dropped = {k for k in discard if isinstance(k, str)} if isinstance(discard, list) else set()
    return {k: v for k, v in flashes.items() if isinstance(k, str) and k not in dropped}
