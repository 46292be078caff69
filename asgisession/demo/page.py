"""The demo's HTML: one page and one error page, built from escaped pieces.

Every value that comes from the session, a form or a store goes through :func:`escape`;
the fixed markup around it is written here, so nothing user-supplied is ever markup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from typing import Any

from asgisession import UserSession
from asgisession.cookies import MAX_COOKIE_SIZE

__all__ = ["HomeView", "error_page", "home_page"]

_STYLE = """
body { font: 16px/1.45 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; }
section { border-top: 1px solid #ccc; padding: .25rem 0 .75rem; }
form { display: inline-block; margin: .25rem .5rem .25rem 0; }
pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; white-space: pre-wrap; }
.flash { background: #e7f5e7; border: 1px solid #9c9; padding: .5rem; }
.flash.alert, .error { background: #fbeaea; border: 1px solid #d99; padding: .5rem; }
meter { width: 16rem; }
"""


@dataclass
class HomeView:
    """What the home page shows; the app fills it in, :func:`home_page` renders it."""

    store: str
    token: str
    user: str | None
    data: dict[str, Any]
    cookie_size: int
    messages: list[tuple[str, str]] = field(default_factory=list)
    #: The session's own keys (the CSRF secret, say): named on the page, never shown.
    internal: list[str] = field(default_factory=list)
    #: ``None`` on the cookie store, where there is no server-side list to show.
    sessions: list[UserSession] | None = None
    #: The store key of this browser's session, to mark it in :attr:`sessions`.
    this_session: str | None = None


def _layout(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n<h1>asgisession demo</h1>\n{body}\n</body></html>\n"
    )


def _form(action: str, token: str | None, label: str, fields: str = "", **attrs: str) -> str:
    """A POST form with one button; ``token=None`` leaves out the authenticity token."""
    hidden = (
        ""
        if token is None
        else f'<input type="hidden" name="authenticity_token" value="{escape(token)}">'
    )
    extra = "".join(f' {name}="{escape(value)}"' for name, value in attrs.items())
    return (
        f'<form method="post" action="{escape(action)}"{extra}>{hidden}{fields}'
        f"<button>{escape(label)}</button></form>"
    )


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def home_page(view: HomeView) -> str:
    """The whole demo on one page."""
    token = view.token
    flashes = "".join(
        f'<p class="flash {escape(kind)}" role="status">{escape(text)}</p>\n'
        for kind, text in view.messages
    )
    if view.user is None:
        who = '<p id="who">Not logged in.</p>\n' + _form(
            "/login",
            token,
            "Log in",
            '<label>Name <input name="username" maxlength="64" required></label> ',
        )
    else:
        who = (
            f'<p id="who">Logged in as <b>{escape(view.user)}</b>.</p>\n'
            + _form("/logout", token, "Log out")
            + _form("/logout-everywhere", token, "Log out everywhere")
        )
    size = view.cookie_size
    cookie = (
        f'<p>The session cookie as your browser sent it: <b id="cookie-size">{size}</b> of '
        f"{MAX_COOKIE_SIZE} bytes (name + value). "
        f'<meter min="0" max="{MAX_COOKIE_SIZE}" high="{MAX_COOKIE_SIZE * 3 // 4}" '
        f'value="{size}"></meter></p>\n'
    )
    contents = escape(json.dumps(view.data, indent=2, sort_keys=True))
    internal = (
        '<p id="internal-keys">Also in the session, not shown here: '
        + ", ".join(f"<code>{escape(key)}</code>" for key in view.internal)
        + " (asgisession's own: the CSRF secret is a secret, and flash messages show above)."
        "</p>\n"
        if view.internal
        else ""
    )
    csrf = (
        "<p>Both buttons post the same form; only the first carries the authenticity token, "
        "so CSRFMiddleware refuses the second with 403.</p>\n"
        + _form("/note", token, "Save note", '<input name="note" maxlength="200"> ', id="note")
        + _form("/note", None, "Save note without the token", '<input name="note" value="x"> ')
    )
    grow = (
        "<p>Adds 512 random bytes to the session. On the cookie store the cookie grows until "
        "the middleware refuses to send it (CookieOverflow); a server store keeps the data and "
        "the cookie stays small.</p>\n"
        + _form("/grow", token, "Grow the session", id="grow")
        + _form("/shrink", token, "Drop the ballast")
    )
    return _layout(
        "asgisession demo",
        f"<p>Store: {escape(view.store)}</p>\n{flashes}"
        f"<section><h2>You</h2>\n{who}</section>\n"
        f"<section><h2>The session</h2>\n{cookie}"
        f'<pre id="session">{contents}</pre>\n{internal}</section>\n'
        f"<section><h2>A CSRF-protected form</h2>\n{csrf}</section>\n"
        f"<section><h2>The 4096-byte limit</h2>\n{grow}</section>\n" + _sessions(view),
    )


def _sessions(view: HomeView) -> str:
    if view.user is None:
        return ""
    if view.sessions is None:
        return (
            "<section><h2>Your sessions</h2>\n<p>Cookie sessions live only in browsers, so "
            "there is no list; &quot;Log out everywhere&quot; stores a time before which "
            "this user's cookies are refused.</p></section>\n"
        )
    rows = "".join(
        (
            f'<li class="this-browser"><code>{escape(s.key[-12:])}</code> <b>(this browser)</b> '
            if s.key == view.this_session
            else f"<li><code>{escape(s.key[-12:])}</code> "
        )
        + f"until {escape(_when(s.expires_at))} "
        + _form("/sessions/end", view.token, "End it", _hidden("key", s.key))
        + "</li>\n"
        for s in view.sessions
    )
    others = sum(1 for s in view.sessions if s.key != view.this_session)
    if others == 0:
        hint = "Log in as the same name from another browser to see a second session here."
    else:
        hint = (
            f"{others} other {'browser is' if others == 1 else 'browsers are'} logged in as "
            "you: end one here, and its next request finds itself logged out."
        )
    return (
        f"<section><h2>Your sessions ({len(view.sessions)})</h2>\n"
        f'<p id="sessions-hint">{escape(hint)}</p>\n'
        f'<ul id="sessions">\n{rows}</ul></section>\n'
    )


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'


def error_page(title: str, message: str) -> str:
    """A page that shows one error message and the way back."""
    return _layout(
        title,
        f'<p class="error" role="alert">{escape(message)}</p>\n<p><a href="/">Back</a></p>',
    )
