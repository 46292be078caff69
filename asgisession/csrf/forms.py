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

A stalled client holds the reader as long as it would hold the app: time limits on reading
a body are the server's (and issue 21's) job, not this module's.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from typing import IO

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


class _BodyReader:
    """Reads a form body up to its first token field, then replays it to the app.

    :meth:`read` stops at the first occurrence of the field (or the end of the body);
    :meth:`receive` is what the app calls instead of the server's ``receive``.
    """

    def __init__(self, receive: Receive, scanner: _Scanner, max_body: int) -> None:
        self._receive = receive
        self.scanner = scanner
        self._max_body = max_body
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
        """
        scanner = self.scanner
        while True:
            message = await self._receive()
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
        self._held.seek(0)

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
        """Drop the bytes held (and the temporary file, if any)."""
        self._replaying = False
        self._held.close()
