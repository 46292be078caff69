# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""Slow clients against CSRFMiddleware's form reader, served by uvicorn over real sockets.

uvicorn runs in a child process (so its resident memory, ``VmRSS``, is the server's alone)
serving an app that reads the whole body, behind CSRFMiddleware and SessionMiddleware. The
clients post forms without a token header, so the middleware reads each body looking for
the token field:

* ``STALLED`` uploads of 1 MB that stall after ``SENT`` bytes (just under the 256 KiB the
  reader holds in memory). The middleware reads at most ``MAX_BODIES`` at once; the others
  get 503 with ``Retry-After`` at once. The ones read get 408 once ``BODY_TIMEOUT`` passed
  without a byte. The same uploads sent to a path the app answers without reading (in a
  server of its own) measure what uvicorn itself holds per stalled connection; the
  middleware may add at most its bound (``MAX_BODIES`` buffers) to that.
* One upload of ``TRICKLE`` bytes in 2-byte segments: its memory stays a small multiple of
  the body, not an object per segment.

Sizes and timeouts are small enough that the module runs in seconds; the figures go to
``build/reliability/slow-clients.json``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from .app import CSRF_ENV
from .serving import uvicorn_process, write_results
from .slowclients import FORM, Stalled, form_body, rss_bytes, trickled_upload

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: the slow clients are asyncio streams (and a thread) in the test's loop."""
    return "asyncio"


STALLED = 200
SIZE = 1024 * 1024
#: Bytes each stalled upload sends: just under what the reader holds in memory (256 KiB).
SENT = 250 * 1024
MAX_BODIES = 10
BODY_TIMEOUT = 2.0
TRICKLE = 256 * 1024
MB = 1024 * 1024
#: The reader's in-memory limit (forms._SPILL_AT), for the bound on what it may hold.
HELD = 256 * 1024


@contextmanager
def server(log: Path) -> Iterator[tuple[int, int]]:
    """uvicorn in a child process, serving the app of the module docstring: port and pid."""
    options = {
        "body_timeout": BODY_TIMEOUT, "max_buffered_bodies": MAX_BODIES, "exempt": ["/unread"]
    }  # fmt: skip
    env = {"SECRET_KEY_BASE": secrets.token_hex(32), CSRF_ENV: json.dumps(options)}
    factory = "tests.reliability.app:csrf_app_from_env"
    with uvicorn_process(factory, env, log) as (base_url, process):
        yield int(base_url.rsplit(":", 1)[1]), process.pid


async def settled_rss(pid: int, seconds: float = 3.0) -> int:
    """The process's RSS once it stops growing (two reads 0.2 s apart within 1%), bounded."""
    deadline = time.monotonic() + seconds
    last = rss_bytes(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now = rss_bytes(pid)
        if abs(now - last) <= last // 100:
            return now
        last = now
    return last


async def warmed(port: int, pid: int) -> int:
    """One ordinary form read whole (and refused: no token), then the settled RSS."""
    async with httpx.AsyncClient() as client:
        headers = {"content-type": FORM.decode(), "origin": f"http://127.0.0.1:{port}"}
        url = f"http://127.0.0.1:{port}/form"
        response = await client.post(url, content=form_body(SIZE), headers=headers)
        assert 403 == response.status_code
    return await settled_rss(pid)


async def test_stalled_uploads_are_bounded_in_number_time_and_memory(
    tmp_path: Path, stalled_uploads: Callable[[int, str, int, int], Awaitable[Stalled]]
) -> None:
    with server(tmp_path / "unread.log") as (port, pid):
        before = await warmed(port, pid)
        uploads = [await stalled_uploads(port, "/unread", SIZE, SENT) for _ in range(STALLED)]
        server_own = await settled_rss(pid) - before
        for upload in uploads:
            await upload.close()

    with server(tmp_path / "form.log") as (port, pid):
        before = await warmed(port, pid)
        began = time.monotonic()
        uploads = [await stalled_uploads(port, "/form", SIZE, SENT) for _ in range(STALLED)]
        during = await settled_rss(pid)
        # Over the bound: refused at once, with Retry-After.
        heads = await asyncio.gather(*(upload.head(BODY_TIMEOUT / 2) for upload in uploads))
        refused = [head for head in heads if head.startswith(b"HTTP/1.1 503 ")]
        assert STALLED - MAX_BODIES == len(refused)
        assert all(b"\r\nretry-after: 5\r\n" in head.lower() for head in refused)
        # The ones read: 408 once BODY_TIMEOUT passed without a byte.
        waiting = [upload for upload, head in zip(uploads, heads, strict=True) if not head]
        statuses = await asyncio.gather(*(upload.status(BODY_TIMEOUT * 3) for upload in waiting))
        cut_off_after = time.monotonic() - began
        assert [408] * MAX_BODIES == statuses
        for upload in uploads:
            await upload.close()
        after = await settled_rss(pid)
        # A trickled upload: many tiny segments cost a small multiple of the body.
        trickle_before = await settled_rss(pid)
        assert 403 == await trickled_upload(port, "/form", form_body(TRICKLE), chunk=2)
        trickle_growth = rss_bytes(pid) - trickle_before

    figures = {
        "stalled": STALLED, "size": SIZE, "sent": SENT, "max_buffered_bodies": MAX_BODIES,
        "body_timeout_s": BODY_TIMEOUT, "server_own_growth_mb": round(server_own / MB, 1),
        "rss_before_mb": round(before / MB, 1), "rss_during_mb": round(during / MB, 1),
        "rss_after_mb": round(after / MB, 1), "cut_off_after_s": round(cut_off_after, 2),
        "trickle_bytes": TRICKLE, "trickle_rss_growth_mb": round(trickle_growth / MB, 1),
    }  # fmt: skip
    write_results("slow-clients", figures)
    print(f"\nslow clients {figures}")
    # What the middleware adds to uvicorn's own cost: at most its bound of buffers (twice
    # over, for the allocator), and a few MB of noise.
    assert during - before < server_own + 2 * MAX_BODIES * HELD + 6 * MB, figures
    assert cut_off_after < BODY_TIMEOUT * 3, figures
    assert trickle_growth < 4 * TRICKLE + 2 * MB, figures
