"""The conformance matrix's served app: one framework over one store, three configurations.

Every framework (:mod:`.matrix_frameworks`) serves the same routes, reaching the session
the way its users do (``scope["session"]``, ``request.session``, FastAPI's ``SessionDep``,
``quart.session``, Django's ``request.session``):

- ``GET /me``: the session without keys starting with ``_``, as JSON
- ``GET /count``: adds one to ``count``, returns ``{"count": n}``
- ``GET /big``: puts 5,000 bytes in the session (too much for a cookie)
- ``GET /bad``: puts a value JSON cannot carry in the session
- ``GET /csrf``: ``{"token": <a CSRF token>}``
- ``POST /login`` (JSON ``{"user": ...}``): regenerates, sets ``user``, returns the session
- ``POST /logout``: resets the session (the framework's own call for it), returns ``{}``
- ``POST /flash``: ``flash(scope)["notice"] = "Saved"``; ``GET /flash``: ``{"flash": {...}}``
- ``POST /form`` (a form with ``comment``): ``{"comment": ...}`` as the framework parsed it
- ``POST /upload`` (multipart with a file ``upload``): the file's ``length`` and ``sha256``
  as the framework parsed it (raw ASGI has no form parser: the whole body's)

The GETs that write let the store rows run without a CSRF token; the POSTs need one.

:func:`served` builds the app for a server in a subprocess. The framework puts the
middlewares where the docs put them (:data:`Wrap`); there, :class:`Variants` holds three
stacks of ``SessionMiddleware(CSRFMiddleware(...))`` around the one framework app, chosen by
the request's ``X-Matrix-Variant`` header: the default (``on_commit_error`` =
:func:`error_page`), ``anonymous`` (also ``on_store_error="anonymous"``) and ``nohook`` (no
``on_commit_error``). So one served process answers every case of its cell.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Protocol

from asgisession import CSRFMiddleware, SessionMiddleware, flash
from asgisession._types import AnyASGIApp, AnyScope, Receive, Scope, Send
from asgisession.stores import from_url
from asgisession.stores.base import Store

FRAMEWORKS = ("raw", "starlette", "fastapi", "litestar", "quart", "django")
BIG = 5000
NOTICE = "Saved"
VARIANT_HEADER = b"x-matrix-variant"


class Wrap(Protocol):
    """Puts the session (and CSRF) middlewares around an ASGI app: each framework calls it
    where docs/frameworks.md puts ``SessionMiddleware(CSRFMiddleware(...))``; ``options``
    go to every ``SessionMiddleware`` (Django's column names its cookie, and keeps it in
    the cookie, as its recipe does)."""

    def __call__(self, app: AnyASGIApp, **options: Any) -> AnyASGIApp: ...


def public(session: Any) -> dict[str, Any]:
    return {key: value for key, value in dict(session).items() if not key.startswith("_")}


def count(session: Any) -> dict[str, int]:
    session["count"] = session.get("count", 0) + 1
    return {"count": session["count"]}


def big(session: Any) -> dict[str, bool]:
    session["blob"] = "x" * BIG
    return {"ok": True}


def bad(session: Any) -> dict[str, bool]:
    session["when"] = object()
    return {"ok": True}


#: The GET routes that only touch the session, by path.
SESSION_ROUTES = {"/me": public, "/count": count, "/big": big, "/bad": bad}


def login(session: Any, user: str) -> dict[str, Any]:
    """What every login does: a new identity (data kept), then the user."""
    session.regenerate()
    session["user"] = user
    return public(session)


def set_flash(scope: AnyScope) -> dict[str, Any]:
    flash(scope)["notice"] = NOTICE
    return {}


def show_flash(scope: AnyScope) -> dict[str, Any]:
    return {"flash": dict(flash(scope))}


def digest(data: bytes) -> dict[str, Any]:
    return {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def error_page_html(error: Exception) -> str:
    """The page every framework's commit-error hook shows: it names the error."""
    return f"<h1>Your session could not be saved</h1><p>{type(error).__name__}</p>"


def error_page(scope: Scope, error: Exception) -> AnyASGIApp:
    """``on_commit_error``: a 400 HTML page naming the error (any framework can run it)."""
    body = error_page_html(error).encode()

    async def page(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return page


class Variants:
    """Three session stacks around one app, chosen per request by ``X-Matrix-Variant``."""

    def __init__(
        self, app: AnyASGIApp, secret: str, store: Store | None, shared: dict[str, Any]
    ) -> None:
        def stack(**options: Any) -> SessionMiddleware:
            chosen = {"secret_key_base": secret, "store": store, **shared, **options}
            return SessionMiddleware(CSRFMiddleware(app), **chosen)

        self.stacks = {
            b"": stack(on_commit_error=error_page),
            b"anonymous": stack(on_commit_error=error_page, on_store_error="anonymous"),
            b"nohook": stack(),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", ()))
        await self.stacks[headers.get(VARIANT_HEADER, b"")](scope, receive, send)


def wrap_for(secret: str, store: Store | None) -> Wrap:
    def wrap(app: AnyASGIApp, **options: Any) -> AnyASGIApp:
        return Variants(app, secret, store, options)

    return wrap


def served() -> AnyASGIApp:
    """The app for a server in a subprocess: ``MATRIX_FRAMEWORK``, ``MATRIX_STORE`` (a store
    URL, or empty for the cookie store) and ``SECRET_KEY_BASE``."""
    from .matrix_frameworks import build

    url = os.environ.get("MATRIX_STORE", "")
    store = from_url(url) if url else None
    wrap = wrap_for(os.environ["SECRET_KEY_BASE"], store)
    return build(os.environ["MATRIX_FRAMEWORK"], wrap)
