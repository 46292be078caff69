# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""on_commit_error: a session that cannot be saved gets the page the app chooses.

In FastAPI (a Jinja2 template rendered by Starlette's ``Jinja2Templates``), Litestar
(its ``ASGIResponse``) and raw ASGI (an async hook returning an ASGI function), each with
its default error handling in the loop. Nothing of the app's own response is sent, and
the user keeps the cookie they had.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from litestar import Litestar, Request, get
from litestar.response.base import ASGIResponse
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from asgisession import ConfigurationError, CookieOverflow, SerializationError, SessionMiddleware
from asgisession._types import AnyASGIApp, Receive, Scope, Send
from asgisession.integrations.fastapi import SessionDep
from asgisession.stores.redis import RedisStore

from ..servers import LOOPBACK, ServerProcess, redis_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: the failed saves are of a real Redis store (an asyncio-only client)."""
    return "asyncio"


TEMPLATE = """<!doctype html>
<title>Not saved</title>
<h1>We could not save your session</h1>
<p>{{ reason }}</p>
"""


async def client(app: AnyASGIApp, cookie: str | None = None) -> httpx.AsyncClient:
    cookies = {"session": cookie} if cookie else None
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", cookies=cookies
    )


# -- FastAPI: a template rendered by the hook ------------------------------------------------


def fastapi_stack(secret: str, templates: Jinja2Templates, **options: Any) -> SessionMiddleware:
    app = FastAPI()

    @app.get("/count")
    async def count(session: SessionDep) -> dict[str, int]:
        session["count"] = session.get("count", 0) + 1
        return {"count": session["count"]}

    @app.get("/cart")
    async def cart(session: SessionDep) -> StreamingResponse:
        session["cart"] = ["item"] * 1000  # about 8 KB: over the cookie's 4 KB

        async def body() -> AsyncIterator[bytes]:
            yield b"<p>your cart, part 1</p>"
            yield b"<p>part 2</p>"

        return StreamingResponse(body(), headers={"x-app": "cart"}, media_type="text/html")

    @app.get("/when")
    async def when(session: SessionDep) -> dict[str, bool]:
        session["when"] = object()  # JSON has no spelling for it
        return {"ok": True}

    def on_commit_error(scope: Scope, error: Exception) -> Response:
        reason = "too much" if isinstance(error, CookieOverflow) else type(error).__name__
        request = StarletteRequest(scope)
        return templates.TemplateResponse(request, "error.html", {"reason": reason}, 409)

    return SessionMiddleware(
        app, secret_key_base=secret, on_commit_error=on_commit_error, **options
    )


@pytest.fixture
def templates(tmp_path: Path) -> Jinja2Templates:
    (tmp_path / "error.html").write_text(TEMPLATE)
    return Jinja2Templates(directory=tmp_path)


@pytest.mark.anyio
async def test_fastapi_renders_a_template_for_an_overflow(
    secret: str, templates: Jinja2Templates
) -> None:
    """A streamed response whose session overflows: only the template's page is sent."""
    app = fastapi_stack(secret, templates)
    async with await client(app) as c:
        assert {"count": 1} == (await c.get("/count")).json()
        before = c.cookies["session"]
        response = await c.get("/cart")
        assert 409 == response.status_code
        assert "text/html; charset=utf-8" == response.headers["content-type"]
        assert "<p>too much</p>" in response.text
        assert "your cart" not in response.text  # the app's body was dropped, all of it
        assert "x-app" not in response.headers
        assert "set-cookie" not in response.headers
        assert before == c.cookies["session"]
        assert {"count": 2} == (await c.get("/count")).json()  # the old session goes on


@pytest.mark.anyio
async def test_fastapi_renders_a_template_for_a_non_json_value(
    secret: str, templates: Jinja2Templates
) -> None:
    async with await client(fastapi_stack(secret, templates)) as c:
        response = await c.get("/when")
        assert 409 == response.status_code
        assert "<p>SerializationError</p>" in response.text
        assert "set-cookie" not in response.headers


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[ServerProcess]:
    server = redis_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.anyio
async def test_fastapi_failed_save_goes_through_the_hook(
    secret: str, templates: Jinja2Templates, redis: ServerProcess
) -> None:
    """The store goes down while the request runs: the save fails, the hook answers."""
    store = RedisStore.from_url(f"redis://{LOOPBACK}:{redis.port}?timeout=0.5")
    app = fastapi_stack(secret, templates, store=store)
    try:
        async with await client(app) as c:
            assert {"count": 1} == (await c.get("/count")).json()
            before = c.cookies["session"]
            inner: Any = app.app
            inner.add_api_route("/down", down(redis), methods=["GET"])
            response = await c.get("/down")
            assert 409 == response.status_code, response.text
            assert "<p>StoreUnavailable</p>" in response.text
            assert "set-cookie" not in response.headers
            assert before == c.cookies["session"]
    finally:
        await store.aclose()


def down(redis: ServerProcess) -> Any:
    async def endpoint(session: SessionDep) -> dict[str, int]:
        session["count"] = session["count"] + 1  # loaded before the store went down
        redis.stop()
        return {"count": session["count"]}

    return endpoint


# -- Litestar: its own ASGIResponse ------------------------------------------------------------


def litestar_stack(secret: str) -> SessionMiddleware:
    @get("/count")
    async def count(request: Request[Any, Any, Any]) -> dict[str, int]:
        request.session["count"] = request.session.get("count", 0) + 1
        return {"count": request.session["count"]}

    @get("/big")
    async def big(request: Request[Any, Any, Any]) -> str:
        request.session["blob"] = "x" * 5000
        return "<p>saved</p>"

    def on_commit_error(scope: Scope, error: Exception) -> ASGIResponse:
        page = f"<h1>Not saved</h1><p>{type(error).__name__}</p>"
        return ASGIResponse(body=page, status_code=422, media_type="text/html")

    app = Litestar(route_handlers=[count, big])
    return SessionMiddleware(app, secret_key_base=secret, on_commit_error=on_commit_error)


@pytest.mark.anyio
async def test_litestar_renders_its_own_response(secret: str) -> None:
    async with await client(litestar_stack(secret)) as c:
        assert {"count": 1} == (await c.get("/count")).json()
        before = c.cookies["session"]
        response = await c.get("/big")
        assert 422 == response.status_code
        assert "<h1>Not saved</h1><p>CookieOverflow</p>" == response.text
        assert "set-cookie" not in response.headers
        assert before == c.cookies["session"]
        assert {"count": 2} == (await c.get("/count")).json()


# -- raw ASGI: an async hook; and the defaults without one ---------------------------------


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    session = scope["session"]
    if scope["path"] == "/big":
        session["blob"] = "x" * 5000
    elif scope["path"] == "/bad":
        session["when"] = object()
    else:
        session["count"] = session.get("count", 0) + 1
    headers = [(b"content-type", b"text/plain"), (b"x-app", b"yes")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"part 1 ", "more_body": True})
    await send({"type": "http.response.body", "body": b"part 2"})


