"""A worker, outside any web app, that lists a user's sessions and ends one or all of them.

It opens the same Redis store the web app's ``SessionMiddleware(store=..., user_key=...)``
writes to (same URL, same namespace) and uses the public revocation API: the next request
of a revoked browser finds no session. Run it from a checkout::

    python examples/session_worker.py --redis-url redis://127.0.0.1:6379/0 list 42
    python examples/session_worker.py revoke 42 3f9a            # a unique prefix of a key
    python examples/session_worker.py revoke-all 42

``list`` prints one line per live session: its store key (a hash, safe to print, useless
as a cookie) and when it ends at the latest. ``revoke USER`` without a key ends the user's
only session, and refuses to guess when there are several.

Exit codes: 0 done, 1 nothing to revoke, 2 bad arguments, 3 the store is unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import datetime, timezone

from asgisession import (
    ConfigurationError,
    StoreUnavailable,
    revoke_session,
    revoke_user,
    user_sessions,
)
from asgisession.stores import RedisStore


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="List or end a user's sessions in Redis.")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the web app's store URL ($REDIS_URL, else redis://127.0.0.1:6379/0)",
    )
    parser.add_argument(
        "--namespace",
        default="asgisession:",
        help="the web app's RedisStore namespace (asgisession:)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the user's live sessions")
    listing.add_argument("user")
    one = commands.add_parser("revoke", help="end one session (by a unique key prefix)")
    one.add_argument("user")
    one.add_argument("session", nargs="?", help="its key, or a unique prefix of it")
    every = commands.add_parser("revoke-all", help="end every session of the user")
    every.add_argument("user")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    async with RedisStore.from_url(args.redis_url, namespace=args.namespace) as store:
        if args.command == "revoke-all":
            ended = await revoke_user(store, args.user)
            print(f"ended {ended} session(s) of user {args.user}")
            return 0
        sessions = await user_sessions(store, args.user)
        if args.command == "list":
            for session in sessions:
                ends = datetime.fromtimestamp(session.expires_at, timezone.utc)
                print(f"{session.key}  ends by {ends:%Y-%m-%d %H:%M:%S} UTC")
            print(f"{len(sessions)} session(s) of user {args.user}")
            return 0
        prefix = args.session or ""
        matches = [s for s in sessions if s.key.startswith(prefix)]
        if len(matches) != 1:
            what = "no session" if not matches else f"{len(matches)} sessions"
            print(f"{what} of user {args.user} match {prefix!r}; run `list`", file=sys.stderr)
            return 1 if not matches else 2
        if not await revoke_session(store, args.user, matches[0].key):
            print(f"session {matches[0].key} had already ended", file=sys.stderr)
            return 1
        print(f"ended session {matches[0].key} of user {args.user}")
        return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except ConfigurationError as exc:
        print(f"session_worker: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"session_worker: the store is unavailable: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
