"""PostgresStore: the contract on a real PostgreSQL, plus its schema, sweeps, URLs, outages,
timeouts (a lock held by another connection, a server that never answers) and lifecycle."""

# S608 flags SQL built with f-strings: only table names the tests made are.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from asgisession import ConfigurationError, StoreUnavailable, stores
from asgisession.stores.base import (
    ManagedStore,
    Store,
    SupportsAdd,
    SupportsPing,
    SupportsTouch,
    SupportsUserIndex,
)
from asgisession.stores.postgres import META_TABLE, SCHEMA_VERSION, PostgresStore

from ..servers import LOOPBACK, PostgresServer
from .contract import StoreContract, new_key

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: asyncpg, PostgresStore's client, does not run under Trio."""
    return "asyncio"


def fresh_table() -> str:
    """A table no other test uses, so tests share one server without seeing each other."""
    return f"t{uuid.uuid4().hex}"


@pytest.fixture
async def raw(postgres_proc: PostgresServer) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection, for looking behind the store's back."""
    connection = await asyncpg.connect(postgres_proc.url)
    yield connection
    await connection.close()


@pytest.fixture
async def store(postgres_proc: PostgresServer) -> AsyncIterator[PostgresStore]:
    async with PostgresStore(postgres_proc.url, table=fresh_table()) as store:
        yield store


class TestPostgresStore(StoreContract):
    @pytest.fixture
    async def store(self, postgres_proc: PostgresServer) -> AsyncIterator[Store]:
        async with PostgresStore.from_url(f"{postgres_proc.url}?table={fresh_table()}") as store:
            yield store


class TestSchema:
    async def test_supports_every_protocol(self, store: PostgresStore) -> None:
        for protocol in (SupportsAdd, SupportsTouch, SupportsUserIndex, SupportsPing, ManagedStore):
            assert isinstance(store, protocol)

    async def test_nothing_connects_before_first_use(self) -> None:
        store = PostgresStore(f"postgresql://u@{LOOPBACK}:9/db")  # port 9 refuses
        assert store._pool is None
        with pytest.raises(StoreUnavailable, match="PostgreSQL a load failed"):
            await store.load(new_key())
        await store.aclose()

    async def test_tables_indexes_and_version(
        self, store: PostgresStore, raw: asyncpg.Connection
    ) -> None:
        await store.ping()
        version = await raw.fetchval(
            f"SELECT version FROM {META_TABLE} WHERE table_name = $1", store.table
        )
        assert SCHEMA_VERSION == version
        indexes = {
            row["indexname"]
            for row in await raw.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename IN ($1, $2)",
                store.table,
                f"{store.table}_index",
            )
        }
        assert {f"{store.table}_expires_at", f"{store.table}_index_expires_at"} <= indexes
        plan = await raw.fetchval(
            f"EXPLAIN (FORMAT TEXT) DELETE FROM {store.table} WHERE key IN (SELECT key "
            f"FROM {store.table} WHERE expires_at <= now() LIMIT 5)"
        )
        assert plan is not None

    async def test_newer_schema_is_refused(
        self, postgres_proc: PostgresServer, store: PostgresStore, raw: asyncpg.Connection
    ) -> None:
        await store.ping()
        await raw.execute(
            f"UPDATE {META_TABLE} SET version = $2 WHERE table_name = $1", store.table, 2
        )
        async with PostgresStore(postgres_proc.url, table=store.table) as newer:
            with pytest.raises(ConfigurationError, match=r"schema version 2.*Upgrade asgisession"):
                await newer.load(new_key())

    async def test_foreign_table_is_refused(
        self, postgres_proc: PostgresServer, raw: asyncpg.Connection
    ) -> None:
        table = fresh_table()
        await raw.execute(f"CREATE TABLE {table} (id int)")
        async with PostgresStore(postgres_proc.url, table=table) as store:
            with pytest.raises(ConfigurationError, match="that asgisession did not create"):
                await store.ping()

    async def test_stores_creating_one_table_at_once(self, postgres_proc: PostgresServer) -> None:
        table = fresh_table()
        created = [PostgresStore(postgres_proc.url, table=table) for _ in range(5)]
        await asyncio.gather(*(store.ping() for store in created))
        await asyncio.gather(*(store.aclose() for store in created))

    @pytest.mark.parametrize(
        "table", ["", "1bad", "Upper", "a-b", "a;drop", "x" * 45, META_TABLE, 3]
    )
    def test_table_name_is_checked(self, table: object) -> None:
        with pytest.raises(ConfigurationError, match="table="):
            PostgresStore("postgresql://h/db", table=table)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("option", "bad"),
        [
            ("timeout", 0),
            ("timeout", float("nan")),
            ("sweep_interval", 0),
            ("sweep_batch", 0),
            ("min_size", -1),
            ("max_size", 0),
            ("max_inactive_connection_lifetime", -1),
        ],
    )
    def test_options_are_checked(self, option: str, bad: object) -> None:
        with pytest.raises(ConfigurationError, match=option):
            PostgresStore("postgresql://h/db", **{option: bad})  # type: ignore[arg-type]

    def test_max_size_below_min_size_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="max_size=2"):
            PostgresStore("postgresql://h/db", min_size=5, max_size=2)

    @pytest.mark.parametrize("ttl", [0, -1, 1.5, True])
    async def test_ttl_is_checked(self, store: PostgresStore, ttl: object) -> None:
        with pytest.raises(ConfigurationError, match="ttl="):
            await store.save(new_key(), b"x", ttl=ttl)  # type: ignore[arg-type]

    @pytest.mark.parametrize("key", ["'; DROP TABLE x; --", "a\\b", "$1", "ключ"])
    async def test_sql_looking_keys_are_plain_keys(self, store: PostgresStore, key: str) -> None:
        assert await store.save(key, b"v", ttl=60)
        assert b"v" == await store.load(key)


