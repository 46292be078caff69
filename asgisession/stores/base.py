"""The protocols server-side stores implement: bytes under a key, with a time to live.

Stores are deliberately dumb. Session logic (ids, hashing, expiry inside the payload,
change tracking) lives above them, in :mod:`asgisession.backends`; any object with these
methods works, with no base class to inherit.

Rules every store keeps:

1. Keys arrive already hashed: ASCII, at most 100 characters, no whitespace. Values are
   opaque bytes.
2. A key past its TTL is never returned, even if the store has not swept it yet.
3. ``save(..., replace=True)`` writes only over a live key. A session that was deleted (a
   logout in another tab, "log out everywhere") therefore cannot be brought back by a
   request that loaded it before the delete and saves after it.
4. Failures to reach the backing service raise
   :class:`~asgisession.errors.StoreUnavailable`, never the client library's own errors.
5. The adapter owns the timeout of its calls: each call is bounded by the adapter itself,
   which alone knows what is safe to cancel (a command mid-reply, a transaction before
   its commit), and a late call raises StoreUnavailable naming the store, the operation
   and the timeout. Nothing above the store wraps its calls in a timer of its own, so a
   third-party adapter whose service can hang must bound its own calls (:func:`bounded`
   helps). A store that never waits, such as :class:`~.memory.MemoryStore` or
   :class:`~.null.NullStore`, needs no bound.
6. ``delete`` says whether it removed a live key, and ``add`` (:class:`SupportsAdd`) writes
   only where no live key is, each in one atomic step of the backing service. Of two
   requests ending or moving the same session (two ``regenerate()`` calls, a logout racing
   a login), exactly one therefore sees the record, and a new session never overwrites
   one that exists.
7. ``save_if`` (:class:`SupportsVersioned`) writes only over the record ``load_versioned``
   read, unchanged, in one atomic step of the backing service (a compare-and-set), so a
   request that saves a session changed by a parallel one since it was read learns so
   instead of overwriting it.

Ownership: a store built from a client the caller passed in never closes that client; a
store that built its own client (``from_url()``, a path, host and port) closes it in
:meth:`Store.aclose`. Every store is an async context manager that calls ``aclose()``.

It runs past 300 lines because it is the whole contract an adapter keeps: the protocols,
their rules, and the small helpers every adapter shares.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import Awaitable
from types import TracebackType
from typing import Protocol, TypeAlias, TypeVar, runtime_checkable

import anyio

from ..errors import ConfigurationError, StoreUnavailable

_T = TypeVar("_T")

__all__ = [
    "ClosingStore",
    "ManagedStore",
    "Store",
    "SupportsAdd",
    "SupportsPing",
    "SupportsTouch",
    "SupportsUserIndex",
    "SupportsVersioned",
    "Version",
    "asyncio_only",
    "bounded",
    "check_ttl",
    "hash_key",
]


@runtime_checkable
class Store(Protocol):
    """**Protocol:** where server-side session data lives.

    The adapter owns the timeout of its calls: each method returns, or raises
    :class:`~asgisession.errors.StoreUnavailable`, within the adapter's own bound, and a
    call cut off was either not applied or says that it may have been. Nothing above the
    store adds a timer, so a third-party adapter whose service can hang must bound its own
    calls (``asgisession.stores.base.bounded()`` helps); a store that never waits
    (MemoryStore, NullStore) needs none.

    .. versionadded:: 0.1
    """

    async def load(self, key: str) -> bytes | None:
        """Return the bytes under ``key``, or ``None`` when missing or expired."""
        ...

    async def save(self, key: str, data: bytes, *, ttl: int, replace: bool = False) -> bool:
        """Store ``data`` under ``key`` for ``ttl`` whole seconds (> 0).

        :param replace: write only if ``key`` exists (and is live) already.
        :returns: whether the data is now stored. ``False`` with ``replace=True`` means the
            key was gone; a store that keeps nothing (:class:`NullStore`) always says ``False``.
        """
        ...

    async def delete(self, key: str) -> bool | None:
        """Remove ``key``; a missing key is not an error.

        :returns: whether a live key was removed, decided atomically by the backing
            service (of concurrent deletes of one key, one sees ``True``). ``None`` means
            the adapter does not say: stores written before 0.2 return nothing, and the
            session layer then cannot tell a session ended meanwhile (it treats the key as
            found, as before).

        .. versionchanged:: 0.2
           Returns whether the key was there; every bundled store says.
        """
        ...

    async def aclose(self) -> None:
        """Release what the store owns (see the module docstring on ownership)."""
        ...


@runtime_checkable
class SupportsAdd(Store, Protocol):
    """**Protocol:** a store that can write a key only where none is live (add-if-absent).

    The session layer creates every session with it, so a new session id, however
    unlikely a collision, can never land on another session's record. A capability rather
    than a method of :class:`Store`, so that a store written before it keeps working (its
    sessions are created with a plain :meth:`~Store.save`); every bundled store has it.

    .. versionadded:: 0.2
    """

    async def add(self, key: str, data: bytes, *, ttl: int) -> bool:
        """Store ``data`` under ``key`` for ``ttl`` seconds only if no live key is there.

        :returns: whether it was written; ``False`` when a live key was there (left as
            it was) or, for a store that keeps nothing, always.
        """
        ...


@runtime_checkable
class SupportsTouch(Store, Protocol):
    """**Protocol:** a store that can extend a key's lifetime without rewriting its data.

    .. versionadded:: 0.1
    """

    async def touch(self, key: str, *, ttl: int) -> bool:
        """Reset ``key``'s time to live to ``ttl``; return whether the key existed."""
        ...


