# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""Runs usage.py, so the typed usage mypy checks is also code that works."""

from __future__ import annotations

import pytest
from starlette.requests import HTTPConnection

import examples.django_app  # noqa: F401 - configures Django's settings for DjangoSession
from asgisession import Session
from asgisession.session import LoadedState, control_of
from asgisession.stores import MemoryStore

from ..asgi_helpers import client
from . import usage


@pytest.mark.anyio
async def test_usage_runs(secret: str) -> None:
    wrapped = usage.build(secret)
    assert {"raw", "store", "starlette", "fastapi", "litestar", "quart"} == set(wrapped)
    async with client(wrapped["raw"]) as c:
        response = await c.get("/")
    assert 204 == response.status_code
    assert {"session", "theme", "count"} <= set(response.cookies)

    await usage.revocation(MemoryStore())
    assert 1 == len(usage.configuration())
    session = Session()
    control_of(session).attach(LoadedState(data={"user": "alice"}))
    usage.adapters(session)
    await usage.fastapi_dependencies(HTTPConnection({"type": "http", "session": session}))
    assert "_csrf_token" in session
