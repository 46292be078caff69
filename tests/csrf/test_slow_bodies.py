# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""CSRFMiddleware's budgets for reading a form body ahead of the app: time without
progress (``body_timeout``), bodies read at once (``max_buffered_bodies``), and memory for
bodies that come in tiny pieces. On asyncio and Trio; served over real sockets in
tests/reliability/test_slow_clients.py.
"""

from __future__ import annotations

import logging
import secrets
import tracemalloc
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from asgisession import ConfigurationError, CSRFMiddleware
from asgisession._types import Message, Scope
from asgisession.csrf import mask_token

from .helpers import FORM, Handler, request_scope

pytestmark = pytest.mark.anyio

FORM_HEADERS = [(b"content-type", FORM.encode())]


class Sent:
    """The messages an app sent, and a ``send`` that records them."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int | None:
        return self.messages[0]["status"] if self.messages else None

    def header(self, name: bytes) -> bytes | None:
        return dict(self.messages[0]["headers"]).get(name) if self.messages else None


def receiving(messages: Sequence[Message], *, pause: float = 0.0, then_stall: bool = True) -> Any:
    """A ``receive`` giving ``messages`` ``pause`` seconds apart, then waiting forever."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            await anyio.sleep(pause)
            return queue.pop(0)
        if then_stall:
            await anyio.sleep_forever()
        return {"type": "http.disconnect"}

    return receive


def part(body: bytes, more: bool = True) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


async def serve(app: CSRFMiddleware, scope: Scope, receive: Any) -> Sent:
    sent = Sent()
    with anyio.fail_after(10):  # a bound on the test itself
        await app(scope, receive, sent.send)
    return sent


async def test_a_stalled_body_gets_408_after_body_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No message for body_timeout seconds: 408 naming the option, logged, counted."""
    handler = Handler()
    app = CSRFMiddleware(handler, body_timeout=0.2)
    caplog.set_level(logging.WARNING, "asgisession.csrf")
    began = anyio.current_time()
    sent = await serve(app, request_scope(headers=FORM_HEADERS), receiving([part(b"a=1")]))
    took = anyio.current_time() - began
    assert 408 == sent.status
    assert b"body_timeout" in sent.messages[1]["body"]
    assert 0.2 <= took < 0.2 * 1.125 + 0.5
    assert 0 == handler.calls
    assert 1 == app.bodies_cut_off
    assert 0 == app._buffered  # the reader was let go
    [record] = [r for r in caplog.records if "answered 408" in r.getMessage()]
    assert logging.WARNING == record.levelno
    assert "POST /submit" in record.getMessage()
    assert "after 3 bytes" in record.getMessage()


async def test_a_slow_body_that_keeps_coming_is_read() -> None:
    """Messages closer together than body_timeout: read whole, however long in all."""
    raw = secrets.token_bytes(32)
    body = f"authenticity_token={mask_token(raw)}&x=".encode()
    messages = [part(body), *(part(b"1") for _ in range(7)), part(b"", more=False)]
    handler = Handler()
    app = CSRFMiddleware(handler, body_timeout=0.2)
    receive = receiving(messages, pause=0.05, then_stall=False)
    sent = await serve(app, request_scope(raw=raw, headers=FORM_HEADERS), receive)
    assert 200 == sent.status  # 0.4 s in all, twice the timeout
    assert [body + b"1" * 7] == handler.bodies
    assert 0 == app.bodies_cut_off


async def test_no_body_timeout_waits_for_the_client() -> None:
    """body_timeout=None: the reader waits as long as the client (here, until cancelled)."""
    app = CSRFMiddleware(Handler(), body_timeout=None)
    sent = Sent()
    with anyio.move_on_after(0.5) as scope:
        await app(request_scope(headers=FORM_HEADERS), receiving([part(b"a=1")]), sent.send)
    assert scope.cancelled_caught
    assert [] == sent.messages


async def test_bodies_over_the_bound_get_503_with_retry_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """max_buffered_bodies read at once; the next form is refused unread, until one ends."""
    app = CSRFMiddleware(Handler(), max_buffered_bodies=2, body_timeout=None)
    caplog.set_level(logging.WARNING, "asgisession.csrf")
    stalled: list[Sent] = [Sent(), Sent()]
    async with anyio.create_task_group() as group:
        for sent in stalled:
            scope = request_scope(headers=FORM_HEADERS)
            group.start_soon(app, scope, receiving([part(b"a=1")]), sent.send)
        await anyio.wait_all_tasks_blocked()
        assert 2 == app._buffered
        unread = receiving([])
        refused = await serve(app, request_scope(headers=FORM_HEADERS), unread)
        assert 503 == refused.status
        assert b"5" == refused.header(b"retry-after")
        assert b"max_buffered_bodies" in refused.messages[1]["body"]
        assert 1 == app.bodies_refused_busy
        # A request that needs no body is not counted, nor refused.
        token_free = request_scope(headers=[(b"content-type", b"application/json")])
        assert 403 == (await serve(app, token_free, receiving([part(b"{}", False)]))).status
        group.cancel_scope.cancel()
    assert 0 == app._buffered  # cancelled readers were let go too
    ended = await serve(app, request_scope(headers=FORM_HEADERS), receiving([part(b"a=1", False)]))
    assert 403 == ended.status  # read whole (no token): the bound no longer applies
    assert 0 == app._buffered
    assert any("answered 503" in r.getMessage() for r in caplog.records)


async def test_tiny_messages_are_joined_not_kept() -> None:
    """A 256 KiB body in 2-byte messages: the reader's memory stays near the body's bytes,
    never an object per message (131,072 of them: about 10 MB)."""
    size = 256 * 1024
    body = b"a=" + b"b" * (size - 2)
    position = 0

    async def receive() -> Message:
        nonlocal position
        chunk = body[position : position + 2]
        position += 2
        return part(chunk, position < size)

    app = CSRFMiddleware(Handler())
    tracemalloc.start()
    try:
        sent = await serve(app, request_scope(headers=FORM_HEADERS), receive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 403 == sent.status  # read whole, no token field
    assert peak < 1024 * 1024, peak


@pytest.mark.parametrize(
    "options",
    [
        {"body_timeout": 0},
        {"body_timeout": -1.0},
        {"body_timeout": float("inf")},
        {"body_timeout": True},
        {"body_timeout": "10"},
        {"max_buffered_bodies": 0},
        {"max_buffered_bodies": 1.5},
        {"max_buffered_bodies": True},
    ],
)
def test_bad_budgets_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        CSRFMiddleware(Handler(), **options)