@runtime_checkable
class SupportsPing(Store, Protocol):
    """**Protocol:** a store that can tell whether it can serve, for a readiness probe.

    A capability rather than a method of :class:`Store`, so that a store written before it
    keeps satisfying :class:`Store`; every bundled store has it. A caller holding any store
    checks ``isinstance(store, SupportsPing)`` and, without it, learns the store's health
    from its next call.

    .. versionadded:: 0.2
    """

    async def ping(self) -> None:
        """One cheap round trip to the backing service, bounded by the store's timeout.

        :raises StoreUnavailable: with the reason, when the store cannot serve now (server
            down, file not writable, write lock held past the timeout). A later ping on
            the same store succeeds again once the cause is gone.
        """
        ...


#: What :meth:`SupportsVersioned.load_versioned` hands out with a record, and
#: :meth:`~SupportsVersioned.save_if` takes back: opaque to the caller.
Version: TypeAlias = "bytes | int"


@runtime_checkable
class SupportsVersioned(Store, Protocol):
    """**Protocol:** a store that writes a record only if it is still the one read.

    The server backend reads each record with its version and saves a changed session with
    :meth:`save_if`. When another request wrote the record in between, the save is refused;
    the backend then reads the record again, puts this request's changes on top and tries
    again, so parallel requests of one user lose nothing. A capability rather than a method
    of :class:`Store`, so that a store without it keeps working (its saves are then "the
    last one wins"); every bundled store that keeps data has it.

    The version is the store's to choose, and every write must give a new one where the
    data differs: the record's own bytes where the engine can compare them in its atomic
    step (Redis: a Lua script; SQLite: ``UPDATE ... WHERE data = ?``; sealed records carry
    a fresh nonce, so no two writes are equal), or the engine's own token (memcached's CAS
    unique, for ``cas``).

    .. versionadded:: 0.3
    """

    async def load_versioned(self, key: str) -> tuple[bytes, Version] | None:
        """The bytes under ``key`` and their version, or ``None`` when missing or expired."""
        ...

    async def save_if(self, key: str, data: bytes, *, ttl: int, version: Version) -> bool:
        """Store ``data`` for ``ttl`` seconds only if the live record still has ``version``.

        One atomic step of the backing service (a compare-and-set).

        :returns: whether it was written; ``False`` when the record changed since it was
            read, or is gone (read it again to tell which).
        """
        ...


_Managed = TypeVar("_Managed", bound="ManagedStore")


@runtime_checkable
class ManagedStore(SupportsPing, Protocol):
    """**Protocol:** what :func:`asgisession.stores.from_url` returns.

    A store with :meth:`~SupportsPing.ping` that is its own async context manager
    (``async with`` calls ``aclose()`` on exit). Check for touch and the user index with
    their own protocols.

    .. versionadded:: 0.2
    """

    async def __aenter__(self: _Managed) -> _Managed: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class SupportsUserIndex(Store, Protocol):
    """**Protocol:** a store that keeps, per index key, a set of members with expiry times.

    It backs "log out everywhere" and "your devices": one index per user, one member per
    session key. Members past their expiry are never returned and are pruned as the index
    is used, so an index never grows without bound.

    .. versionadded:: 0.1
    """

    async def index_add(self, index: str, member: str, *, expires_at: int) -> None:
        """Add ``member`` (or move its expiry) to ``index``; unix seconds."""
        ...

    async def index_remove(self, index: str, member: str) -> None:
        """Remove ``member`` from ``index``; missing members are not an error."""
        ...

    async def index_members(self, index: str, *, now: int) -> dict[str, int]:
        """The live members of ``index`` with their expiry times; prunes expired ones."""
        ...


