# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""SessionMiddleware's cookie keywords: ``cookie=CookieOptions(...)`` or the flat shortcuts.

Both forms give the same cookie; giving both is refused, naming them, even when the flat
value equals its default (which would win is not obvious).
"""

from __future__ import annotations

from typing import Any

import pytest

from asgisession import ConfigurationError, CookieOptions, SessionMiddleware
from asgisession._types import Receive, Scope, Send
from asgisession.stores import MemoryStore

from .asgi_helpers import client

pytestmark = pytest.mark.anyio


async def writer(scope: Scope, receive: Receive, send: Send) -> None:
    scope["session"]["user"] = "alice"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def set_cookie(mw: SessionMiddleware) -> str:
    async with client(mw, base_url="https://testserver") as c:
        response = await c.get("/app/x")
    (value,) = response.headers.get_list("set-cookie")
    return value


def attributes(set_cookie: str) -> tuple[str, list[str]]:
    """The cookie's name and its attributes other than the date-dependent Expires."""
    name_value, *attrs = set_cookie.split("; ")
    return name_value.split("=", 1)[0], [a for a in attrs if not a.startswith("Expires=")]


@pytest.mark.parametrize("server_side", [False, True], ids=["cookie-store", "memory-store"])
async def test_both_forms_give_the_same_cookie(secret: str, server_side: bool) -> None:
    """cookie=CookieOptions(...) and the flat keywords describe the same cookie."""
    store: dict[str, Any] = {"store": MemoryStore()} if server_side else {}
    options = CookieOptions(
        name="sid", max_age=600, path="/app", domain="testserver", secure=True,
        httponly=False, samesite="strict", partitioned=True,
    )  # fmt: skip
    long_form = SessionMiddleware(writer, secret_key_base=secret, cookie=options, **store)
    flat_form = SessionMiddleware(
        writer, secret_key_base=secret, cookie_name="sid", max_age=600, path="/app",
        domain="testserver", secure=True, httponly=False, samesite="strict", partitioned=True,
        **store,
    )  # fmt: skip
    assert options is long_form.backend.cookie
    assert options == flat_form.backend.cookie
    expected = (
        "sid",
        ["Path=/app", "Domain=testserver", "Max-Age=600", "Secure", "SameSite=Strict",
         "Partitioned"],
    )  # fmt: skip
    assert expected == attributes(await set_cookie(long_form))
    assert expected == attributes(await set_cookie(flat_form))


def test_defaults_are_cookie_options_defaults(secret: str) -> None:
    """Neither form given: the cookie is CookieOptions()."""
    mw = SessionMiddleware(writer, secret_key_base=secret)
    assert CookieOptions() == mw.backend.cookie


@pytest.mark.parametrize(
    ("flat", "named"),
    [
        ({"cookie_name": "sid"}, "cookie_name="),
        ({"path": "/"}, "path="),  # the default value, given: still ambiguous
        ({"domain": None}, "domain="),
        ({"max_age": None, "secure": True}, "max_age=, secure="),
    ],
)
def test_cookie_and_a_flat_keyword_conflict(secret: str, flat: dict[str, Any], named: str) -> None:
    """Giving cookie= and a flat cookie keyword is a ConfigurationError naming both."""
    with pytest.raises(ConfigurationError, match=f"cookie= and {named} both describe"):
        SessionMiddleware(writer, secret_key_base=secret, cookie=CookieOptions(), **flat)


def test_cookie_must_be_cookie_options(secret: str) -> None:
    """cookie= takes a CookieOptions, not a name."""
    with pytest.raises(ConfigurationError, match="give a CookieOptions"):
        SessionMiddleware(writer, secret_key_base=secret, cookie="sid")  # type: ignore[arg-type]


def test_flat_keywords_are_still_checked(secret: str) -> None:
    """The shortcuts go through CookieOptions' checks, as before."""
    with pytest.raises(ConfigurationError, match="secure"):
        SessionMiddleware(writer, secret_key_base=secret, samesite="none", secure=False)


def test_cookie_with_a_custom_backend_is_refused(secret: str) -> None:
    """A custom backend brings its own cookie: cookie= beside it would be silently ignored."""
    inner = SessionMiddleware(writer, secret_key_base=secret).backend
    with pytest.raises(ConfigurationError, match="backend= brings its own cookie options"):
        SessionMiddleware(writer, secret_key_base=secret, backend=inner, cookie=CookieOptions())
