"""CSRF with large forms under Starlette: a file before or after the token field reaches
Starlette's form parser whole, and a repeated token field past the read-ahead is refused
while the body streams (the app sees the client leave, the client gets 403).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgisession import csrf_token
from asgisession._types import ASGIApp

from ..csrf.helpers import MP, build, client

pytestmark = pytest.mark.integration


def _starlette_app(calls: list[str]) -> ASGIApp:
    async def token(request: Request) -> PlainTextResponse:
        return PlainTextResponse(csrf_token(request.scope))

    async def submit(request: Request) -> PlainTextResponse:
        async with request.form() as form:
            calls.append("submit")
            upload = form["f"]
            assert isinstance(upload, UploadFile)
            size = len(await upload.read())
            return PlainTextResponse(f"{form['authenticity_token']} {size}")

    routes = [Route("/token", token), Route("/submit", submit, methods=["POST"])]
    return Starlette(routes=routes)


async def _chunked(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        for at in range(0, len(piece), 65536):
            yield piece[at : at + 65536]


def _mp_part(name: str, value: bytes, filename: str = "") -> bytes:
    extra = f'; filename="{filename}"' if filename else ""
    head = f'--XyZ\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n'.encode()
    return head + value + b"\r\n"


@pytest.mark.anyio
@pytest.mark.parametrize("order", ["token-first", "file-first"])
async def test_a_large_form_reaches_starlette_whole(secret: str, order: str) -> None:
    """A 1 MB file with the token before it (streamed after the token) or after it (read
    ahead, spilled to a temporary file, replayed) reaches Starlette's form parser whole."""
    calls: list[str] = []
    app = build(secret, _starlette_app(calls), max_body_size=2 * 1024 * 1024)
    data = secrets.token_bytes(1024 * 1024)
    async with client(app) as http:
        token = (await http.get("/token")).text
        parts = [_mp_part("authenticity_token", token.encode()), _mp_part("f", data, "a.bin")]
        if order == "file-first":
            parts.reverse()
        response = await http.post(
            "/submit", content=_chunked(*parts, b"--XyZ--\r\n"), headers={"content-type": MP}
        )
    assert 200 == response.status_code, response.text
    assert f"{token} {len(data)}" == response.text
    assert ["submit"] == calls


@pytest.mark.anyio
async def test_a_repeat_after_the_read_ahead_is_refused_while_streaming(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A second token field after a large file, past what is read before the app starts,
    is still refused: the app's form parser sees the client leave and the client gets 403."""
    calls: list[str] = []
    app = build(secret, _starlette_app(calls))
    async with client(app) as http:
        token = (await http.get("/token")).text
        body = _chunked(
            _mp_part("authenticity_token", token.encode()),
            _mp_part("f", b"x" * (1024 * 1024), "a.bin"),
            _mp_part("authenticity_token", b"another"),
            b"--XyZ--\r\n",
        )
        response = await http.post("/submit", content=body, headers={"content-type": MP})
    assert 403 == response.status_code
    assert [] == calls
    assert "refused (ambiguous_token)" in caplog.text
