"""Slow HTTP clients over real loopback sockets: stalled uploads and uploads in tiny pieces.

What a misbehaving client (or a slowloris) does to a server that reads request bodies:

* :func:`stalled_upload` sends a request's headers and part of its body, then nothing: the
  connection stays open until the test closes it (or the server gives up and answers).
* :func:`trickled_upload` sends a whole body in ``chunk``-byte writes, each its own TCP
  segment (``TCP_NODELAY``), so the server reads it in many small pieces.

And :func:`rss_bytes`, the resident memory of a (server) process, from ``/proc``.

Every loop here is bounded: by the bytes to send, and by ``seconds`` for anything that waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ..servers import LOOPBACK

FORM = b"application/x-www-form-urlencoded"


def rss_bytes(pid: int) -> int:
    """The resident set size of process ``pid`` (``VmRSS`` of ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def request_head(port: int, path: str, length: int, content_type: bytes = FORM) -> bytes:
    """A POST's request line and headers, for a body of ``length`` bytes."""
    return (
        b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nOrigin: http://%s:%d\r\n"
        b"Content-Type: %s\r\nContent-Length: %d\r\n\r\n"
        % (path.encode(), LOOPBACK.encode(), port, LOOPBACK.encode(), port, content_type, length)
    )


def form_body(size: int) -> bytes:
    """A urlencoded form of ``size`` bytes with no token field: the reader reads it all."""
    return b"a=" + b"b" * (size - 2)


@dataclass
class Stalled:
    """An upload that stopped sending: its connection, and what the server answered, if any."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def status(self, seconds: float) -> int | None:
        """The response's status code if one arrives within ``seconds``; ``None`` otherwise."""
        try:
            line = await asyncio.wait_for(self.reader.readline(), seconds)
        except (asyncio.TimeoutError, TimeoutError, ConnectionError):  # distinct on 3.10
            return None
        return int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else None

    async def head(self, seconds: float) -> bytes:
        """The response's status line and headers (empty when none arrives within ``seconds``)."""
        with contextlib.suppress(
            asyncio.TimeoutError, TimeoutError, ConnectionError, asyncio.IncompleteReadError
        ):
            return await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), seconds)
        return b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def stalled_upload(port: int, path: str, size: int, sent: int) -> Stalled:
    """Start a POST of a ``size``-byte form, send its first ``sent`` body bytes, then stall."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(request_head(port, path, size) + form_body(size)[:sent])
    await writer.drain()
    return Stalled(reader, writer)


async def trickled_upload(
    port: int, path: str, body: bytes, *, chunk: int = 2, seconds: float = 30.0
) -> int:
    """POST ``body`` in ``chunk``-byte segments; the response's status code.

    Runs the socket in a thread (plain blocking sends), so the event loop of the caller is not
    busy with half a million writes. Fails when it takes longer than ``seconds``.
    """

    def send_all() -> int:
        with socket.create_connection((LOOPBACK, port), timeout=seconds) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(request_head(port, path, len(body)))
            deadline = time.monotonic() + seconds
            for start in range(0, len(body), chunk):
                sock.sendall(body[start : start + chunk])
                if start % 4096 == 0 and time.monotonic() > deadline:
                    raise AssertionError(f"a trickled upload took over {seconds} s")
            reply = sock.recv(4096)
            return int(reply.split()[1])

    return await asyncio.to_thread(send_all)
