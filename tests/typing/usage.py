"""The public API as an app uses it, with the types a checker must infer (``assert_type``).

mypy checks this file in CI (``[tool.mypy] files`` includes tests/); a wrong or missing
annotation in asgisession fails that check. ``test_usage.py`` also runs it, so every line
here is real, working code.
"""

from __future__ import annotations

import sys
from collections import Counter
from secrets import token_hex
from typing import Any

from fastapi import FastAPI
from litestar import Litestar
from quart import Quart
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from asgisession import (
    CookieJar,
    CSRFMiddleware,
    Flash,
    Keyring,
    RejectReason,
    Session,
    SessionMiddleware,
    UserSession,
    cookies,
    csrf_token,
    flash,
    revoke_user,
    secret_key_base_from_env,
    user_sessions,
)
from asgisession._types import Receive, Scope, Send
from asgisession.integrations.django import DjangoSession
from asgisession.integrations.fastapi import get_csrf_token, get_session
from asgisession.integrations.litestar import SessionSync
from asgisession.integrations.quart import AsgiSessionInterface, QuartSession
from asgisession.stores import MemoryStore, Store

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A raw ASGI app using every per-request helper."""
    session = scope["session"]
    assert isinstance(session, Session)
    assert_type(session.get("user"), Any | None)
    assert_type(session.is_new, bool)
    assert_type(session.rejection, RejectReason | None)
    assert_type(session.modified, bool)
    assert_type(session.loaded, bool)
    assert_type(await session.load(), None)
    assert_type(session.regenerate(), None)
    session["user"] = "alice"
    assert_type(csrf_token(scope), str)
    messages = flash(scope)
    assert_type(messages, Flash)
    messages["notice"] = "Saved"
    jar = cookies(scope)
    assert_type(jar, CookieJar)
    assert_type(jar.get("theme"), str | None)
    jar.set("theme", "dark")
    jar.signed.set("count", 1)
    assert_type(jar.encrypted.get("secret"), Any)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def build(secret: str) -> dict[str, SessionMiddleware]:
    """Wrapping each kind of app type-checks: plain functions and frameworks' typed apps."""
    store = MemoryStore()
    assert_type(store, MemoryStore)
    wrapped = {
        "raw": SessionMiddleware(CSRFMiddleware(raw_app), secret_key_base=secret),
        "store": SessionMiddleware(raw_app, secret_key_base=[secret], store=store),
        "starlette": SessionMiddleware(Starlette(), secret_key_base=secret),
        "fastapi": SessionMiddleware(FastAPI(), secret_key_base=secret),
        "litestar": SessionMiddleware(SessionSync(Litestar()), secret_key_base=secret),
        "quart": SessionMiddleware(Quart(__name__), secret_key_base=secret),
    }
    middleware = wrapped["raw"]
    assert_type(middleware.keyring, Keyring)
    assert_type(middleware.rejections, Counter[RejectReason])
    return wrapped


async def revocation(store: Store) -> None:
    """Log-out-everywhere helpers."""
    assert_type(await revoke_user(store, 42), int)
    assert_type(await user_sessions(store, 42), list[UserSession])


def configuration() -> list[str]:
    secrets = secret_key_base_from_env(environ={"SECRET_KEY_BASE": token_hex(32)})
    assert_type(secrets, list[str])
    return secrets


async def fastapi_dependencies(connection: HTTPConnection) -> None:
    """What FastAPI's Depends hands a path operation."""
    assert_type(await get_session(connection), Session)
    assert_type(await get_csrf_token(connection), str)


def adapters(session: Session) -> None:
    """The framework adapters' types."""
    quart_session = QuartSession(session)
    assert_type(quart_session.asgi, Session)
    assert_type(quart_session.new, bool)
    assert_type(AsgiSessionInterface(), AsgiSessionInterface)
    django_session = DjangoSession(session)
    assert_type(django_session.asgi, Session)
    assert_type(django_session.is_empty(), bool)