class TestExpiryAndSweep:
    async def test_expired_row_is_not_served_before_the_sweep(
        self, store: PostgresStore, raw: asyncpg.Connection
    ) -> None:
        key = new_key()
        await store.save(key, b"v", ttl=60)
        assert store._sweeper is not None
        await store._sweeper  # the first call's sweep: the next is an interval away
        await raw.execute(
            f"UPDATE {store.table} SET expires_at = now() - interval '1 second' WHERE key = $1",
            key,
        )
        assert None is await store.load(key)
        assert not await store.touch(key, ttl=60)
        assert 1 == await raw.fetchval(f"SELECT count(*) FROM {store.table}")

    async def test_sweep_deletes_in_bounded_batches(
        self, postgres_proc: PostgresServer, raw: asyncpg.Connection
    ) -> None:
        async with PostgresStore(
            postgres_proc.url, table=fresh_table(), sweep_batch=3, sweep_interval=3600
        ) as store:
            for n in range(7):
                await store.save(f"old{n}", b"x", ttl=60)
            assert store._sweeper is not None
            await store._sweeper  # the first call's sweep, over before there is anything to do
            await store.save("live", b"x", ttl=60)
            await store.index_add("i", "gone", expires_at=int(time.time()) - 5)
            await raw.execute(
                f"UPDATE {store.table} SET expires_at = now() - interval '1 hour' "
                "WHERE key LIKE 'old%'"
            )
            one_statement = await raw.execute(store._sql.sweep, 3)
            assert "DELETE 3" == one_statement
            assert 5 == await store.sweep()  # 4 rows in two statements, then the index member
            assert 1 == await raw.fetchval(f"SELECT count(*) FROM {store.table}")
            assert 0 == await raw.fetchval(f"SELECT count(*) FROM {store.table}_index")

    async def test_sweep_runs_by_itself_at_most_once_per_interval(
        self, postgres_proc: PostgresServer, raw: asyncpg.Connection
    ) -> None:
        table = fresh_table()
        async with PostgresStore(postgres_proc.url, table=table) as setup:
            await setup.save("old", b"x", ttl=60)
        await raw.execute(f"UPDATE {table} SET expires_at = now() - interval '1 hour'")
        async with PostgresStore(postgres_proc.url, table=table, sweep_interval=3600) as store:
            assert None is await store.load("old")  # the first call starts a sweep
            first = store._sweeper
            assert first is not None
            await first
            assert 0 == await raw.fetchval(f"SELECT count(*) FROM {table}")
            await store.load("old")
            assert first is store._sweeper  # not due again within the interval


