"""The conformance matrix's app, in each framework's own idiom, with its error handling on.

Every framework serves the same routes, reaching the session the way its users do
(``scope["session"]``, ``request.session``, FastAPI's ``SessionDep``, ``quart.session``):

- ``GET /me``: the session without keys starting with ``_``, as JSON
- ``GET /count``: adds one to ``count``, returns ``{"count": n}``
- ``GET /big``: puts 5,000 bytes in the session (too much for a cookie)
- ``GET /bad``: puts a value JSON cannot carry in the session

The routes are GETs so that the rows about the store need no CSRF token; CSRF rows add
their own routes. :func:`create_app` wraps the app in ``SessionMiddleware(CSRFMiddleware(
...))`` as the docs do; :func:`served` builds the same from the environment, for a server
started in a subprocess.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from asgisession import CSRFMiddleware, SessionMiddleware
from asgisession._types import AnyASGIApp, Receive, Scope, Send
from asgisession.integrations.fastapi import SessionDep  # resolved from module globals
from asgisession.stores import from_url
from asgisession.stores.base import Store

FRAMEWORKS = ("raw", "starlette", "fastapi", "litestar", "quart", "django")
BIG = 5000


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


ROUTES = {"/me": public, "/count": count, "/big": big, "/bad": bad}


def raw_app() -> AnyASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        handler = ROUTES.get(scope["path"])
        status, body = (200, handler(scope["session"])) if handler else (404, {})
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    return app


def starlette_app() -> AnyASGIApp:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def route(path: str) -> Route:
        handler = ROUTES[path]

        async def endpoint(request: Request) -> JSONResponse:
            return JSONResponse(handler(request.session))

        return Route(path, endpoint)

    return Starlette(routes=[route(path) for path in ROUTES])


def fastapi_app() -> AnyASGIApp:
    from fastapi import FastAPI

    app = FastAPI()

    def route(path: str) -> None:
        handler = ROUTES[path]

        async def endpoint(session: SessionDep) -> Any:
            return handler(session)

        app.get(path)(endpoint)

    for path in ROUTES:
        route(path)
    return app


def litestar_app() -> AnyASGIApp:
    from litestar import Litestar, Request, get

    from asgisession.integrations.litestar import SessionSync

    def route(path: str) -> Any:
        handler = ROUTES[path]

        async def endpoint(request: Request[Any, Any, Any]) -> Any:
            return handler(request.session)

        return get(path, name=path)(endpoint)

    return SessionSync(Litestar(route_handlers=[route(path) for path in ROUTES]))


def quart_app() -> AnyASGIApp:
    from quart import Quart, session

    from asgisession.integrations.quart import install

    app = Quart(__name__)
    install(app)

    def route(path: str) -> None:
        handler = ROUTES[path]

        async def endpoint() -> Any:
            return handler(session)

        app.add_url_rule(path, path, endpoint)

    for path in ROUTES:
        route(path)
    return app


def django_app() -> AnyASGIApp:
    from django.conf import settings
    from django.core.asgi import get_asgi_application
    from django.http import HttpRequest, JsonResponse
    from django.urls import path as django_path

    import examples.django_app  # noqa: F401 - configures settings unless a test did first

    def view(handler: Any) -> Any:
        def endpoint(request: HttpRequest) -> JsonResponse:
            return JsonResponse(handler(request.session))

        return endpoint

    # The routes join the project's urlpatterns, whichever module that is: Django reads the
    # list object at every resolve, so adding to it works whenever it happens. A route the
    # project has already (the example's /me) is the project's.
    urlconf = importlib.import_module(settings.ROOT_URLCONF)
    known = {str(pattern.pattern) for pattern in urlconf.urlpatterns}
    for path, handler in ROUTES.items():
        if path.lstrip("/") not in known:
            urlconf.urlpatterns.append(django_path(path.lstrip("/"), view(handler)))
    return get_asgi_application()


BUILDERS = {
    "raw": raw_app,
    "starlette": starlette_app,
    "fastapi": fastapi_app,
    "litestar": litestar_app,
    "quart": quart_app,
    "django": django_app,
}


def error_page(scope: Scope, error: Exception) -> AnyASGIApp:
    """``on_commit_error``: a 400 HTML page naming the error (any framework can run it)."""
    body = f"<h1>Your session could not be saved</h1><p>{type(error).__name__}</p>".encode()

    async def page(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return page


def create_app(
    framework: str, secret: str, store: Store | None = None, **options: Any
) -> SessionMiddleware:
    """The framework's app behind CSRF protection and a session, as the docs wire it;
    ``options`` go to SessionMiddleware (``on_commit_error=``, ``on_store_error=``...)."""
    return SessionMiddleware(
        CSRFMiddleware(BUILDERS[framework]()), secret_key_base=secret, store=store, **options
    )


def served() -> SessionMiddleware:
    """The app for a server in a subprocess: ``MATRIX_FRAMEWORK``, ``MATRIX_STORE`` (a store
    URL, or empty for the cookie store) and ``MATRIX_HOOK`` (``page``: :func:`error_page`)."""
    url = os.environ.get("MATRIX_STORE", "")
    store = from_url(url) if url else None
    hook = error_page if os.environ.get("MATRIX_HOOK") == "page" else None
    framework, secret = os.environ["MATRIX_FRAMEWORK"], os.environ["SECRET_KEY_BASE"]
    return create_app(framework, secret, store, on_commit_error=hook)
