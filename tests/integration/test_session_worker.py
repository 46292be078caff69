"""examples/session_worker.py for real: a web app on a real redis-server, two browsers of one
user, and the worker run as a separate process to list and end their sessions."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asgisession import Session, SessionMiddleware
from asgisession._types import Receive, Scope, Send
from asgisession.stores import RedisStore

from ..servers import LOOPBACK, ServerProcess

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: the worker and the web app keep their sessions in Redis (asyncio-only)."""
    return "asyncio"


WORKER = Path(__file__).parents[2] / "examples" / "session_worker.py"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """GET /login?user=ID logs in; GET /me says who is logged in (null when nobody)."""
    session: Session = scope["session"]
    if scope["path"] == "/login":
        session.regenerate()
        session["user_id"] = scope["query_string"].decode().removeprefix("user=")
    body = json.dumps({"user_id": session.get("user_id")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def worker(redis_url: str, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(WORKER), "--redis-url", redis_url, "--namespace", namespace]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
async def web(redis_proc: ServerProcess, secret: str) -> AsyncIterator[tuple[str, str, Any]]:
    url = f"redis://{LOOPBACK}:{redis_proc.port}/0"
    namespace = f"w{uuid.uuid4().hex}:"
    async with RedisStore.from_url(url, namespace=namespace) as store:
        middleware = SessionMiddleware(app, secret_key_base=secret, store=store, user_key="user_id")
        yield url, namespace, middleware


def browser(middleware: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=middleware)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def me(http: httpx.AsyncClient) -> Any:
    return (await http.get("/me")).json()["user_id"]


def listed_keys(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert 0 == result.returncode, result.stderr
    return [line.split()[0] for line in result.stdout.splitlines()[:-1]]


async def test_list_then_revoke_one_browser(web: tuple[str, str, Any]) -> None:
    url, namespace, middleware = web
    async with browser(middleware) as laptop, browser(middleware) as phone:
        await laptop.get("/login?user=42")
        [laptop_key] = listed_keys(worker(url, namespace, "list", "42"))
        await phone.get("/login?user=42")
        assert "42" == await me(laptop) == await me(phone)

        listed = worker(url, namespace, "list", "42")
        assert "2 session(s) of user 42" == listed.stdout.splitlines()[-1]
        keys = listed_keys(listed)
        assert 2 == len(keys)
        assert laptop_key in keys
        [phone_key] = [key for key in keys if key != laptop_key]

        ambiguous = worker(url, namespace, "revoke", "42")
        assert 2 == ambiguous.returncode
        assert "2 sessions of user 42 match ''" in ambiguous.stderr

        revoked = worker(url, namespace, "revoke", "42", phone_key[:16])
        assert 0 == revoked.returncode, revoked.stderr
        assert f"ended session {phone_key} of user 42" in revoked.stdout
        assert await me(phone) is None  # that browser's next request is logged out
        assert "42" == await me(laptop)  # and the other is not

        assert [laptop_key] == listed_keys(worker(url, namespace, "list", "42"))
        again = worker(url, namespace, "revoke", "42", phone_key)
        assert 1 == again.returncode
        assert "no session of user 42" in again.stderr


async def test_revoke_all_logs_out_every_browser(web: tuple[str, str, Any]) -> None:
    url, namespace, middleware = web
    async with browser(middleware) as laptop, browser(middleware) as phone:
        await laptop.get("/login?user=7")
        await phone.get("/login?user=7")
        other = browser(middleware)
        async with other:
            await other.get("/login?user=8")
            ended = worker(url, namespace, "revoke-all", "7")
            assert 0 == ended.returncode, ended.stderr
            assert "ended 2 session(s) of user 7" in ended.stdout
            assert [None, None, "8"] == [await me(laptop), await me(phone), await me(other)]
        assert "0 session(s) of user 7" in worker(url, namespace, "list", "7").stdout


def test_an_unreachable_store_exits_3() -> None:
    result = worker("redis://127.0.0.1:1/0", "x:", "list", "42")
    assert 3 == result.returncode
    assert "the store is unavailable" in result.stderr


def test_a_bad_url_exits_2() -> None:
    result = worker("redis://:hunter2@h/zero", "x:", "list", "42")
    assert 2 == result.returncode
    assert "is not a database number" in result.stderr
    assert "hunter2" not in result.stderr
