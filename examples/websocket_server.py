"""A ``websockets`` server (not ASGI) that knows the web app's users by their session cookie.

The web app runs ``SessionMiddleware`` with a server-side store and ``user_key``::

    store = stores.from_url(os.environ["SESSION_STORE_URL"])   # e.g. redis://127.0.0.1:6379/0
    app = SessionMiddleware(app, secret_key_base=os.environ["SECRET_KEY_BASE"], store=store,
                            user_key="user_id")

This server opens the same store with the same settings through :class:`asgisession.Sessions`
and, on every WebSocket handshake, loads the session from the request's Cookie header with
every check the web app makes (seal, expiry, rotation, the record still in the store). A
handshake without a logged-in session is refused with HTTP 401 before the upgrade, its
reason in the body. Accepted connections are kept per user; every ``--check-every`` seconds
the server reads each connected user's live sessions from the store's user index (one read
per user, however many connections) and closes, with code 1008 "session ended", every
connection whose session is no longer listed: logged out, revoked one by one
(``revoke_session``) or everywhere (``revoke_user``, e.g. the web app's "log out
everywhere" button), or expired. Run it from a checkout::

    SECRET_KEY_BASE=... python examples/websocket_server.py --store redis://127.0.0.1:6379/0

Browsers send cookies with a WebSocket handshake from any page, so give the web app's
origin with ``--origin https://app.example`` (repeatable): a handshake from another origin
is then refused (403) before its cookie is read.

Each connection is greeted with ``{"user": ...}`` and gets every text message back echoed
as ``{"user": ..., "echo": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from collections import defaultdict
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Origin

from asgisession import Sessions, stores, user_sessions

logger = logging.getLogger("websocket_server")

#: The session key naming the user: the web app's ``user_key``.
USER_KEY = "user_id"
#: The close code and reason of a connection whose session ended.
SESSION_ENDED = (1008, "session ended")


class Connections:
    """The open connections of each user, with the store key of the session behind each."""

    def __init__(self) -> None:
        self.by_user: dict[str, dict[ServerConnection, str]] = defaultdict(dict)

    def add(self, user: str, connection: ServerConnection, store_key: str) -> None:
        self.by_user[user][connection] = store_key

    def remove(self, user: str, connection: ServerConnection) -> None:
        connections = self.by_user.get(user, {})
        connections.pop(connection, None)
        if not connections:
            self.by_user.pop(user, None)


class SessionGate:
    """Authenticates handshakes from the session cookie and ends connections with it."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.connections = Connections()
        self.store = sessions.store
        if self.store is None:
            raise SystemExit("this example needs the web app's server-side store (--store)")

    async def authenticate(self, connection: ServerConnection, request: Request) -> Response | None:
        """``process_request``: ``None`` lets the handshake go on; a Response refuses it."""
        session = await self.sessions.load(
            cookie_header=request.headers.get_all("Cookie"), read_only=True
        )
        info = self.sessions.info(session)
        user = session.get(USER_KEY)
        if user is None or info.store_key is None:
            why = info.rejection.value if info.rejection else "no session cookie"
            if info.rejection is None and session:
                why = "not logged in"
            return refuse(HTTPStatus.UNAUTHORIZED, f"no valid session: {why}")
        assert self.store is not None
        listed = {s.key for s in await user_sessions(self.store, user)}
        if info.store_key not in listed:  # else the watcher would close it at once
            logger.warning("a session of user %s is not in the user index: is the web app's "
                           "user_key=%r?", user, USER_KEY)  # fmt: skip
            return refuse(HTTPStatus.UNAUTHORIZED, "no valid session: not in the user index")
        connection.user = str(user)  # type: ignore[attr-defined]
        connection.store_key = info.store_key  # type: ignore[attr-defined]
        return None

    async def handle(self, connection: ServerConnection) -> None:
        user: str = connection.user  # type: ignore[attr-defined]
        self.connections.add(user, connection, connection.store_key)  # type: ignore[attr-defined]
        try:
            await connection.send(json.dumps({"user": user}))
            async for message in connection:
                await connection.send(json.dumps({"user": user, "echo": message}))
        except ConnectionClosed:
            pass
        finally:
            self.connections.remove(user, connection)

    async def close_ended(self) -> int:
        """Close every connection whose session is gone; how many were closed."""
        assert self.store is not None
        closed = 0
        for user, connections in list(self.connections.by_user.items()):
            live = {s.key for s in await user_sessions(self.store, user)}
            for connection, store_key in list(connections.items()):
                if store_key not in live:
                    logger.info("closing a connection of user %s: its session ended", user)
                    await connection.close(*SESSION_ENDED)
                    closed += 1
        return closed

    async def watch(self, every: float) -> None:
        """Run :meth:`close_ended` every ``every`` seconds; a store outage is logged, not fatal."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.close_ended()
            except Exception:  # the store may be down a moment: keep watching
                logger.exception("could not check the sessions")


def refuse(status: HTTPStatus, text: str) -> Response:
    headers = Headers([("Content-Type", "text/plain; charset=utf-8")])
    return Response(status.value, status.phrase, headers, f"{text}\n".encode())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A websockets server on the web app's sessions.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--store",
        default=os.environ.get("SESSION_STORE_URL", "redis://127.0.0.1:6379/0"),
        help="the web app's store URL ($SESSION_STORE_URL, else redis://127.0.0.1:6379/0)",
    )
    parser.add_argument("--cookie-name", default="session", help="the web app's cookie name")
    parser.add_argument(
        "--check-every", type=float, default=2.0, help="seconds between session checks (2)"
    )
    parser.add_argument(
        "--origin", action="append", default=[], help="an allowed Origin (repeatable)"
    )
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    secret = os.environ.get("SECRET_KEY_BASE")
    if not secret:
        raise SystemExit("SECRET_KEY_BASE is not set: give the web app's secret.")
    async with stores.from_url(args.store) as store:
        sessions = Sessions(
            secret_key_base=secret, store=store, user_key=USER_KEY, cookie_name=args.cookie_name
        )
        gate = SessionGate(sessions)
        origins: list[Origin | None] | None = None
        if args.origin:  # clients that send no Origin (not browsers) stay allowed
            origins = [Origin(origin) for origin in args.origin] + [None]
        async with serve(
            gate.handle, args.host, args.port, process_request=gate.authenticate, origins=origins
        ) as server:
            watcher = asyncio.create_task(gate.watch(args.check_every))
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, server.close)
            loop.add_signal_handler(signal.SIGINT, server.close)
            print(f"serving on ws://{args.host}:{args.port}", flush=True)
            await server.wait_closed()
            watcher.cancel()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
