"""Opening a session outside a request, through :class:`~asgisession.sessions.Sessions`.

:func:`open_session` is the one place the command line reads a session's data. It opens
the cookie value with the public API that embedding servers use, built from the same
settings the app gives :class:`~asgisession.middleware.SessionMiddleware`, so ``inspect``
sees exactly what the middleware would (the same size check, seal, idle timeout, record
binding and serializer), and never a copy of their decoding. It loads read-only: nothing
is ever written back, not even a refreshed cookie.
"""

from __future__ import annotations

from ..crypto import CookieFormat, Keyring
from ..session import Session
from ..sessions import SessionInfo, Sessions
from ..stores.base import Store

__all__ = ["open_session"]


async def open_session(
    value: str,
    *,
    keyring: Keyring,
    cookie_format: CookieFormat,
    cookie_name: str,
    now: int,
    idle_timeout: int | None = None,
    store: Store | None = None,
) -> tuple[Session, SessionInfo]:
    """The session one cookie value opens to, as the middleware would load it, and its info.

    Without ``store``, as the cookie store; with one, as a server-side session (the sealed
    id is looked up there). A refused value gives an empty session whose ``rejection``
    says why.

    :raises ConfigurationError: when ``cookie_name`` is no valid cookie name.
    :raises StoreUnavailable: when the store does not answer.
    """
    sessions = Sessions(
        secret_key_base=keyring,
        cookie_format=cookie_format,
        cookie_name=cookie_name,
        idle_timeout=idle_timeout,
        store=store,
        clock=lambda: now,
    )
    session = await sessions.load(cookie=value, read_only=True)
    return session, sessions.info(session)
