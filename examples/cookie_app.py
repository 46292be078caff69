"""A small Starlette app on asgisession's default (encrypted) cookie store.

Serve it with::

    SECRET_KEY_BASE=$(python -m asgisession secret) \
        python -m uvicorn examples.cookie_app:app

GET / counts your visits and shows the session; POST /login and POST /logout change it;
GET /api/session returns it as JSON.
"""

from __future__ import annotations

import html
import json
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from asgisession import ConfigurationError, Session, SessionMiddleware, secret_key_base_from_env
from asgisession.cookies import MAX_COOKIE_SIZE, cookie_values

COOKIE_NAME = "session"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>asgisession demo</title></head>
<body>
<h1>asgisession demo</h1>
<p>{status}</p>
<p>Visits in this session: {visits}</p>
{form}
<h2>Session</h2>
<pre>{contents}</pre>
<p>Cookie as received: {size} of {limit} bytes (name + value).</p>
<p><a href="/api/session">/api/session</a></p>
</body></html>
"""
LOGIN_FORM = """<form method="post" action="/login">
<label>Username <input name="username" maxlength="64" required></label>
<button>Log in</button></form>"""
LOGOUT_FORM = """<form method="post" action="/logout"><button>Log out</button></form>"""


def secret_key_base() -> list[str]:
    """The secrets from $SECRET_KEY_BASE (or $SECRET_KEY_BASE_FILE); else refuse to start."""
    try:
        return secret_key_base_from_env()
    except ConfigurationError as exc:
        raise SystemExit(f"{exc}\nOr run `python -m asgisession secret` to make one.") from None


def session_of(request: Request) -> Session:
    """The request's asgisession Session (Starlette types request.session as a dict)."""
    session: Session = request.scope["session"]
    return session


async def form_field(request: Request, name: str) -> str:
    """One field of a urlencoded form body, parsed without python-multipart."""
    body = (await request.body()).decode("utf-8", "replace")
    return parse_qs(body).get(name, [""])[0].strip()


async def home(request: Request) -> HTMLResponse:
    session = session_of(request)
    session["visits"] = session.get("visits", 0) + 1
    user = session.get("user")
    values = cookie_values(request.scope["headers"], COOKIE_NAME)
    page = PAGE.format(
        status=f"Logged in as <b>{html.escape(user)}</b>." if user else "Not logged in.",
        visits=session["visits"],
        form=LOGOUT_FORM if user else LOGIN_FORM,
        contents=html.escape(json.dumps(dict(session), indent=2)),
        size=len(COOKIE_NAME) + len(values[0]) if values else 0,
        limit=MAX_COOKIE_SIZE,
    )
    return HTMLResponse(page)


async def login(request: Request) -> Response:
    username = await form_field(request, "username")
    if not 0 < len(username) <= 64:
        return HTMLResponse("A username of 1 to 64 characters, please.", status_code=400)
    session = session_of(request)
    session.regenerate()  # a new identity at login defeats session fixation
    session["user"] = username
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> Response:
    session_of(request).reset()
    return RedirectResponse("/", status_code=303)


async def api_session(request: Request) -> JSONResponse:
    return JSONResponse(dict(request.session))


routes = [
    Route("/", home),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/api/session", api_session),
]
app = SessionMiddleware(
    Starlette(routes=routes), secret_key_base=secret_key_base(), cookie_name=COOKIE_NAME
)
