"""What the Django engine's settings make, and the event loop its store calls run on.

Apart from :mod:`.django_engine` so that it reads as the session backend Django calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from functools import lru_cache
from typing import Any, TypeVar

from django.conf import settings

from ..backends.cookie import CookieBackend
from ..backends.server import ServerBackend
from ..cookies import CookieOptions
from ..crypto import Keyring
from ..errors import ConfigurationError
from ..formats import resolve_format
from ..stores import from_url
from ..stores.base import Store

__all__ = ["LOOP", "Engine", "StoreLoop", "engine"]

T = TypeVar("T")


class StoreLoop:
    """One event loop in a daemon thread, where every store call of the engine runs.

    Store clients (Redis, Memcached) are asyncio clients bound to one loop, and Django calls
    the engine from threads with no loop (WSGI) or worker threads of the server's loop.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="asgisession-django", daemon=True
                ).start()
                self._loop = loop
            return self._loop

    def run(self, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``call()`` there and wait for it (from a thread other than that loop's)."""
        return asyncio.run_coroutine_threadsafe(call(), self._get()).result()

    def arun(self, call: Callable[[], Coroutine[Any, Any, T]]) -> Awaitable[T]:
        """Run ``call()`` there; await the result from any event loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), self._get()))


#: The loop every store call of the engine runs on.
LOOP = StoreLoop()


class Engine:
    """What the settings make: the backend that opens cookies, and the store, if any."""

    def __init__(
        self,
        secret: str | tuple[str, ...],
        store: Store | str | None,
        cookie_format: str,
        user_key: str | None = None,
    ) -> None:
        keyring = Keyring(list(secret) if isinstance(secret, tuple) else secret)
        codec = resolve_format(cookie_format).session_codec(keyring)
        self.age: int = int(settings.SESSION_COOKIE_AGE)
        options = CookieOptions(name=settings.SESSION_COOKIE_NAME, max_age=None)
        self.cookie = CookieBackend(codec, options, lifetime=self.age)
        self.server: ServerBackend | None = None
        if store is not None:
            if isinstance(store, str):
                store = from_url(store)
            self.server = ServerBackend(store, codec, options, lifetime=self.age, user_key=user_key)
        elif user_key is not None:
            raise ConfigurationError(
                f"ASGISESSION_USER_KEY = {user_key!r} lists each user's sessions in the "
                "store to log them out everywhere: it needs ASGISESSION_STORE (Redis, "
                "SQLite or Memcached)."
            )

    def seal(self, payload: bytes, expires_at: int, now: int) -> str:
        purpose = self.cookie.cookie.name
        return self.cookie.codec.seal(
            payload, purpose=purpose, issued_at=now, expires_at=expires_at
        )


@lru_cache(maxsize=8)
def _engine_for(
    secret: str | tuple[str, ...],
    store: Store | str | None,
    fmt: str,
    user_key: str | None,
    name: str,
    age: int,
) -> Engine:
    return Engine(secret, store, fmt, user_key)


def engine() -> Engine:
    """The engine the current settings make (made once per distinct settings)."""
    secret = getattr(settings, "ASGISESSION_SECRET_KEY_BASE", None)
    if not secret:
        raise ConfigurationError(
            "SESSION_ENGINE 'asgisession.integrations.django' needs "
            "ASGISESSION_SECRET_KEY_BASE in settings (python -m asgisession secret makes one)."
        )
    if isinstance(secret, list):
        secret = tuple(secret)
    store = getattr(settings, "ASGISESSION_STORE", None)
    fmt = getattr(settings, "ASGISESSION_COOKIE_FORMAT", "encrypted")
    user_key = getattr(settings, "ASGISESSION_USER_KEY", None)
    name, age = settings.SESSION_COOKIE_NAME, int(settings.SESSION_COOKIE_AGE)
    return _engine_for(secret, store, fmt, user_key, name, age)
