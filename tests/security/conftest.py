"""The every-store fixtures (``make_app`` over the cookie store and each real server store)."""

from __future__ import annotations

from tests.test_every_store import (  # noqa: F401  (fixtures, registered by import)
    every_store_cluster,
    make_app,
    memcached_proc,
    redis_proc,
)
