"""The matrix app (routes in :mod:`.matrix_apps`) in each framework, as docs/frameworks.md
wires it: each builder takes the ``wrap`` that puts the session middlewares around an ASGI app
and calls it where the docs put ``SessionMiddleware(CSRFMiddleware(...))``.

- raw ASGI, FastAPI, Django: around the whole app (``application = SessionMiddleware(...)``)
- Starlette: in the ``middleware=[...]`` list (inside Starlette's ``ServerErrorMiddleware``)
- Litestar: around ``SessionSync(app)``, so ``request.clear_session()`` reaches the cookie
- Quart: ``app.asgi_app = wrap(app.asgi_app)``, Quart's own place for ASGI middleware
- Django: :func:`django_app`, the one function that knows Django's wiring (recipe 2: the
  session engine, asgisession's CSRF around Django's ASGI handler; see :mod:`.matrix_django`)

It runs past 300 lines because it is one job done six times: the same routes, each in its
framework's own handlers; splitting it would scatter one table across files.
"""

# No ``from __future__ import annotations``: FastAPI and Litestar read the handlers' annotations
# at run time, and these name classes imported inside the builders (so a served process
# imports only its own framework).
import json
from typing import Annotated, Any, cast
from urllib.parse import parse_qs

from asgisession import Session, csrf_token
from asgisession._types import AnyASGIApp, Receive, Scope, Send

from .matrix_apps import (
    SESSION_ROUTES,
    Wrap,
    digest,
    login,
    set_flash,
    show_flash,
)


