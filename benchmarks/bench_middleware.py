"""Section 2, middleware: what a session middleware adds to one request, in-process.

No HTTP client and no server: each request is a hand-made ``scope`` (copied per call, as a
server makes a new one per request), a ``receive`` that returns an empty body and a
``send`` that drops the messages. The app answers ``200`` with a short body in two
``send`` calls. Candidates:

bare app
    the app alone: what every other row is measured against.
pass-through
    a middleware whose only work is to wrap ``send`` in a closure that forwards each
    message: the floor for any ASGI middleware that needs to add a header.
asgisession, starlette, litestar, starsessions (cookie-backed, each in its default mode)
    no cookie (the app does not touch the session), cookie + untouched session, session
    read (one key), session written (one key changed, so a cookie is sent back).

starsessions loads a session only when asked; its app calls ``load_session`` in the read
and write cases, as its documentation tells apps to (or to add its autoload middleware).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import SimpleNamespace

from asgisession import SessionMiddleware
from asgisession._types import ASGIApp as App
from asgisession._types import Message, Receive, Scope, Send

from .codec import SECRET
from .harness import AsyncBatch, Measure, Mode, Progress, SectionResult, rounds_async

SECTION = "middleware"

SCENARIOS = ("no cookie", "untouched", "read", "write")
FRAMEWORKS = ("asgisession", "starlette", "litestar", "starsessions")
BARE = "bare app"
FLOOR_MW = "pass-through middleware"
USER_ID = 48213
SCOPE: Scope = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "root_path": "",
    "query_string": b"",
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
    "state": {},
    # What Litestar's router puts in the scope before its middleware runs; its session
    # middleware reads both to pick a serializer. Harmless extra keys for everyone else.
    "route_handler": SimpleNamespace(opt={}),
    "litestar_app": SimpleNamespace(type_encoders=None, response_class=None),
}
HEADERS = [
    (b"host", b"example.test"),
    (b"user-agent", b"asgisession-bench/1"),
    (b"accept", b"text/html"),
]


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def drop(message: Message) -> None:
    return None


async def respond(send: Send) -> None:
    # A new start message each time: middlewares append Set-Cookie to its header list.
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send)


class PassThrough:
    """The floor: wrap ``send`` in a closure, forward everything."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped(message: Message) -> None:
            await send(message)

        await self.app(scope, receive, wrapped)


def session_app(action: str, load: Callable[[Scope], Awaitable[None]] | None = None) -> App:
    """The app of one scenario: ``untouched``, ``read``, ``write`` or ``seed`` (first cookie)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if action != "untouched" and load is not None:
            await load(scope)
        if action == "read":
            if scope["session"].get("user_id") != USER_ID:
                raise RuntimeError("the session read did not find its value")
        elif action == "write":
            session = scope["session"]
            session["n"] = session.get("n", 0) + 1
        elif action == "seed":
            scope["session"].update({"user_id": USER_ID, "n": 0, "_fresh": True})
        await respond(send)

    return app


async def _starsessions_load(scope: Scope) -> None:
    from starlette.requests import HTTPConnection
    from starsessions import load_session

    await load_session(HTTPConnection(scope))


def stacks() -> dict[str, tuple[Callable[[App], App], Callable[[Scope], Awaitable[None]] | None]]:
    """Each framework's middleware factory and, for starsessions, its explicit load step."""
    from litestar.middleware.session.base import SessionMiddleware as LitestarSessions
    from litestar.middleware.session.client_side import (
        ClientSideSessionBackend,
        CookieBackendConfig,
    )
    from starlette.middleware.sessions import SessionMiddleware as StarletteSessions
    from starsessions import CookieStore
    from starsessions import SessionMiddleware as StarSessions

    litestar_backend = ClientSideSessionBackend(CookieBackendConfig(secret=SECRET[:32].encode()))

    def asgisession(app: App) -> App:
        return SessionMiddleware(app, secret_key_base=SECRET)

    def starlette(app: App) -> App:
        return StarletteSessions(app, secret_key=SECRET)

    def litestar(app: App) -> App:
        return LitestarSessions(app, backend=litestar_backend)  # type: ignore[arg-type, return-value]

    def starsessions(app: App) -> App:
        store = CookieStore(secret_key=SECRET)
        return StarSessions(app, store=store, lifetime=14 * 24 * 3600, cookie_https_only=False)

    return {
        "asgisession": (asgisession, None),
        "starlette": (starlette, None),
        "litestar": (litestar, None),
        "starsessions": (starsessions, _starsessions_load),
    }


