"""The HTTP rules both middlewares share (asgisession/_http.py), and that they share them."""

from __future__ import annotations

import pytest

from asgisession import ConfigurationError, CSRFMiddleware, SessionMiddleware
from asgisession._http import merge_vary, path_prefixes
from asgisession._types import Receive, Scope, Send
from asgisession.stores.memory import MemoryStore

from .asgi_helpers import client


@pytest.mark.parametrize(
    ("prefixes", "path", "expected"),
    [
        (["/api"], "/api", True),
        (["/api"], "/api/", True),
        (["/api"], "/api/users", True),
        (["/api"], "/apix", False),
        (["/api"], "/ap", False),
        (["/api/"], "/api", True),
        (["/api/"], "/apix", False),
        (["/"], "/anything", True),
        ([], "/api", False),
        (["/a", "/b/c"], "/b/c/d", True),
        (["/a", "/b/c"], "/b/cd", False),
    ],
)
def test_a_prefix_matches_whole_segments(prefixes: list[str], path: str, expected: bool) -> None:
    assert expected == path_prefixes("exempt", prefixes)(path)


@pytest.mark.parametrize("bad", ["/api", ["api"], [b"/api"]])
def test_a_prefix_that_is_not_a_path_list_is_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="defer_load"):
        path_prefixes("defer_load", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], [(b"vary", b"Cookie, Origin")]),
        ([(b"Vary", b"Accept")], [(b"Vary", b"Accept, Cookie, Origin")]),
        ([(b"vary", b"cookie")], [(b"vary", b"cookie, Origin")]),
        ([(b"vary", b"*")], [(b"vary", b"*")]),
        ([(b"vary", b"")], [(b"vary", b"Cookie, Origin")]),
        (
            [(b"vary", b"Accept"), (b"vary", b"Origin")],
            [(b"vary", b"Accept, Cookie"), (b"vary", b"Origin")],
        ),
    ],
)
def test_vary_merges_once(
    headers: list[tuple[bytes, bytes]], expected: list[tuple[bytes, bytes]]
) -> None:
    merge_vary(headers, [b"Cookie", b"Origin"])
    assert expected == headers


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "under_api"), [("/api", True), ("/api/x", True), ("/apix", False)]
)
async def test_defer_load_and_exempt_read_a_prefix_the_same_way(
    secret: str, path: str, under_api: bool
) -> None:
    """``defer_load=["/api"]`` and ``exempt=["/api"]`` both cover /api/..., neither /apix."""
    seen: dict[str, bool] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/login":
            await scope["session"].load()
            scope["session"]["user"] = "u"
        else:
            seen["preloaded"] = scope["session"].loaded
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = SessionMiddleware(
        CSRFMiddleware(app, exempt=["/api"]), secret_key_base=secret, store=MemoryStore(),
        defer_load=["/api"],
    )  # fmt: skip
    async with client(middleware) as http:
        assert 200 == (await http.get("/login")).status_code
        await http.get(path)
        cross_site = await http.post(path, headers={"origin": "https://elsewhere.example"})
    assert (under_api, not under_api) == (cross_site.status_code == 200, seen["preloaded"])
