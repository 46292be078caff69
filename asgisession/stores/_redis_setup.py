"""Making a Redis connection off the clock of the call that asked for it.

A new redis-py connection is set up inside the first command that needs it: the TCP
connect, then the TLS handshake (``rediss://``), then the commands of redis-py's handshake
(``AUTH``, ``SELECT``; with RESP3, ``HELLO`` and a maintenance-notifications command; with
driver info, ``CLIENT SETINFO``), each a round trip. On a slow network that can use up the
whole budget of the call, and redis-py closes a connection whose setup was cancelled. So
while the store was slow every call that needed a connection paid for a setup that never
finished, and the pool could not grow.

Two things change that, for the clients :meth:`RedisStore.from_url
<asgisession.stores.redis.RedisStore.from_url>` builds:

* its defaults send nothing before the first command (RESP2, no ``CLIENT SETINFO``), so a
  fresh connection to database 0 without a password costs the TCP connect only;
* the pool's connections are of a class made by :func:`setup_off_the_clock`, whose
  ``connect()`` runs in a task of its own. The call that asked for it waits for it within
  its own deadline, as before; when that deadline cuts the call off, the setup goes on, and
  the finished connection waits in the pool for the next call. The setup stays bounded by
  the client's ``socket_connect_timeout`` and ``socket_timeout`` (the store's ``timeout``
  unless given), and closing the connection (or the store) cancels it.

A command whose reply was not read when its deadline passed still closes its connection:
that reply would otherwise be read as the answer to the next command.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio.connection import AbstractConnection

__all__ = ["setup_off_the_clock"]


class _SetupOffTheClock(AbstractConnection):
    """Runs ``connect()`` in a task of its own, which outlives a caller that gave up."""

    _setup: asyncio.Future[None] | None = None

    async def connect(self) -> None:
        setup = self._setup
        if setup is None:
            if self.is_connected:
                return
            setup = self._setup = asyncio.ensure_future(super().connect())  # type: ignore[no-untyped-call]
            setup.add_done_callback(self._setup_done)
        # Another caller that finds this connection in the pool while its setup still runs
        # (the one that started it gave up) waits for the same setup.
        await asyncio.shield(setup)

    def _setup_done(self, setup: asyncio.Future[None]) -> None:
        self._setup = None
        if not setup.cancelled():
            # Raised in the caller still waiting, if any; with none, nobody needs it.
            setup.exception()

    async def disconnect(self, *args: Any, **kwargs: Any) -> None:
        setup = self._setup
        # redis-py's own setup calls disconnect() when a try fails: not a reason to stop.
        if setup is not None and setup is not asyncio.current_task():
            setup.cancel()
        await super().disconnect(*args, **kwargs)


_classes: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def setup_off_the_clock(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """``connection_class`` (TCP, TLS or Unix socket), setting itself up off the caller's clock."""
    made = _classes.get(connection_class)
    if made is None:
        name = f"{connection_class.__name__}SetUpOffTheClock"
        made = type(name, (_SetupOffTheClock, connection_class), {"__slots__": ()})
        _classes[connection_class] = made
    return made