def raw_app(wrap: Wrap) -> AnyASGIApp:
    async def body_of(receive: Receive) -> bytes:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def answer(scope: Scope, receive: Receive) -> tuple[int, Any]:
        path, session = scope["path"], scope["session"]
        if path in SESSION_ROUTES:
            return 200, SESSION_ROUTES[path](session)
        if path == "/csrf":
            return 200, {"token": csrf_token(scope)}
        if path == "/flash":
            return 200, set_flash(scope) if scope["method"] == "POST" else show_flash(scope)
        if path == "/login":
            return 200, login(session, json.loads(await body_of(receive))["user"])
        if path == "/logout":
            session.reset()
            return 200, {}
        if path == "/form":
            fields = parse_qs((await body_of(receive)).decode())
            return 200, {"comment": fields["comment"][0]}
        if path == "/upload":
            return 200, digest(await body_of(receive))
        return 404, {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        status, body = await answer(scope, receive)
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    return wrap(app)


def starlette_app(wrap: Wrap) -> AnyASGIApp:
    from starlette.applications import Starlette
    from starlette.datastructures import UploadFile
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def session_route(path: str) -> Route:
        handler = SESSION_ROUTES[path]

        async def endpoint(request: Request) -> JSONResponse:
            return JSONResponse(handler(request.session))

        return Route(path, endpoint)

    async def csrf(request: Request) -> JSONResponse:
        return JSONResponse({"token": csrf_token(request.scope)})

    async def login_(request: Request) -> JSONResponse:
        session: Session = request.scope["session"]
        return JSONResponse(login(session, (await request.json())["user"]))

    async def logout(request: Request) -> JSONResponse:
        session: Session = request.scope["session"]
        session.reset()
        return JSONResponse({})

    async def flash_(request: Request) -> JSONResponse:
        post = request.method == "POST"
        return JSONResponse(set_flash(request.scope) if post else show_flash(request.scope))

    async def form(request: Request) -> JSONResponse:
        return JSONResponse({"comment": (await request.form())["comment"]})

    async def upload(request: Request) -> JSONResponse:
        file = (await request.form())["upload"]
        assert isinstance(file, UploadFile)
        return JSONResponse(digest(await file.read()))

    routes = [session_route(path) for path in SESSION_ROUTES] + [
        Route("/csrf", csrf),
        Route("/login", login_, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/flash", flash_, methods=["GET", "POST"]),
        Route("/form", form, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(cast(Any, wrap))])


def fastapi_app(wrap: Wrap) -> AnyASGIApp:
    from fastapi import FastAPI, Form, Request, UploadFile
    from pydantic import BaseModel

    from asgisession.integrations.fastapi import CSRFToken, SessionDep

    app = FastAPI()

    def session_route(path: str) -> None:
        handler = SESSION_ROUTES[path]

        async def endpoint(session: SessionDep) -> Any:
            return handler(session)

        app.get(path)(endpoint)

    for path in SESSION_ROUTES:
        session_route(path)

    class Login(BaseModel):
        user: str

    @app.get("/csrf")
    async def csrf(token: CSRFToken) -> dict[str, str]:
        return {"token": token}

    @app.post("/login")
    async def login_(body: Login, session: SessionDep) -> dict[str, Any]:
        return login(session, body.user)

    @app.post("/logout")
    async def logout(session: SessionDep) -> dict[str, Any]:
        session.reset()
        return {}

    @app.get("/flash")
    async def show(request: Request) -> dict[str, Any]:
        return show_flash(request.scope)

    @app.post("/flash")
    async def set_(request: Request) -> dict[str, Any]:
        return set_flash(request.scope)

    @app.post("/form")
    async def form(comment: Annotated[str, Form()]) -> dict[str, Any]:
        return {"comment": comment}

    @app.post("/upload")
    async def upload(upload: UploadFile) -> dict[str, Any]:
        return digest(await upload.read())

    return wrap(app)


def litestar_app(wrap: Wrap) -> AnyASGIApp:
    from litestar import Litestar, Request, get, post
    from litestar.datastructures import UploadFile
    from litestar.di import NamedDependency, Provide

    from asgisession.integrations.litestar import SessionSync, provide_session

    AnyRequest = Request[Any, Any, Any]

    def session_route(path: str) -> Any:
        handler = SESSION_ROUTES[path]

        async def endpoint(request: AnyRequest) -> Any:
            return handler(request.session)

        return get(path, name=path)(endpoint)

    @get("/csrf")
    async def csrf(request: AnyRequest) -> dict[str, str]:
        return {"token": csrf_token(request.scope)}

    @post("/login", status_code=200)
    async def login_(request: AnyRequest, session: NamedDependency[Session]) -> dict[str, Any]:
        return login(session, (await request.json())["user"])

    @post("/logout", status_code=200)
    async def logout(request: AnyRequest) -> dict[str, Any]:
        request.clear_session()  # SessionSync turns this into session.reset()
        return {}

    @get("/flash")
    async def show(request: AnyRequest) -> dict[str, Any]:
        return show_flash(request.scope)

    @post("/flash", status_code=200)
    async def set_(request: AnyRequest) -> dict[str, Any]:
        return set_flash(request.scope)

    @post("/form", status_code=200)
    async def form(request: AnyRequest) -> dict[str, Any]:
        return {"comment": (await request.form())["comment"]}

    @post("/upload", status_code=200)
    async def upload(request: AnyRequest) -> dict[str, Any]:
        file = (await request.form())["upload"]
        assert isinstance(file, UploadFile)
        return digest(await file.read())

    handlers = [session_route(path) for path in SESSION_ROUTES]
    app = Litestar(
        route_handlers=[*handlers, csrf, login_, logout, show, set_, form, upload],
        dependencies={"session": Provide(provide_session)},
    )
    return wrap(SessionSync(app))


def quart_app(wrap: Wrap) -> AnyASGIApp:
    from quart import Quart, request, session

    from asgisession.integrations.quart import QuartSession, install

    app = Quart(__name__)
    install(app)

    def session_route(path: str) -> None:
        handler = SESSION_ROUTES[path]

        async def endpoint() -> Any:
            return handler(session)

        app.add_url_rule(path, path, endpoint)

    for path in SESSION_ROUTES:
        session_route(path)

    @app.get("/csrf")
    async def csrf() -> dict[str, str]:
        return {"token": csrf_token(request.scope)}

    @app.post("/login")
    async def login_() -> dict[str, Any]:
        assert isinstance(session, QuartSession)
        return login(session, (await request.get_json())["user"])

    @app.post("/logout")
    async def logout() -> dict[str, Any]:
        assert isinstance(session, QuartSession)
        session.reset()
        return {}

    @app.route("/flash", methods=["GET", "POST"])
    async def flash_() -> dict[str, Any]:
        post = request.method == "POST"
        return set_flash(request.scope) if post else show_flash(request.scope)

    @app.post("/form")
    async def form() -> dict[str, Any]:
        return {"comment": (await request.form)["comment"]}

    @app.post("/upload")
    async def upload() -> dict[str, Any]:
        return digest((await request.files)["upload"].read())

    app.asgi_app = wrap(app.asgi_app)  # type: ignore[assignment]
    return app


def django_app(wrap: Wrap) -> AnyASGIApp:
    """Django's column, wired as docs/frameworks.md's recipe 2 is (:mod:`.matrix_django`):
    the session engine under asgisession's Django ``SessionMiddleware``, and the middlewares
    around Django's ASGI handler, their own session (the CSRF secret) in the cookie."""
    from django.core.asgi import get_asgi_application

    from .matrix_django import ASGI_COOKIE

    return wrap(get_asgi_application(), cookie_name=ASGI_COOKIE, store=None)


BUILDERS = {
    "raw": raw_app,
    "starlette": starlette_app,
    "fastapi": fastapi_app,
    "litestar": litestar_app,
    "quart": quart_app,
    "django": django_app,
}


def build(framework: str, wrap: Wrap) -> AnyASGIApp:
    return BUILDERS[framework](wrap)
