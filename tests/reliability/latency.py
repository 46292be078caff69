"""A loopback TCP proxy that adds latency to every reply and counts round trips.

Unlike :meth:`FaultProxy.delay <tests.faultproxy.FaultProxy.delay>`, which sleeps in the
relay (so a second reply queued behind a first one waits twice), each chunk from the server
here is delivered ``latency`` seconds after it *arrived*: a network with that much one-way
delay, which replies still cross in order. Requests pass at once.

A round trip is counted each time the client sends after a reply reached it (and for its
first send): commands sent without waiting for each other's replies (pipelined) are one
round trip, as they would cost one on a real network. So a test can tell how many times a
store client waits for the network before its first command is answered::

    async with LatencyProxy(server.port, latency=1.0) as proxy:
        store = RedisStore.from_url(f"redis://127.0.0.1:{proxy.port}/0")
        await store.load("k")
        assert 1 == proxy.round_trips

The proxy runs in the event loop that starts it (the client's loop). Every connection's
tasks end when it closes or the proxy closes; nothing here loops without a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from ..faultproxy import LOOPBACK, reset

__all__ = ["LatencyProxy"]


@dataclass(eq=False)
class _Conn:
    """One proxied connection, and whether a reply reached its client since it last sent."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    answered: bool = True
    round_trips: int = 0


@dataclass(eq=False)
class LatencyProxy:
    """A TCP proxy from a free loopback port to ``upstream_port``, replies ``latency`` s late."""

    upstream_port: int
    latency: float = 0.0
    upstream_host: str = LOOPBACK
    #: The port clients connect to; set by :meth:`start`.
    port: int = 0
    #: Connections accepted so far.
    connections: int = 0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _server: asyncio.Server | None = None
    _conns: list[_Conn] = field(default_factory=list)

    @property
    def round_trips(self) -> int:
        """Round trips over every connection so far (see the module docstring)."""
        return sum(conn.round_trips for conn in self._conns)

    def round_trips_per_connection(self) -> list[int]:
        """Round trips of each connection, in the order they were accepted."""
        return [conn.round_trips for conn in self._conns]

    def reset_counts(self) -> None:
        """Forget the round trips counted so far (open connections keep being counted)."""
        for conn in self._conns:
            conn.round_trips = 0

    async def start(self) -> LatencyProxy:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        """Stop listening, reset every connection and wait for the proxy's tasks to end."""
        if self._server is not None:
            self._server.close()
        for conn in self._conns:
            reset(conn.client)
            if conn.server is not None:
                reset(conn.server)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> LatencyProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _task(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        self.connections += 1
        conn = _Conn(writer)
        self._conns.append(conn)
        try:
            try:
                up_reader, conn.server = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port
                )
            except OSError:
                reset(writer)
                return
            await asyncio.gather(
                self._task(self._requests(reader, conn.server, conn)),
                self._task(self._replies(up_reader, writer, conn)),
            )
        except asyncio.CancelledError:
            pass  # aclose()
        finally:
            writer.close()
            if conn.server is not None:
                conn.server.close()

    async def _requests(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, conn: _Conn
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                if conn.answered:
                    conn.answered = False
                    conn.round_trips += 1
                sink.write(data)
                await sink.drain()
            if sink.can_write_eof():
                sink.write_eof()

    async def _replies(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, conn: _Conn
    ) -> None:
        loop = asyncio.get_running_loop()
        due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            with contextlib.suppress(OSError):
                while True:
                    at, data = await due.get()
                    if not data:
                        break
                    await asyncio.sleep(max(0.0, at - loop.time()))
                    sink.write(data)
                    conn.answered = True
                    await sink.drain()
                if sink.can_write_eof():
                    sink.write_eof()

        delivering = self._task(deliver())
        try:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    due.put_nowait((loop.time() + self.latency, data))
        finally:
            due.put_nowait((loop.time() + self.latency, b""))
            await delivering