async def bounded(awaitable: Awaitable[_T], timeout: float | None, what: str) -> _T:
    """Await a store call within ``timeout`` seconds (``None``: no limit).

    For adapters bounding their own calls (rule 5 of the module): ``what`` names the store
    and the operation, as in ``"Redis GET"``. Cancelling ``awaitable`` must be safe.

    In an asyncio task (Python 3.11+) the limit is ``asyncio.timeout``, cheaper on this
    per-call path than an anyio cancel scope (``benchmarks/ab_middleware.py`` compares);
    anywhere else (Trio, or asyncio on 3.10) it is ``anyio.fail_after``. Both keep the same
    rules: a late call raises StoreUnavailable, and a cancellation from outside (a client
    that went away, a server shutting down) is not a timeout and propagates unchanged.

    :raises StoreUnavailable: when the time runs out.
    """
    if timeout is None:
        return await awaitable
    try:
        if sys.version_info >= (3, 11) and _in_asyncio_task():
            async with asyncio.timeout(timeout):
                return await awaitable
        with anyio.fail_after(timeout):
            return await awaitable
    except TimeoutError:
        raise StoreUnavailable(
            f"the session store did not answer {what} within {timeout} s"
        ) from None


def _in_asyncio_task() -> bool:
    """Whether an asyncio task runs this code (not Trio, nor Trio in guest mode on asyncio)."""
    if "trio" not in sys.modules:  # anyio runs on asyncio or Trio, and Trio is not loaded
        return True
    try:
        return asyncio.current_task() is not None
    except RuntimeError:  # no asyncio loop runs in this thread
        return False


def asyncio_only(adapter: str, why: str) -> Exception:
    """The error for an asyncio-only adapter called where no asyncio loop runs (Trio).

    Raise it when ``asyncio.get_running_loop()`` fails. ``why`` names what ties the adapter
    to asyncio (its client library). Returns the original kind of error, a RuntimeError,
    when the library is asyncio after all, or nothing async runs at all.
    """
    library = _running_library()
    if library is None:
        return RuntimeError(f"{adapter} was called outside an async event loop")
    if library == "asyncio":
        return RuntimeError(f"{adapter} found no running asyncio event loop")
    return ConfigurationError(
        f"{adapter} runs on asyncio only ({why}), and this call runs under {library}. Under "
        f"{library}, keep sessions in the cookie (no store=) or use MemoryStore in "
        "development; or run the server on asyncio."
    )


def _running_library() -> str | None:
    """The async library running this call (Trio checked first), or ``None``.

    Only on the error path. sniffio names the others where it is installed; anyio no longer
    depends on it, so its absence must not turn the clear error into an ImportError.
    """
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass
        else:
            return "trio"
    try:
        import sniffio
    except ImportError:
        return None
    try:
        library: str = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return None
    return library


def hash_key(namespace: str, value: str | bytes) -> str:
    """A store key for a secret value: ``namespace`` + SHA-256 hex of it.

    A dump of the store then holds no usable cookie: session ids carry 256 random bits, so
    the hash cannot be reversed, and a plain (unkeyed) hash keeps working when
    ``secret_key_base`` rotates.
    """
    raw = value.encode() if isinstance(value, str) else value
    return namespace + hashlib.sha256(raw).hexdigest()


_Closing = TypeVar("_Closing", bound="ClosingStore")


class ClosingStore:
    """Base for the bundled stores: ``async with store:`` calls :meth:`aclose` on exit.

    Only a convenience; a store of your own needs no base class (see :class:`Store`).

    .. versionadded:: 0.1
    """

    __slots__ = ()

    async def aclose(self) -> None:
        """Release what the store owns."""
        raise NotImplementedError

    async def __aenter__(self: _Closing) -> _Closing:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def check_ttl(ttl: int) -> int:
    """Return ``ttl`` if it is a whole number of seconds > 0, else raise ConfigurationError."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ConfigurationError(f"ttl={ttl!r}; a store TTL is a whole number of seconds > 0.")
    return ttl
