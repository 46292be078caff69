# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""examples/raw_asgi_app.py: a raw ASGI app reading and writing scope["session"]."""

from __future__ import annotations

import pytest

from examples import raw_asgi_app

from .contract import STORES, check_contract, wrap

pytestmark = pytest.mark.integration


@pytest.mark.anyio
@pytest.mark.parametrize("store", STORES)
async def test_contract(secret: str, store: str) -> None:
    await check_contract(wrap(raw_asgi_app.app, secret, store), server_side=store != "cookie")


@pytest.mark.anyio
async def test_create_app_serves_the_contract(secret: str) -> None:
    """The example's own factory (SessionMiddleware around CSRFMiddleware) passes too."""
    await check_contract(raw_asgi_app.create_app(secret), server_side=False)
