"""CSRFMiddleware under real Starlette and FastAPI apps: a hidden-field form, a JSON body.

The framework-free unit tests of asgisession.csrf are in tests/csrf/.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from asgisession import CSRFMiddleware, Session, SessionMiddleware, csrf_token

from ..asgi_helpers import client
from ..csrf.helpers import TRUSTED

pytestmark = pytest.mark.integration

_HIDDEN = re.compile(r'name="authenticity_token" value="([A-Za-z0-9_-]+)"')


def starlette_app(secret: str) -> Starlette:
    async def form(request: Request) -> HTMLResponse:
        token = csrf_token(request.scope)
        return HTMLResponse(
            '<form method="post" action="/comment">'
            f'<input type="hidden" name="authenticity_token" value="{token}">'
            '<input name="text"></form>'
        )

    async def comment(request: Request) -> JSONResponse:
        fields = dict(parse_qsl((await request.body()).decode()))
        request.session.setdefault("comments", [])
        request.session["comments"] = [*request.session["comments"], fields["text"]]
        return JSONResponse(request.session["comments"])

    async def login(request: Request) -> JSONResponse:
        session: Session = request.scope["session"]
        session.regenerate()
        session["user"] = "ada"
        return JSONResponse({"user": "ada"})

    return Starlette(
        routes=[
            Route("/form", form),
            Route("/comment", comment, methods=["POST"]),
            Route("/login", login, methods=["POST"]),
        ],
        middleware=[
            Middleware(SessionMiddleware, secret_key_base=secret),
            Middleware(CSRFMiddleware, trusted_origins=TRUSTED),
        ],
    )


@pytest.mark.anyio
async def test_starlette_html_form_posts_the_token_across_requests(secret: str) -> None:
    """A Starlette page's hidden field token lets the form post; login makes it stale."""
    async with client(starlette_app(secret)) as http:
        page = await http.get("/form")
        match = _HIDDEN.search(page.text)
        assert match is not None
        token = match.group(1)
        first = await http.post("/comment", data={"authenticity_token": token, "text": "hi"})
        again = await http.post("/comment", data={"authenticity_token": token, "text": "yo"})
        bare = await http.post("/comment", data={"text": "forged"})
        assert 200 == (await http.post("/login", headers={"x-csrf-token": token})).status_code
        stale = await http.post("/comment", data={"authenticity_token": token, "text": "x"})
    assert (200, ["hi"]) == (first.status_code, first.json())
    assert (200, ["hi", "yo"]) == (again.status_code, again.json())
    assert 403 == bare.status_code
    assert 403 == stale.status_code


class Item(BaseModel):
    """A FastAPI body model (module level, so FastAPI can resolve the annotations)."""

    name: str


api = FastAPI()


@api.get("/csrf")
async def fastapi_token(request: Request) -> dict[str, str]:
    return {"token": csrf_token(request.scope)}


@api.post("/items")
async def fastapi_create(item: Item) -> dict[str, str]:
    return {"created": item.name}


@api.post("/raw")
async def fastapi_raw(request: Request) -> dict[str, str]:
    return {"body": (await request.body()).decode()}


@pytest.mark.anyio
async def test_fastapi_header_and_form_tokens(secret: str) -> None:
    """FastAPI: a JSON body with X-CSRF-Token passes; a form body reaches the handler intact."""
    app = SessionMiddleware(CSRFMiddleware(api), secret_key_base=secret)
    async with client(app) as http:
        value = (await http.get("/csrf")).json()["token"]
        created = await http.post("/items", json={"name": "a"}, headers={"x-csrf-token": value})
        refused = await http.post("/items", json={"name": "b"})
        form = await http.post("/raw", data={"authenticity_token": value, "q": "1 2"})
    assert (200, {"created": "a"}) == (created.status_code, created.json())
    assert 403 == refused.status_code
    assert {"body": f"authenticity_token={value}&q=1+2"} == form.json()
