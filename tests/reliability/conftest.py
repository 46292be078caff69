"""Every test under tests/reliability/ carries the ``reliability`` marker (``-m reliability``).

The fixtures for slowness, on loopback only, are closed after each test that asks for them:

* ``latency_proxy``: ``await latency_proxy(port, latency)`` starts a
  :class:`~tests.reliability.latency.LatencyProxy` to ``port`` in the test's event loop.
* ``stalled_uploads``: ``await stalled_uploads(port, path, size, sent)`` starts a
  :func:`~tests.reliability.slowclients.stalled_upload`; every one is closed at the end.

Both are asyncio streams: a module using them pins ``anyio_backend`` to asyncio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from .latency import LatencyProxy
from .slowclients import Stalled, stalled_upload

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the items collected from this directory; other tests are left as they are."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
async def latency_proxy() -> AsyncIterator[Callable[[int, float], Awaitable[LatencyProxy]]]:
    """Starts latency proxies to a port; all are closed after the test."""
    async with AsyncExitStack() as stack:

        async def start(upstream_port: int, latency: float = 0.0) -> LatencyProxy:
            proxy = LatencyProxy(upstream_port, latency=latency)
            return await stack.enter_async_context(proxy)

        yield start


@pytest.fixture
async def stalled_uploads() -> AsyncIterator[Callable[[int, str, int, int], Awaitable[Stalled]]]:
    """Starts uploads that stall; all are closed after the test."""
    started: list[Stalled] = []

    async def start(port: int, path: str, size: int, sent: int) -> Stalled:
        upload = await stalled_upload(port, path, size, sent)
        started.append(upload)
        return upload

    try:
        yield start
    finally:
        for upload in started:
            await upload.close()
