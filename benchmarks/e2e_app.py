"""The apps that ``bench_e2e.py`` serves with uvicorn: a bare app, and the same app with sessions.

``uvicorn --factory benchmarks.e2e_app:factory`` builds the app named by the environment:

``ASGISESSION_BENCH_APP``
    ``bare``; ``cookie-read`` (cookie store, the session read); or ``<store>-write`` for
    ``cookie``, ``memory``, ``sqlite``, ``redis``, ``memcached`` (the session read, and one
    key written, on every request). For ``benchmarks/e2e_gap.py``: ``bare-vary`` (the bare
    app adding the ``Vary: Cookie`` a session read adds) and ``bare-setcookie`` (adding the
    headers a session write adds: ``Vary``, a ``Set-Cookie`` of
    ``ASGISESSION_BENCH_SETCOOKIE``'s value and ``Cache-Control: private``).
    The peers, each doing the same read and write: ``starlette-cookie`` (Starlette's
    ``SessionMiddleware``), ``starsessions-redis`` (starsessions' ``RedisStore``, loaded with
    ``load_session``), ``litestar-redis`` (a Litestar app with its server-side sessions on
    its ``RedisStore``) and ``litestar-bare`` (the same Litestar app without sessions). The
    floor of each server store: ``raw-redis``, ``raw-memcached``, ``raw-sqlite`` and
    ``raw-postgres``, an app that makes the store's read and write itself (one key, a
    payload of the session's size; the SQL ones with the stores' own statements).
``ASGISESSION_BENCH_GC``
    ``off``: the server runs with the garbage collector disabled (to measure what it costs).
``ASGISESSION_BENCH_PORT``
    the redis-server or memcached port; ``ASGISESSION_BENCH_DB`` the SQLite file;
    ``ASGISESSION_BENCH_PG`` the PostgreSQL URL.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

from asgisession import SessionMiddleware
from asgisession._types import Receive, Scope, Send
from asgisession.stores.base import Store

from .codec import SECRET

BODY = b"ok\n"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())]


async def _respond(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": list(HEADERS)})
    await send({"type": "http.response.body", "body": BODY})


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await _respond(send)


def _bare_with(extra: list[tuple[bytes, bytes]]) -> Any:
    headers = [*HEADERS, *extra]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
            await send({"type": "http.response.body", "body": BODY})

    return app


async def reads(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the session (and creates one on a request without a cookie, for the priming)."""
    if scope["type"] == "http":
        session = scope["session"]
        if session.get("user_id") is None:
            session["user_id"] = 48213
        await _respond(send)


