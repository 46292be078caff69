"""Test helpers: a session cookie for given data, and the session a response set.

Both go through :class:`~asgisession.sessions.Sessions`, so a cookie made here is one the
app's ``SessionMiddleware`` opens (give ``Sessions`` the app's settings, or
``Sessions.from_middleware(app)``), and a response is read with every check the
middleware makes. With a server-side store, :func:`make_cookie` writes the record, as a
login would.

::

    sessions = Sessions(secret_key_base=SECRET)
    cookie = await make_cookie(sessions, {"user_id": 42})
    response = await client.get("/me", cookies={sessions.cookie.name: cookie})
    session = await read_session(sessions, response)

The ``_sync`` variants run the same coroutine to completion on an event loop of their own
(``anyio.run``), for synchronous tests (Starlette's ``TestClient``, Django's test
``Client``) with the cookie store or a store not bound to one loop (``MemoryStore``,
``SQLiteStore``). Under a ``TestClient`` with Redis or memcached, run the coroutine on the
client's own loop instead: ``client.portal.call(make_cookie, sessions, data)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from http.cookies import Morsel
from typing import Any

import anyio

from .session import Session
from .sessions import Sessions

__all__ = [
    "make_cookie",
    "make_cookie_sync",
    "read_session",
    "read_session_sync",
    "set_cookie_values",
]


async def make_cookie(sessions: Sessions, data: Mapping[str, Any] | None = None) -> str:
    """The value of a valid session cookie holding ``data`` (its record written, if stored).

    The session is new and regenerated, as after a login; ``data`` is checked by the
    serializer as the middleware checks it.

    :raises SerializationError: for a value the serializer would not read back as it is.
    :raises ValueError: for empty ``data``: an empty session is never issued a cookie.
    """
    session = await sessions.load()
    session.regenerate()
    session.update(data or {})
    set_cookie = await sessions.commit(session)
    if set_cookie is None:
        raise ValueError("an empty session is never issued a cookie: give it some data")
    return _value(set_cookie)


def make_cookie_sync(sessions: Sessions, data: Mapping[str, Any] | None = None) -> str:
    """:func:`make_cookie` for synchronous tests (see the module's note on event loops)."""
    return anyio.run(partial(make_cookie, sessions, data))


async def read_session(sessions: Sessions, response: object) -> Session | None:
    """The session ``response`` set, loaded; ``None`` when it set no session cookie.

    A cookie that does not open gives an empty session with its
    :attr:`~asgisession.session.Session.rejection`; a deletion gives an empty session
    without one. Read-only: nothing is written.

    :param response: an httpx or Starlette ``TestClient`` response, a Quart test
        response, a Django test response, or the ``Set-Cookie`` values themselves.
    """
    values = set_cookie_values(response, sessions.cookie.name)
    if not values:
        return None
    return await sessions.load(cookie=values[-1], read_only=True)


def read_session_sync(sessions: Sessions, response: object) -> Session | None:
    """:func:`read_session` for synchronous tests (see the module's note on event loops)."""
    return anyio.run(partial(read_session, sessions, response))


def set_cookie_values(response: object, name: str) -> list[str]:
    """The values ``response`` sets for the cookie ``name``, in order (a deletion is ``""``).

    ``response`` is a ``Set-Cookie`` header value or several, or a response whose headers
    list them (httpx, Starlette's ``TestClient``, Quart, Werkzeug) or whose ``cookies`` is a
    ``http.cookies.SimpleCookie`` (Django).
    """
    headers = _set_cookie_headers(response)
    if headers is None:
        cookies = getattr(response, "cookies", None)
        morsel = cookies.get(name) if isinstance(cookies, Mapping) else None
        if isinstance(morsel, Morsel):
            return [morsel.value]
        if cookies is None:
            raise TypeError(
                f"cannot find Set-Cookie headers on {type(response).__name__}: give the "
                "response of httpx, Starlette's TestClient, Quart or Django, or the headers"
            )
        return []
    values = []
    for header in headers:
        cookie_name, _, rest = header.partition("=")
        if cookie_name.strip() == name:
            values.append(rest.split(";", 1)[0].strip())
    return values


def _set_cookie_headers(response: object) -> list[str] | None:
    if isinstance(response, str | bytes):
        response = [response]
    if isinstance(response, list | tuple):
        return [i.decode("latin-1") if isinstance(i, bytes) else str(i) for i in response]
    headers = getattr(response, "headers", None)
    for method in ("get_list", "getlist", "get_all"):  # httpx; Werkzeug/Quart; others
        get = getattr(headers, method, None)
        if get is not None:
            return [str(value) for value in get("set-cookie")]
    return None


def _value(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].partition("=")[2]