async def raw_hook(scope: Scope, error: Exception) -> AnyASGIApp | None:
    if isinstance(error, SerializationError):
        return None  # the default for this one

    async def page(scope: Scope, receive: Receive, send: Send) -> None:
        body = f"<p>{error.__class__.__name__} on {scope['path']}</p>".encode()
        headers = [(b"content-type", b"text/html")]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return page


@pytest.mark.anyio
async def test_raw_asgi_async_hook_renders_a_page(secret: str) -> None:
    app = SessionMiddleware(raw_app, secret_key_base=secret, on_commit_error=raw_hook)
    async with await client(app) as c:
        assert "part 1 part 2" == (await c.get("/count")).text
        before = c.cookies["session"]
        response = await c.get("/big")
        assert (400, "<p>CookieOverflow on /big</p>") == (response.status_code, response.text)
        assert "x-app" not in response.headers
        assert "set-cookie" not in response.headers
        assert before == c.cookies["session"]


@pytest.mark.anyio
async def test_hook_returning_none_and_no_hook_raise_into_send(secret: str) -> None:
    """The default: raised from the app's send, before anything is sent; a server's 500."""
    for hook in (raw_hook, None):
        app = SessionMiddleware(raw_app, secret_key_base=secret, on_commit_error=hook)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.get("/bad")
            assert 500 == response.status_code  # httpx's stand-in for a server's 500
            assert "part" not in response.text
            assert "set-cookie" not in response.headers
        with pytest.raises(SerializationError):
            async with await client(app) as c:
                await c.get("/bad")


@pytest.mark.anyio
async def test_failed_save_without_hook_is_503(secret: str, redis: ServerProcess) -> None:
    """No hook: a save that fails is the documented 503 with Retry-After, as before."""
    store = RedisStore.from_url(f"redis://{LOOPBACK}:{redis.port}?timeout=0.5")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["count"] = 1
        redis.stop()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"saved?"})

    try:
        async with await client(SessionMiddleware(app, secret_key_base=secret, store=store)) as c:
            response = await c.get("/")
            assert 503 == response.status_code
            assert "5" == response.headers["retry-after"]
            assert "saved?" not in response.text
            assert "set-cookie" not in response.headers
    finally:
        await store.aclose()


def test_a_hook_that_is_not_callable_is_refused_at_startup(secret: str) -> None:
    """A page passed where the hook goes (a common slip) fails at startup, not per request."""
    with pytest.raises(ConfigurationError, match="on_commit_error"):
        SessionMiddleware(raw_app, secret_key_base=secret, on_commit_error="error.html")  # type: ignore[arg-type]
