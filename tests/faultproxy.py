"""A loopback TCP proxy that produces network faults for real, between an app and its store.

Put it between a store client and its server (redis-server, memcached) and switch faults on
and off while requests run::

    async with FaultProxy(server.port) as proxy:
        store = RedisStore.from_url(f"redis://127.0.0.1:{proxy.port}/0")
        proxy.blackhole()     # bytes stop in the proxy, both ways; nothing is answered
        proxy.heal()          # held bytes flow on, late, in order (as TCP would deliver them)

Faults, each until :meth:`FaultProxy.heal` (or the next fault):

* :meth:`~FaultProxy.cut`: every open connection is reset (RST) at once, and new ones are
  reset as soon as they are accepted.
* :meth:`~FaultProxy.blackhole`: a stall. Connections stay open but no byte gets through in
  either direction; on heal, what was held is delivered, so a reply can arrive long after
  its client gave up on it.
* :meth:`~FaultProxy.delay`: every chunk from the server reaches the client ``seconds``
  late (requests pass at once). Chunks held when the proxy heals still arrive late.
* :meth:`~FaultProxy.reset_mid_reply`: the next chunk from the server on each connection is
  cut in half: its first half is delivered, then both sides are reset.

The proxy runs in the event loop that starts it, which must be the loop of the client whose
connections it carries. :attr:`FaultProxy.tasks` holds its own tasks, so a test can tell
them apart when it looks for tasks left hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

LOOPBACK = "127.0.0.1"

Mode = Literal["pass", "cut", "blackhole", "delay", "reset"]


def reset(writer: asyncio.StreamWriter) -> None:
    """Close ``writer``'s socket with an RST rather than a FIN (SO_LINGER with zero timeout)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's side and the server's side."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    closed: bool = False

    def reset(self) -> None:
        self.closed = True
        reset(self.client)
        if self.server is not None:
            reset(self.server)


@dataclass(eq=False)
class FaultProxy:
    """A TCP proxy from a free loopback port to ``upstream_port``, with switchable faults."""

    upstream_port: int
    upstream_host: str = LOOPBACK
    #: The port clients connect to; set by :meth:`start`.
    port: int = 0
    #: Connections accepted so far.
    connections: int = 0
    #: Chunks that got through in each direction, for tests that want to see traffic.
    chunks_to_server: int = 0
    chunks_to_client: int = 0
    #: The proxy's own tasks (one per connection, and its pumps).
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _mode: Mode = "pass"
    _delay: float = 0.0
    _server: asyncio.Server | None = None
    _links: set[_Link] = field(default_factory=set)
    _flowing: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._flowing.set()

    @property
    def mode(self) -> Mode:
        """The fault now in force (``"pass"`` when none)."""
        return self._mode

    # -- faults -------------------------------------------------------------------------

    def heal(self) -> None:
        """Stop the fault: new bytes pass at once and held ones flow on."""
        self._mode = "pass"
        self._flowing.set()

    def cut(self) -> None:
        """Reset every open connection now, and every new one until healed."""
        self._switch("cut")
        for link in list(self._links):
            link.reset()

    def blackhole(self) -> None:
        """Hold every byte, both ways, on open and new connections, until healed."""
        self._switch("blackhole")

    def delay(self, seconds: float) -> None:
        """Deliver every chunk from the server ``seconds`` late, until healed."""
        self._switch("delay")
        self._delay = seconds

    def reset_mid_reply(self) -> None:
        """Deliver half of the next chunk from the server on each connection, then reset it."""
        self._switch("reset")

    def _switch(self, mode: Mode) -> None:
        self._mode = mode
        if mode == "blackhole":
            self._flowing.clear()
        else:
            self._flowing.set()

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> FaultProxy:
        """Listen on a free loopback port (:attr:`port`)."""
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        """Stop listening, reset every connection and wait for the proxy's tasks to end."""
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.reset()
        self._flowing.set()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- relaying -----------------------------------------------------------------------

    def _own(self, task: asyncio.Task[Any] | None = None) -> None:
        task = task or asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _task(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine)
        self._own(task)
        return task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._own()
        self.connections += 1
        link = _Link(writer)
        if self._mode == "cut":
            link.reset()
            return
        self._links.add(link)
        try:
            try:
                up_reader, link.server = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port
                )
            except OSError:  # the server is down: the client sees its connection reset
                link.reset()
                return
            if link.closed:  # cut while connecting
                link.reset()
                return
            await asyncio.gather(
                self._task(self._pump(reader, link.server, link, to_client=False)),
                self._task(self._pump(up_reader, writer, link, to_client=True)),
            )
        except asyncio.CancelledError:
            pass  # aclose(); a cancelled connection callback would be logged as an error
        finally:
            self._links.discard(link)
            if not link.closed:
                link.closed = True
                writer.close()
                if link.server is not None:
                    link.server.close()

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        link: _Link,
        *,
        to_client: bool,
    ) -> None:
        try:
            while data := await source.read(65536):
                await self._flowing.wait()  # blackhole: hold until healed
                if link.closed:
                    return
                if to_client and self._mode == "delay":
                    await asyncio.sleep(self._delay)
                if to_client and self._mode == "reset":
                    sink.write(data[: len(data) // 2])
                    with contextlib.suppress(OSError):
                        await sink.drain()
                    link.reset()
                    return
                sink.write(data)
                await sink.drain()
                if to_client:
                    self.chunks_to_client += 1
                else:
                    self.chunks_to_server += 1
            # EOF from one side: pass the half-close on, as TCP would.
            if not link.closed and sink.can_write_eof():
                sink.write_eof()
        except OSError:
            link.reset()
