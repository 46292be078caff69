"""Opening a session outside a request, with the backends the middleware uses.

:func:`open_session` is the one place the command line reads a session's data: it hands
the cookie value to :class:`~asgisession.backends.cookie.CookieBackend` or, with a store,
:class:`~asgisession.backends.server.ServerBackend`, so ``inspect`` sees exactly what the
middleware would (the same size check, seal, idle timeout, record binding and
serializer), and never a copy of their decoding.
"""

from __future__ import annotations

from ..backends.cookie import CookieBackend
from ..backends.server import NAMESPACE, ServerBackend
from ..cookies import CookieOptions
from ..crypto import MessageCodec
from ..session import LoadedState
from ..stores.base import Store

__all__ = ["open_session"]


async def open_session(
    value: str,
    *,
    codec: MessageCodec,
    cookie_name: str,
    now: int,
    idle_timeout: int | None = None,
    store: Store | None = None,
    namespace: str = NAMESPACE,
) -> LoadedState:
    """The session one cookie value opens to, as the middleware would load it.

    Without ``store``, as the cookie store; with one, as a server-side session kept under
    ``namespace`` (a sealed id is looked up there). A refused value gives an empty state
    whose ``rejection`` says why.

    :raises ConfigurationError: when ``cookie_name`` is no valid cookie name.
    :raises StoreUnavailable: when the store does not answer.
    """
    cookie = CookieOptions(name=cookie_name)
    # lifetime only matters when a session is written, which never happens here
    backend: CookieBackend | ServerBackend
    if store is None:
        backend = CookieBackend(codec, cookie, lifetime=1, idle_timeout=idle_timeout)
    else:
        backend = ServerBackend(
            store, codec, cookie, lifetime=1, idle_timeout=idle_timeout, namespace=namespace
        )
    return await backend.load([value], now)
