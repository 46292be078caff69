"""The demo app: a plain ASGI app that uses asgisession the way an application should.

:func:`build_app` wraps it as ``SessionMiddleware(CSRFMiddleware(app))``: the session
middleware outside, so the CSRF checks can read the session. Every page that changes
something is a POST answered with a redirect to ``/`` (post/redirect/get), which puts a
flash message in the session for the next page to show once. It imports asgisession the
way an application would.

- login regenerates the session (a new identity defeats session fixation);
- logout resets it; "log out everywhere" revokes every session of the user;
- on a server store, the user's sessions are listed (this browser's marked) and each can
  be ended;
- the page shows the session's data but never the library's own keys (the CSRF secret):
  only that they are there;
- "grow" adds to the session until, on the cookie store, the middleware refuses to send a
  cookie over 4096 bytes (:class:`~asgisession.errors.CookieOverflow`) and says why.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from asgisession import (
    CookieOverflow,
    CSRFMiddleware,
    CSRFReason,
    Session,
    SessionMiddleware,
    Sessions,
    StoreUnavailable,
    csrf_token,
    flash,
    revoke_session,
    revoke_user,
    user_sessions,
)
from asgisession._types import ASGIApp, Receive, Scope, Send
from asgisession.cookies import cookie_values
from asgisession.csrf.reasons import _explain
from asgisession.flash import FLASH_KEY
from asgisession.stores import MemoryStore, Store

from .page import HomeView, error_page, home_page

__all__ = ["COOKIE_NAME", "USER_KEY", "DemoApp", "build_app"]

COOKIE_NAME = "session"
#: The session key that names the user, so "log out everywhere" can find their sessions.
USER_KEY = "user"
MAX_FORM_BYTES = 16 * 1024
BALLAST_STEP = 256  # random bytes per "grow", as 512 hex characters

Handler = Callable[["Request"], Awaitable[None]]


class Request:
    """One HTTP request as the handlers need it: the session, the form, and replies."""

    def __init__(self, scope: Scope, send: Send, form: dict[str, str]) -> None:
        self.scope = scope
        self.send = send
        self.form = form

    @property
    def session(self) -> Session:
        session: Session = self.scope["session"]
        return session

    def notice(self, text: str, kind: str = "notice") -> None:
        """A message for the next page (a flash)."""
        flash(self.scope)[kind] = text

    async def html(self, body: str, status: int = 200) -> None:
        data = body.encode()
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(data)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": data})

    async def redirect(self, location: str = "/") -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")],
            }
        )
        await self.send({"type": "http.response.body", "body": b""})


class DemoApp:
    """The demo's routes. ``store`` is the server-side store, or ``None`` for cookies.

    ``revocations`` keeps per-user "not before" times (and, on a server store, the
    per-user session lists); it is the session store itself, or a MemoryStore for cookies.
    Both are closed at lifespan shutdown: the app owns them.
    """

    def __init__(self, store: Store | None, revocations: Store, description: str) -> None:
        self.store = store
        self.revocations = revocations
        self.description = description
        #: The middleware's sessions (set by :func:`build_app`), to tell which listed
        #: session is this browser's.
        self.sessions: Sessions | None = None
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/"): self.home,
            ("POST", "/login"): self.login,
            ("POST", "/logout"): self.logout,
            ("POST", "/logout-everywhere"): self.logout_everywhere,
            ("POST", "/sessions/end"): self.end_session,
            ("POST", "/note"): self.note,
            ("POST", "/grow"): self.grow,
            ("POST", "/shrink"): self.shrink,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        handler = self.routes.get((scope["method"], scope["path"]))
        request = Request(scope, send, await read_form(receive))
        if handler is None:
            await request.html(error_page("Not found", f"Nothing at {scope['path']}."), 404)
            return
        await handler(request)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        """Check the store answers at startup; close the stores at shutdown."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.store is not None:
                        await self.store.load("asgisession-demo:startup-check")
                except StoreUnavailable as exc:
                    await self.close()
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def close(self) -> None:
        if self.store is not None:
            await self.store.aclose()
        if self.revocations is not self.store:
            await self.revocations.aclose()

    # -- the routes ------------------------------------------------------------------------

    async def home(self, request: Request) -> None:
        session = request.session
        user = session.get(USER_KEY)
        sessions = None
        if self.store is not None and user is not None:
            sessions = await user_sessions(self.store, user)
        values = cookie_values(request.scope.get("headers", []), COOKIE_NAME)
        token = csrf_token(request.scope)  # before the data is read: it may add the secret
        messages = [(kind, str(text)) for kind, text in flash(request.scope).items()]
        view = HomeView(
            store=self.description,
            token=token,
            user=user,
            messages=messages,
            data={k: v for k, v in session.items() if not is_internal(k)},
            internal=sorted(k for k in session if is_internal(k)),
            cookie_size=len(COOKIE_NAME) + len(values[0]) if values else 0,  # name + value
            sessions=sessions,
            this_session=self.sessions.info(session).store_key if self.sessions else None,
        )
        await request.html(home_page(view))

    async def login(self, request: Request) -> None:
        name = request.form.get("username", "").strip()
        if not 0 < len(name) <= 64:
            request.notice("Give a name of 1 to 64 characters.", "alert")
            await request.redirect()
            return
        request.session.regenerate()  # a new identity at login: defeats session fixation
        request.session[USER_KEY] = name
        request.notice(f"Logged in as {name}. The session got a new identity.")
        await request.redirect()

    async def logout(self, request: Request) -> None:
        request.session.reset()
        request.notice("Logged out: the session and its cookie are gone.")
        await request.redirect()

    async def logout_everywhere(self, request: Request) -> None:
        user = request.session.get(USER_KEY)
        if user is not None:
            ended = await revoke_user(self.revocations, user)
            request.session.reset()
            where = "" if self.store is None else f" ({ended} server-side sessions ended)"
            request.notice(f"Logged out everywhere{where}.")
        await request.redirect()

    async def end_session(self, request: Request) -> None:
        user = request.session.get(USER_KEY)
        key = request.form.get("key", "")
        if self.store is not None and user is not None:
            ended = await revoke_session(self.store, user, key)
            request.notice("That session has ended." if ended else "No such session of yours.")
        await request.redirect()

    async def note(self, request: Request) -> None:
        request.session["note"] = request.form.get("note", "")[:200]
        request.notice("Note saved: the form carried a valid authenticity token.")
        await request.redirect()

    async def grow(self, request: Request) -> None:
        session = request.session
        session["ballast"] = session.get("ballast", "") + secrets.token_hex(BALLAST_STEP)
        request.notice(f"The session holds {len(session['ballast'])} bytes of ballast.")
        try:
            await request.redirect()
        except CookieOverflow as exc:
            # Raised by the middleware before anything was sent: the browser keeps its
            # previous cookie, so the session is as it was before this click.
            await request.html(error_page("Cookie too large", str(exc)), 413)

    async def shrink(self, request: Request) -> None:
        request.session.pop("ballast", None)
        request.notice("Ballast dropped.")
        await request.redirect()


