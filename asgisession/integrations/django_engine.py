"""A Django session engine over asgisession's cookie format and stores.

::

    SESSION_ENGINE = "asgisession.integrations.django"
    ASGISESSION_SECRET_KEY_BASE = os.environ["SECRET_KEY_BASE"]
    ASGISESSION_STORE = None  # or "redis://...", "sqlite:///sessions.db", "memcached://..."

Django's own ``SessionMiddleware`` stays in ``MIDDLEWARE`` and drives it, so everything
built on it works as in any Django project: the admin (and its ``admin.E410`` check),
``django.contrib.auth`` and ``messages``, the test ``Client``/``AsyncClient``, WSGI
(``runserver``) and ASGI alike. The session key Django puts in its cookie is
asgisession's sealed value, so a cookie written through one entry point opens through the
other, and asgisession's own :class:`~asgisession.SessionMiddleware` given the same
secret, cookie name and store opens it too.

- Without a store, the cookie holds the data sealed (AES-256-GCM by default), as
  asgisession's cookie store does; with one, it holds a sealed 256-bit id and the store
  holds the record, bound to that id, under a hash of it (as ``ServerBackend`` does).
- Django's settings that shape the cookie (``SESSION_COOKIE_NAME``, ``_AGE``, ``_DOMAIN``,
  ``_SECURE``...) apply; the cookie name is also the seal's purpose.
- Each save seals the expiry into the cookie: now plus ``get_expiry_age()``, at most
  ``SESSION_COOKIE_AGE``. A cookie is refused once it passes, and so is a session whose
  ``set_expiry()`` (kept with the data as ``_session_expiry``, sealed or in the store) has
  passed; a client can neither extend one nor the other.
- ``ASGISESSION_SECRET_KEY_BASE`` may list several secrets, newest first: a cookie opened
  with an older one is saved again under the newest on that response.
- A store that fails raises :class:`~asgisession.StoreUnavailable`, kept as
  :attr:`SessionStore.store_error`;
  :class:`~asgisession.integrations.django_middleware.SessionMiddleware` (in place of
  Django's) answers it 503. With ``on_store_error = "anonymous"`` (which that middleware
  sets from ``ASGISESSION_ON_STORE_ERROR``) a failed load gives an empty, read-only
  session instead, which nothing writes.
- With ``ASGISESSION_USER_KEY`` (``"_auth_user_id"`` for ``django.contrib.auth``) each
  save lists the record under its user in the store's per-user index, and each delete
  takes it off, as ``ServerBackend`` does: :mod:`.django_users` revokes them all.
- Store calls are asynchronous (the Redis and Memcached adapters are asyncio clients, bound
  to one event loop), while Django calls ``load()`` and ``save()`` synchronously, under
  WSGI and under ASGI (its middleware saves in a worker thread). Every store call therefore
  runs on one event loop the engine owns, in a daemon thread (``_django_setup.StoreLoop``):
  the sync methods wait for it, the async ones (``aload``...) await it. The cookie format
  needs no I/O.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase, UpdateError

from ..backends.server import SESSION_ID_BYTES, ServerBackend
from ..cookies import MAX_COOKIE_SIZE
from ..errors import CookieOverflow, InvalidMessage, StoreUnavailable
from ..revocation import user_of
from ..serializer import JSON
from ..session import LoadedState
from ..stores.base import SupportsAdd
from ._django_expiry import DJANGO_KEY, checked, expired, with_core_expiry, with_django_expiry
from ._django_setup import LOOP, engine

__all__ = ["SessionStore"]

logger: logging.Logger = logging.getLogger("asgisession")


class SessionStore(SessionBase):
    """Django's ``SessionBase`` whose session key is asgisession's sealed cookie value.

    .. versionadded:: 0.2
    """

    #: Whether the request changed the session (Django's flag: its middleware saves then).
    modified: bool

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._engine = engine()
        #: The store id of the loaded session (server format), to update or delete.
        self._session_id: bytes | None = None
        #: What a failed load does: raise (``"unavailable"``, Django's own middleware
        #: answers 500, asgisession's 503) or serve an empty session (``"anonymous"``).
        self.on_store_error: Literal["unavailable", "anonymous"] = "unavailable"
        #: The failure the store met during this request, if any.
        self.store_error: StoreUnavailable | None = None
        #: The user (``ASGISESSION_USER_KEY``) the stored record is listed under, if any.
        self._user: str | None = None

    @property
    def read_only(self) -> bool:
        """Whether the session was served empty for a failed load: it must not be written."""
        return self.store_error is not None and self.on_store_error == "anonymous"

    def _failing(self, error: StoreUnavailable, loading: bool) -> None:
        self.store_error = error
        if not loading or self.on_store_error != "anonymous":
            raise error
        logger.warning("session store unavailable; serving an anonymous session: %s", error)

    def _call(self, call: Callable[[], Any], loading: bool = False) -> Any:
        try:
            return LOOP.run(call)
        except StoreUnavailable as exc:
            self._failing(exc, loading)
            return None

    async def _acall(self, call: Callable[[], Any], loading: bool = False) -> Any:
        try:
            return await LOOP.arun(call)
        except StoreUnavailable as exc:
            self._failing(exc, loading)
            return None

    # -- loading -----------------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        """Open the cookie (and fetch its record); an empty session if it does not open."""
        now = int(time.time())
        server = self._engine.server
        if server is None:
            return self._accept(self._engine.cookie.open(self._values(), now), now)
        values = self._values()
        state = self._call(lambda: server.load(values, now), loading=True)
        return {} if state is None else self._accept(state, now)

    async def aload(self) -> dict[str, Any]:
        """Async :meth:`load`."""
        now = int(time.time())
        server = self._engine.server
        if server is None:
            return self.load()
        values = self._values()
        state = await self._acall(lambda: server.load(values, now), loading=True)
        return {} if state is None else self._accept(state, now)

    def _values(self) -> list[str]:
        return [self.session_key] if self.session_key else []

    def _accept(self, state: LoadedState, now: int) -> dict[str, Any]:
        data = with_django_expiry(state.data, state.issued_at)
        if state.serialized is None or expired(data.get(DJANGO_KEY), state.issued_at, now):
            self._session_key = None
            self._session_id = None
            return {}
        self._session_id = state.session_id
        self._user = state.user
        if state.stale:  # opened with an older secret: Django re-saves it under the newest
            self.modified = True
        return data

    # -- expiry --------------------------------------------------------------------------------

    def set_expiry(self, value: Any) -> None:
        """Django's ``set_expiry``; refused above ``SESSION_COOKIE_AGE`` (the longest allowed).

        ``0``: the cookie ends with the browser; seconds, a ``timedelta`` or an aware
        ``datetime``: that lifetime from now (from each save, for seconds); ``None``: the
        default, ``SESSION_COOKIE_AGE``.

        :raises ValueError: for a lifetime longer than ``SESSION_COOKIE_AGE``.
        """
        super().set_expiry(checked(value, self._engine.age))

    async def aset_expiry(self, value: Any) -> None:
        """Async :meth:`set_expiry`."""
        await super().aset_expiry(checked(value, self._engine.age))

    def _expires_at(self, now: int) -> int:
        if self.get_expire_at_browser_close():
            return now + self._engine.age
        return now + min(int(self.get_expiry_age()), self._engine.age)

    # -- saving --------------------------------------------------------------------------------

    def save(self, must_create: bool = False) -> None:
        """Seal the data into a new session key (and write the record, with a store)."""
        if self.read_only:
            return  # served empty while the store failed: writing it would lose the real one
        now = int(time.time())
        data = dict(self.items())
        payload = JSON.dumps(with_core_expiry(data, now))
        expires_at = self._expires_at(now)
        server = self._engine.server
        if server is None:
            self._session_key = self._sealed(payload, expires_at, now)
            return
        user = user_of(data, server.user_key)
        self._session_key = self._call(lambda: self._write(server, payload, expires_at, now, user))

    async def asave(self, must_create: bool = False) -> None:
        """Async :meth:`save`."""
        server = self._engine.server
        if server is None or self.read_only:
            self.save(must_create)
            return
        now = int(time.time())
        data = dict(await self.aitems())
        payload = JSON.dumps(with_core_expiry(data, now))
        expires_at = self._expires_at(now)
        user = user_of(data, server.user_key)
        self._session_key = await self._acall(
            lambda: self._write(server, payload, expires_at, now, user)
        )

    def _sealed(self, payload: bytes, expires_at: int, now: int) -> str:
        value = self._engine.seal(payload, expires_at, now)
        size = self._engine.cookie.cookie.size(value)
        if size > MAX_COOKIE_SIZE:
            sizes = JSON.sizes_by_key(dict(self.items()))[:5]
            raise CookieOverflow(settings.SESSION_COOKIE_NAME, size, MAX_COOKIE_SIZE, sizes)
        return value

    async def _write(
        self, server: ServerBackend, payload: bytes, expires_at: int, now: int, user: str | None
    ) -> str:
        ttl = max(1, expires_at - now)
        session_id = self._session_id
        if session_id is not None:
            key = server.key(session_id)
            record = server.records.write(key, session_id, payload)
            if not await server.store.save(key, record, ttl=ttl, replace=True):
                raise UpdateError  # deleted meanwhile: Django answers SessionInterrupted
        else:
            session_id = secrets.token_bytes(SESSION_ID_BYTES)
            key = server.key(session_id)
            record = server.records.write(key, session_id, payload)
            store = server.store
            if isinstance(store, SupportsAdd):
                stored = await store.add(key, record, ttl=ttl)
            else:
                stored = await store.save(key, record, ttl=ttl)
            if not stored:
                raise UpdateError
            self._session_id = session_id
        if server.revocations is not None:  # the user's index, for "log out everywhere"
            key = server.key(session_id)
            if self._user is not None and self._user != user:
                await server.revocations.unlink(self._user, key)
            if user is not None:
                await server.revocations.link(user, key, expires_at=expires_at)
            self._user = user
        return self._engine.seal(session_id, expires_at, now)

    async def _delete(self, server: ServerBackend, session_id: bytes) -> None:
        key = server.key(session_id)
        await server.store.delete(key)
        if server.revocations is not None and self._user is not None:
            await server.revocations.unlink(self._user, key)
        self._user = None

    # -- identity ------------------------------------------------------------------------------

    def create(self) -> None:
        """A new identity: the next save writes a new record (or a new cookie)."""
        self._session_key = None
        self._session_id = None
        self.modified = True

    async def acreate(self) -> None:
        """Async :meth:`create`."""
        self.create()

    def delete(self, session_key: str | None = None) -> None:
        """Delete the record the key names (nothing to delete in the cookie format)."""
        session_id = self._id_of(session_key)
        server = self._engine.server
        if server is not None and session_id is not None:
            self._call(lambda: self._delete(server, session_id))
        if session_key is None:
            self._session_id = None

    async def adelete(self, session_key: str | None = None) -> None:
        """Async :meth:`delete`."""
        session_id = self._id_of(session_key)
        server = self._engine.server
        if server is not None and session_id is not None:
            await self._acall(lambda: self._delete(server, session_id))
        if session_key is None:
            self._session_id = None

    def _id_of(self, session_key: str | None) -> bytes | None:
        if session_key is None:
            if self._session_id is not None or not self.session_key:
                return self._session_id
            session_key = self.session_key
        try:
            opened = self._engine.cookie.codec.open(
                session_key, purpose=settings.SESSION_COOKIE_NAME, now=int(time.time())
            )
        except InvalidMessage:
            return None
        return opened.payload if len(opened.payload) == SESSION_ID_BYTES else None

    def exists(self, session_key: str) -> bool:
        """Always false: keys are sealed 256-bit ids (or data), never guessed or reused."""
        return False

    async def aexists(self, session_key: str) -> bool:
        """Async :meth:`exists`."""
        return False

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: cookies carry their expiry, and stores expire records by TTL."""

    @classmethod
    async def aclear_expired(cls) -> None:
        """Async :meth:`clear_expired`."""