async def writes(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        session = scope["session"]
        session["user_id"] = 48213
        session["n"] = session.get("n", 0) + 1
        await _respond(send)


def _store(kind: str) -> Store | None:
    port = int(os.environ.get("ASGISESSION_BENCH_PORT", "0"))
    if kind == "cookie":
        return None
    if kind == "memory":
        from asgisession.stores import MemoryStore

        return MemoryStore()
    if kind == "sqlite":
        from asgisession.stores import SQLiteStore

        return SQLiteStore(os.environ["ASGISESSION_BENCH_DB"])
    if kind == "redis":
        import redis.asyncio as aioredis

        from asgisession.stores import RedisStore

        return RedisStore(aioredis.Redis(host="127.0.0.1", port=port))
    if kind == "memcached":
        from asgisession.stores import MemcachedStore

        return MemcachedStore("127.0.0.1", port)
    if kind == "postgres":
        from asgisession.stores import PostgresStore

        return PostgresStore(os.environ["ASGISESSION_BENCH_PG"], table="bench_e2e")
    raise SystemExit(f"unknown store {kind!r}")


#: What the raw-hops apps store: the size of the session the others write.
RAW_KEY = "asgisession-bench:raw"
RAW_TTL = 14 * 24 * 3600


def _raw_redis(port: int) -> Any:
    import redis.asyncio as aioredis

    client = aioredis.Redis(host="127.0.0.1", port=port)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            value = await client.get(RAW_KEY)
            n = int(value[-3:-1]) if value else 0
            await client.set(RAW_KEY, b'{"user_id":48213,"n":%02d}' % ((n + 1) % 100), ex=RAW_TTL)
            await _respond(send)

    return app


def _raw_memcached(port: int) -> Any:
    import aiomcache

    client = aiomcache.Client("127.0.0.1", port)
    key = RAW_KEY.encode()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            value = await client.get(key)
            n = int(value[-3:-1]) if value else 0
            payload = b'{"user_id":48213,"n":%02d}' % ((n + 1) % 100)
            await client.set(key, payload, exptime=RAW_TTL)
            await _respond(send)

    return app


def _raw_sqlite(path: str) -> Any:
    import aiosqlite

    from asgisession.stores._sqlite_statements import Statements

    sql = Statements("bench_raw")
    opened: list[aiosqlite.Connection] = []
    key = RAW_KEY

    async def connection() -> aiosqlite.Connection:
        if not opened:  # the priming request, alone: no race
            conn = await aiosqlite.connect(path, isolation_level=None)
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute(sql.schema[0].replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
            opened.append(conn)
        return opened[0]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            conn = await connection()
            async with conn.execute(sql.load, (key, time.time())) as cursor:
                row = await cursor.fetchone()
            n = int(bytes(row[0])[-3:-1]) if row else 0
            payload = b'{"user_id":48213,"n":%02d}' % ((n + 1) % 100)
            await conn.execute(sql.upsert, (key, payload, time.time() + RAW_TTL))
            await _respond(send)

    return app


def _raw_postgres(url: str) -> Any:
    import asyncpg

    from asgisession.stores import PostgresStore
    from asgisession.stores._postgres_statements import Statements

    sql = Statements("bench_raw")
    pools: list[Any] = []

    async def pool() -> Any:
        if not pools:  # the priming request, alone: no race
            schema = PostgresStore(url, table="bench_raw")  # creates the table
            await schema.ping()
            await schema.aclose()
            pools.append(await asyncpg.create_pool(url, min_size=1, max_size=10))
        return pools[0]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            conns = await pool()
            value = await conns.fetchval(sql.load, RAW_KEY)
            n = int(value[-3:-1]) if value else 0
            payload = b'{"user_id":48213,"n":%02d}' % ((n + 1) % 100)
            await conns.execute(sql.upsert, RAW_KEY, payload, RAW_TTL)
            await _respond(send)

    return app


def _peer(name: str, port: int) -> Any:
    """A peer's app doing what ``writes`` does (see the module docstring)."""
    if name == "starlette-cookie":
        from starlette.middleware.sessions import SessionMiddleware as StarletteSessions

        return StarletteSessions(writes, secret_key=SECRET)
    if name == "starsessions-redis":
        import redis.asyncio as aioredis
        from starlette.requests import HTTPConnection
        from starsessions import SessionMiddleware as StarSessions
        from starsessions import load_session
        from starsessions.stores.redis import RedisStore as StarRedis

        async def loads_first(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                await load_session(HTTPConnection(scope))
            await writes(scope, receive, send)

        return StarSessions(
            loads_first,
            store=StarRedis(connection=aioredis.Redis(host="127.0.0.1", port=port)),
            lifetime=14 * 24 * 3600,
            cookie_https_only=False,
        )
    from litestar import Litestar, Request, get

    @get("/", media_type="text/plain", sync_to_thread=False)
    def handler(request: Request[Any, Any, Any]) -> str:
        if name == "litestar-redis":
            session = request.session
            session["user_id"] = 48213
            session["n"] = session.get("n", 0) + 1
        return BODY.decode()

    if name == "litestar-bare":
        return Litestar(route_handlers=[handler], debug=False)
    import redis.asyncio as aioredis
    from litestar.middleware.session.server_side import ServerSideSessionConfig
    from litestar.stores.redis import RedisStore as LitestarRedis

    return Litestar(
        route_handlers=[handler],
        middleware=[ServerSideSessionConfig().middleware],
        stores={"sessions": LitestarRedis(aioredis.Redis(host="127.0.0.1", port=port))},
        debug=False,
    )


def factory() -> Any:
    """The app named by ``ASGISESSION_BENCH_APP``."""
    name = os.environ.get("ASGISESSION_BENCH_APP", "bare")
    if os.environ.get("ASGISESSION_BENCH_GC") == "off":
        gc.disable()
    if name == "bare":
        return bare
    if name == "bare-vary":
        return _bare_with([(b"vary", b"Cookie")])
    if name == "bare-setcookie":
        set_cookie = os.environ.get("ASGISESSION_BENCH_SETCOOKIE", "session=x; Path=/")
        return _bare_with(
            [
                (b"vary", b"Cookie"),
                (b"set-cookie", set_cookie.encode("latin-1")),
                (b"cache-control", b"private"),
            ]
        )
    port = int(os.environ.get("ASGISESSION_BENCH_PORT", "0"))
    if name == "raw-redis":
        return _raw_redis(port)
    if name == "raw-memcached":
        return _raw_memcached(port)
    if name == "raw-sqlite":
        return _raw_sqlite(os.environ["ASGISESSION_BENCH_DB"])
    if name == "raw-postgres":
        return _raw_postgres(os.environ["ASGISESSION_BENCH_PG"])
    if name.startswith(("starlette-", "starsessions-", "litestar-")):
        return _peer(name, port)
    kind, _, action = name.rpartition("-")
    app = reads if action == "read" else writes
    return SessionMiddleware(app, secret_key_base=SECRET, store=_store(kind))