def is_internal(key: str) -> bool:
    """Whether a session key is the library's own (the CSRF secret, flash): never shown.

    Keys starting with ``_`` are reserved for such things (``_csrf_token`` is a secret: whoever
    reads it can forge this user's CSRF tokens), and flash messages are shown as messages.
    """
    return key.startswith("_") or key == FLASH_KEY


async def read_form(receive: Receive) -> dict[str, str]:
    """The request body as a urlencoded form (first value of each field); capped in size."""
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > MAX_FORM_BYTES:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"))
    return {name: values[0] for name, values in fields.items()}


async def csrf_refused(scope: Scope, receive: Receive, send: Send, reason: CSRFReason) -> None:
    """CSRFMiddleware's ``on_failure``: the demo's own 403 page, naming the reason."""
    explained = _explain(reason, header="X-CSRF-Token", field="authenticity_token")
    message = f"This request failed the CSRF check ({reason.value}): {explained}."
    await Request(scope, send, {}).html(error_page("Request refused", message), 403)


def build_app(
    secret_key_base: str | list[str], store: Store | None, *, description: str
) -> ASGIApp:
    """The demo, wrapped in the session and CSRF middleware; ``store=None`` uses cookies.

    On the cookie store, a :class:`~asgisession.stores.memory.MemoryStore` in this process
    keeps the "log out everywhere" times (``revocation_store``).
    """
    revocations = store if store is not None else MemoryStore()
    demo = DemoApp(store, revocations, description)
    middleware = SessionMiddleware(
        CSRFMiddleware(demo, on_failure=csrf_refused),
        secret_key_base=secret_key_base,
        cookie_name=COOKIE_NAME,
        user_key=USER_KEY,
        store=store,
        revocation_store=revocations if store is None else None,
    )
    demo.sessions = Sessions.from_middleware(middleware)
    return middleware