async def call(app: App, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Run one request; return the response headers (for the checks before timing)."""
    sent: list[Message] = []

    async def keep(message: Message) -> None:
        sent.append(message)

    await app({**SCOPE, "headers": headers, "state": {}}, receive, keep)
    start = next(m for m in sent if m["type"] == "http.response.start")
    if start["status"] != 200:
        raise RuntimeError(f"the app answered {start['status']}")
    return list(start["headers"])


def cookie_header(response_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The ``name=value`` part of every Set-Cookie, as one Cookie request header."""
    pairs = [v.split(b";", 1)[0] for k, v in response_headers if k.lower() == b"set-cookie"]
    if not pairs:
        raise RuntimeError("no Set-Cookie where one was expected")
    return b"; ".join(pairs)


def batch(app: App, headers: list[tuple[bytes, bytes]]) -> AsyncBatch:
    scope = {**SCOPE, "headers": headers}

    async def run(n: int) -> None:
        for _ in range(n):
            # A new scope per request, with a new "state" (Litestar caches parsed cookies there).
            await app({**scope, "state": {}}, receive, drop)

    return run


async def prepare() -> list[tuple[Measure, AsyncBatch]]:
    """Every candidate as (measure, batch), each checked once: cookies set when they must be."""
    timed = [
        (Measure(SECTION, "request", BARE, "us/req"), batch(bare_app, HEADERS)),
        (
            Measure(SECTION, "request", FLOOR_MW, "us/req"),
            batch(PassThrough(bare_app), HEADERS),
        ),
    ]
    for framework, (wrap, load) in stacks().items():
        seed = await call(wrap(session_app("seed", load)), HEADERS)
        with_cookie = [*HEADERS, (b"cookie", cookie_header(seed))]
        for scenario in SCENARIOS:
            action = "untouched" if scenario == "no cookie" else scenario
            app = wrap(session_app(action, load))
            headers = HEADERS if scenario == "no cookie" else with_cookie
            answered = await call(app, headers)
            if scenario == "write":
                cookie_header(answered)  # a write must send a cookie back
            timed.append((Measure(SECTION, scenario, framework, "us/req"), batch(app, headers)))
    return timed


async def run(mode: Mode, progress: Progress) -> SectionResult:
    result = SectionResult(SECTION)
    timed = await prepare()
    result.measures += [measure for measure, _ in timed]
    progress.begin(SECTION, f"{len(timed)} candidates x {mode.rounds} rounds")
    await rounds_async(timed, mode, progress)
    bare = result.measure("request", BARE)
    floor = result.measure("request", FLOOR_MW)
    result.overhead("pass-through floor: overhead over the bare app", floor, bare)
    for framework in FRAMEWORKS:
        for scenario in SCENARIOS:
            subject = result.measure(scenario, framework)
            is_ours = framework == "asgisession"
            target = None
            if is_ours and scenario == "read":
                target = 12.0
            elif is_ours and scenario == "write":
                target = 25.0
            result.overhead(
                f"{framework} {scenario}: overhead over the bare app", subject, bare, target=target
            )
            result.overhead(
                f"{framework} {scenario}: overhead / pass-through overhead",
                subject,
                bare,
                per=floor,
                target=1.5 if is_ours and scenario == "untouched" else None,
            )
    return result
