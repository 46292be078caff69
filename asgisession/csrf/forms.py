"""Reading a form body up to its token field, and handing the body on intact.

Rules, stated once:

1. The body is fed, as it arrives, to a scanner (``fields.py``) for the token field. A body
   of up to ``_SPILL_AT`` bytes is read whole; a longer one only until the end of the first
   field of that name. The bytes read are held in memory up to ``_SPILL_AT``, then in a
   temporary file (plain synchronous writes of one ``receive`` chunk each; no thread, no
   event-loop call, so it runs the same on asyncio and Trio). A form with no such field in
   its first ``max_body_size`` bytes is refused (the middleware answers 413). A client that
   disconnects ends the request quietly.
2. The app then receives the bytes read so far (in chunks of at most ``_CHUNK``), and after
   them the rest of the body straight from the server. The rest is still scanned as it
   passes: a second occurrence of the field makes the request ambiguous after the fact
   (:attr:`_BodyReader.refused_late`), and the app's ``receive`` gets ``http.disconnect``.

3. Reading ahead has a time budget: with ``idle_timeout``, a body whose next message does
   not arrive within it (between ``idle_timeout`` and ``idle_timeout * 1.125`` seconds after
   the last one) is cut off (:class:`_Stalled`; the middleware answers 408). ASGI servers
   have no body timeout of their own, so without it a stalled client holds its buffer for
   as long as it keeps the connection open. Once the app reads, the app's own rules apply.
4. Memory: many small messages are joined into the one buffer as they arrive (never kept
   as objects of their own), so what a reader holds in memory is the bytes read, at most
   ``_SPILL_AT``; how many readers exist at once is the middleware's bound
   (``max_buffered_bodies``), reported to it through ``on_close``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from typing import IO

import anyio

from .._types import Message, Receive
from .fields import _Scanner

__all__: list[str] = []

#: Bytes held in memory before the body read ahead of the token goes to a temporary file.
_SPILL_AT = 256 * 1024
#: The largest message the replay hands the app.
_CHUNK = 64 * 1024


class _TooLarge(Exception):
    """No token within ``max_body_size`` bytes of form body; the middleware answers 413."""


class _Disconnected(Exception):
    """The client left before the token was found; nobody is left to answer."""


class _Stalled(Exception):
    """No body message within ``idle_timeout`` while reading ahead; the middleware answers 408."""

    def __init__(self, read: int) -> None:
        super().__init__(read)
        #: Bytes of body that had arrived.
        self.read = read


class _BodyReader:
    """Reads a form body up to its first token field, then replays it to the app.

    :meth:`read` stops at the first occurrence of the field (or the end of the body);
    :meth:`receive` is what the app calls instead of the server's ``receive``.
    """

    def __init__(
        self,
        receive: Receive,
        scanner: _Scanner,
        max_body: int,
        idle_timeout: float | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._receive = receive
        self.scanner = scanner
        self._max_body = max_body
        self._idle_timeout = idle_timeout
        self._on_close = on_close
        # closed by close(), which the middleware calls when the request ends
        self._held: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPILL_AT)  # noqa: SIM115
        self._size = 0
        self._ended = False  # the server sent the last body message
        self._replaying = True
        #: Set when a repeat of the field shows up after the app started: its ``receive``
        #: then answers ``http.disconnect`` and the middleware refuses the request.
        self.refused_late = False
        #: Called once when that happens (the middleware sends its 403 there if it can).
        self.on_refused_late: Callable[[], Awaitable[None]] | None = None

    async def read(self) -> None:
        """Read until the field appears, the body ends or the parse fails.

        :raises _TooLarge: ``max_body_size`` bytes read and no field yet.
        :raises _Disconnected: the client left first.
        :raises _Stalled: no message within ``idle_timeout`` (rule 3).
        """
        timeout = self._idle_timeout
        if timeout is None:
            await self._read_ahead(None, 0.0)
        else:
            # One cancel scope for the whole read, its deadline moved on at most every
            # eighth of the timeout: a scope per message would cost more than the message.
            slack = timeout / 8
            with anyio.CancelScope(deadline=anyio.current_time() + timeout + slack) as scope:
                await self._read_ahead(scope, slack)
            if scope.cancelled_caught:
                raise _Stalled(self._size)
        self._held.seek(0)

    async def _read_ahead(self, scope: anyio.CancelScope | None, slack: float) -> None:
        scanner = self.scanner
        armed = anyio.current_time() if scope is not None else 0.0
        while True:
            message = await self._receive()
            if scope is not None:
                now = anyio.current_time()
                if now - armed > slack:
                    armed = now
                    scope.deadline = now + slack * 9  # timeout + slack
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk: bytes = message.get("body", b"")
            self._size += len(chunk)
            self._held.write(chunk)
            scanner.feed(chunk)
            if not message.get("more_body", False):
                self._ended = True
                scanner.finish()
                break
            found = scanner.found
            if scanner.malformed or len(found) > 1 or None in found:
                break  # refused whatever follows
            if found and self._size >= _SPILL_AT:
                break  # a large body: the rest streams to the app, watched for repeats
            if not found and self._size > self._max_body:
                raise _TooLarge

    async def receive(self) -> Message:
        """The body read so far, then the server's messages, parsed as they pass."""
        if self.refused_late:
            return {"type": "http.disconnect"}
        if self._replaying:
            chunk = self._held.read(_CHUNK)
            more = self._held.tell() < self._size or not self._ended
            if self._held.tell() >= self._size:
                self.close()
            if chunk or not more:
                return {"type": "http.request", "body": chunk, "more_body": more}
        message = await self._receive()
        if message["type"] == "http.request" and not self._ended:
            self._ended = not message.get("more_body", False)
            seen = len(self.scanner.found)
            self.scanner.feed(message.get("body", b""))
            if self._ended:
                self.scanner.finish()
            if len(self.scanner.found) > seen:
                self.refused_late = True
                if self.on_refused_late is not None:
                    await self.on_refused_late()
                return {"type": "http.disconnect"}
        return message

    def close(self) -> None:
        """Drop the bytes held (and the temporary file, if any); tell ``on_close`` once."""
        self._replaying = False
        self._held.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()