class TestFromUrl:
    async def test_query_sets_the_store_and_keeps_the_client_parameters(
        self, postgres_proc: PostgresServer
    ) -> None:
        table = fresh_table()
        url = (
            f"postgres://postgres@{LOOPBACK}:{postgres_proc.port}/postgres?table={table}"
            "&timeout=1.5&min_size=0&max_size=3&sweep_batch=10&application_name=asgi-test"
        )
        store = stores.from_url(url)
        assert isinstance(store, PostgresStore)
        assert (table, 1.5, 0, 3, 10) == (
            store.table,
            store.timeout,
            store.min_size,
            store.max_size,
            store.sweep_batch,
        )
        assert store.dsn.endswith("/postgres?application_name=asgi-test")
        async with store:
            assert await store.save("k", b"v", ttl=60)
            name = await store._call(
                "a read", lambda c: c.fetchval("SELECT current_setting('application_name')")
            )
            assert "asgi-test" == name
            setting = await store._call(
                "a read", lambda c: c.fetchval("SELECT current_setting('statement_timeout')")
            )
            assert "1500ms" == setting

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("postgresql://u:hunter2@h/db?bogus=1", "the query parameter 'bogus' is not one"),
            ("postgresql://u:hunter2@h:port/db", "'postgresql://u:***@h:port/db': the port"),
            ("postgresql://h/db?table=Bad", "table='Bad'"),
            ("postgresql://h/db?timeout=0", "timeout='0' is wrong"),
            ("postgresql://h/db?max_size=0", "max_size='0' is wrong"),
            ("postgresql://h/db?timeout=1&timeout=2", "'timeout' is given twice"),
        ],
    )
    def test_bad_urls_name_the_wrong_part(self, url: str, message: str) -> None:
        with pytest.raises(ConfigurationError) as caught:
            stores.from_url(url)
        assert message in str(caught.value)
        assert "hunter2" not in str(caught.value)

    def test_an_option_given_twice_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="table is given both"):
            PostgresStore.from_url("postgresql://h/db?table=a", table="b")

    def test_repr_hides_the_password(self) -> None:
        assert "hunter2" not in repr(PostgresStore.from_url("postgresql://u:hunter2@h/db"))


class TestOutages:
    async def test_stopped_server_is_unavailable_then_recovers(
        self, postgres_proc: PostgresServer
    ) -> None:
        """Every pooled connection dies with the server; after it returns, the first call works."""
        async with PostgresStore(
            postgres_proc.url, table=fresh_table(), timeout=1.0, min_size=3
        ) as store:
            key = new_key()
            await store.save(key, b"kept", ttl=600)
            await asyncio.gather(*(store.load(key) for _ in range(6)))  # several connections
            postgres_proc.stop()
            try:
                started = time.monotonic()
                with pytest.raises(StoreUnavailable, match="PostgreSQL a load"):
                    await store.load(key)
                with pytest.raises(StoreUnavailable, match="PostgreSQL a ping"):
                    await store.ping()
                assert time.monotonic() - started < 3.0
            finally:
                postgres_proc.start()
            assert b"kept" == await store.load(key)  # durable, and no dead connection met
            assert [b"kept"] * 6 == await asyncio.gather(*(store.load(key) for _ in range(6)))

    async def test_silent_server_times_out(self) -> None:
        """A server that accepts and never answers: the call ends within the timeout."""
        accepted: list[asyncio.StreamWriter] = []

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)

        silent = await asyncio.start_server(accept, LOOPBACK, 0)
        port = silent.sockets[0].getsockname()[1]
        try:
            async with PostgresStore(f"postgresql://u@{LOOPBACK}:{port}/db", timeout=0.5) as store:
                started = time.monotonic()
                with pytest.raises(StoreUnavailable, match="did not answer PostgreSQL a load"):
                    await store.load(new_key())
                assert time.monotonic() - started < 1.5
        finally:
            silent.close()
            for writer in accepted:
                writer.close()
            await silent.wait_closed()

    async def test_a_write_cut_off_by_the_timeout_never_lands_later(
        self, store: PostgresStore, raw: asyncpg.Connection, postgres_proc: PostgresServer
    ) -> None:
        """A lock held past the timeout: StoreUnavailable, nothing written after the lock
        goes, and the store serves at once afterwards (its connection was replaced)."""
        async with PostgresStore(
            postgres_proc.url, table=store.table, timeout=0.5, max_size=1
        ) as quick:
            # Prepared on the one connection, so the cut-off save is executing (waiting for
            # the lock), not still being prepared, when its caller gives up.
            await quick.save(new_key(), b"warm", ttl=60)
            key = new_key()
            locker = raw.transaction()
            await locker.start()
            await raw.execute(f"LOCK TABLE {store.table} IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="PostgreSQL a save"):
                await quick.save(key, b"late", ttl=60)
            assert time.monotonic() - started < 1.5
            await asyncio.sleep(1.0)  # past the statement_timeout on the server
            await locker.rollback()
            await asyncio.sleep(0.2)
            assert None is await quick.load(key)
            assert await quick.save(key, b"now", ttl=60)
            assert b"now" == await quick.load(key)

    async def test_more_callers_than_connections_wait_their_turn(
        self, postgres_proc: PostgresServer
    ) -> None:
        async with PostgresStore(postgres_proc.url, table=fresh_table(), max_size=2) as store:
            keys = [new_key() for _ in range(40)]
            await asyncio.gather(*(store.save(key, key.encode(), ttl=60) for key in keys))
            assert [key.encode() for key in keys] == await asyncio.gather(
                *(store.load(key) for key in keys)
            )


class TestLifecycle:
    async def test_aclose_is_idempotent_and_the_next_call_reopens(
        self, store: PostgresStore
    ) -> None:
        key = new_key()
        await store.save(key, b"v", ttl=60)
        await store.aclose()
        await store.aclose()
        assert store._pool is None
        assert b"v" == await store.load(key)

    async def test_aclose_lets_calls_in_flight_finish(self, store: PostgresStore) -> None:
        key = new_key()
        await store.ping()
        saving = asyncio.ensure_future(store.save(key, b"v", ttl=60))
        await asyncio.sleep(0)
        await store.aclose()
        assert await saving
        assert b"v" == await store.load(key)


def test_store_moves_to_a_new_event_loop(postgres_proc: PostgresServer) -> None:
    """One store object used from two asyncio.run() calls (a test client per test, say)."""
    store = PostgresStore(postgres_proc.url, table=fresh_table())

    async def save() -> None:
        try:
            await store.save("k", b"v", ttl=60)
        finally:
            await store.aclose()  # before its loop ends: the pool's sockets belong to it

    async def load() -> bytes | None:
        try:
            return await store.load("k")
        finally:
            await store.aclose()

    asyncio.run(save())
    assert b"v" == asyncio.run(load())


async def test_a_cancelled_aclose_is_cancelled(store: PostgresStore) -> None:
    """aclose() stops the sweep, but a cancel of aclose() itself is not swallowed with it."""
    await store.ping()
    assert store._sweeper is not None
    await store._sweeper
    hold = asyncio.Event()

    async def slow_sweep() -> None:
        await hold.wait()

    store._sweeper = asyncio.ensure_future(slow_sweep())
    closing = asyncio.ensure_future(store.aclose())
    await asyncio.sleep(0)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
