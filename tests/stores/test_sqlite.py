"""SQLiteStore: the contract on a real file, plus its schema, WAL, sweep, batching and failures."""

# The checks below read the database with SQL built from the module's table-name constants.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from asgisession import ConfigurationError, StoreUnavailable
from asgisession.stores import _sqlite_statements
from asgisession.stores.base import Store, SupportsTouch, SupportsUserIndex
from asgisession.stores.sqlite import META_TABLE, SCHEMA_VERSION, SQLiteStore

from .contract import StoreContract, new_key


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: SQLiteStore's thread answers through asyncio's loop; the tests call asyncio."""
    return "asyncio"


TABLE = "asgisession_sessions"


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Store]:
        async with SQLiteStore(tmp_path / "sessions.db") as store:
            yield store


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database file that does not exist yet."""
    return tmp_path / "sessions.db"


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand."""
    return FakeClock()


def query(path: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Run ``sql`` on a separate plain sqlite3 connection, as another process would."""
    with closing(sqlite3.connect(path)) as db, db:
        return db.execute(sql, params).fetchall()


def count_rows(path: Path, table: str = TABLE) -> int:
    """Rows in ``table``, expired or not."""
    [(count,)] = query(path, f"SELECT count(*) FROM {table}")
    assert isinstance(count, int)
    return count


@pytest.fixture
def permissions_bind() -> None:
    """Skip where permission bits do not bind (root ignores them)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root can write anywhere")


@pytest.mark.anyio
class TestSchema:
    async def test_satisfies_every_store_protocol(self, db_path: Path) -> None:
        """It is a Store, SupportsTouch and SupportsUserIndex, so no contract test skips."""
        store = SQLiteStore(db_path)
        assert isinstance(store, Store)
        assert isinstance(store, SupportsTouch)
        assert isinstance(store, SupportsUserIndex)

    async def test_nothing_happens_before_first_use(self, db_path: Path) -> None:
        """Construction opens nothing and creates no file; the first call does both."""
        async with SQLiteStore(db_path) as store:
            assert not db_path.exists()
            assert None is await store.load(new_key())
            assert db_path.exists()

    async def test_schema_version_is_stored(self, db_path: Path) -> None:
        """The meta table records the schema version of the store's table."""
        async with SQLiteStore(db_path) as store:
            await store.load(new_key())
        assert [(TABLE, SCHEMA_VERSION)] == query(db_path, f"SELECT * FROM {META_TABLE}")

    async def test_newer_schema_is_refused(self, db_path: Path) -> None:
        """A table written by a newer version is a ConfigurationError, not a guess."""
        async with SQLiteStore(db_path) as store:
            await store.save("k", b"v", ttl=60)
        query(db_path, f"UPDATE {META_TABLE} SET version = ?", SCHEMA_VERSION + 1)
        async with SQLiteStore(db_path) as store:
            with pytest.raises(ConfigurationError, match="schema version 2"):
                await store.load("k")
            with pytest.raises(ConfigurationError):  # and again: nothing was half-opened
                await store.save("k", b"w", ttl=60)
        assert [(b"v",)] == query(db_path, f"SELECT data FROM {TABLE}")

    async def test_foreign_table_is_refused(self, db_path: Path) -> None:
        """A table of that name that asgisession did not create is left alone and refused."""
        query(db_path, "CREATE TABLE Sessions (id INTEGER)")
        async with SQLiteStore(db_path, table="sessions") as store:
            with pytest.raises(ConfigurationError, match="did not create"):
                await store.load("k")

    async def test_wal_normal_and_busy_timeout(self, db_path: Path) -> None:
        """The file is in WAL mode; the connection runs synchronous=NORMAL and the timeout."""
        async with SQLiteStore(db_path, busy_timeout=2.5, timeout=None) as store:
            await store.load("k")
            assert store._worker is not None

            def pragmas(db: sqlite3.Connection) -> tuple[object, object]:
                sync = db.execute("PRAGMA synchronous").fetchone()[0]
                return sync, db.execute("PRAGMA busy_timeout").fetchone()[0]

            on_thread = store._worker.submit(asyncio.get_running_loop(), pragmas)
            assert (1, 2500) == await on_thread  # 1 is NORMAL
        assert [("wal",)] == query(db_path, "PRAGMA journal_mode")

    async def test_expiry_is_indexed(self, db_path: Path) -> None:
        """Both tables have an index on expires_at, which reads and the sweep use."""
        async with SQLiteStore(db_path) as store:
            await store.load("k")
        indexed = query(
            db_path,
            "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND sql LIKE ?",
            "%(expires_at)",
        )
        assert [(TABLE,), (f"{TABLE}_index",)] == sorted(indexed)

    async def test_two_tables_share_a_file(self, db_path: Path) -> None:
        """Stores with different tables in one file keep their data and versions apart."""
        async with SQLiteStore(db_path) as a, SQLiteStore(db_path, table="other") as b:
            await a.save("k", b"a", ttl=60)
            await b.save("k", b"b", ttl=60)
            assert (b"a", b"b") == (await a.load("k"), await b.load("k"))
        assert 2 == len(query(db_path, f"SELECT * FROM {META_TABLE}"))

    @pytest.mark.parametrize(
        "table",
        [
            *("", "1abc", "a-b", "naïve", "x" * 59),
            *("sessions; DROP TABLE x", "sqlite_master", "SQLITE_x", META_TABLE),
        ],
    )
    def test_table_name_is_checked(self, table: str) -> None:
        """A table name that is not a plain identifier is refused at construction."""
        with pytest.raises(ConfigurationError):
            SQLiteStore("unused.db", table=table)

    @pytest.mark.parametrize(
        ("option", "bad"),
        [
            ("busy_timeout", -1),
            ("busy_timeout", float("nan")),
            ("busy_timeout", True),
            ("sweep_interval", 0),
            ("sweep_interval", float("inf")),
            ("sweep_batch", 0),
            ("sweep_batch", 1.5),
            ("sweep_batch", True),
        ],
    )
    def test_options_are_checked(self, option: str, bad: object) -> None:
        """Numeric options out of range are a ConfigurationError."""
        with pytest.raises(ConfigurationError, match=option):
            SQLiteStore("unused.db", **{option: bad})  # type: ignore[arg-type]

    @pytest.mark.parametrize("ttl", [0, -5, True, 2.5])
    async def test_ttl_is_checked(self, db_path: Path, ttl: object) -> None:
        """A TTL that is not a positive int is refused before any I/O."""
        store = SQLiteStore(db_path)
        with pytest.raises(ConfigurationError):
            await store.save("k", b"v", ttl=ttl)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            await store.touch("k", ttl=ttl)  # type: ignore[arg-type]
        assert not db_path.exists()


@pytest.mark.anyio
class TestExpiryAndSweep:
    async def test_expired_row_is_not_served_before_the_sweep(
        self, db_path: Path, clock: FakeClock
    ) -> None:
        """Past its expiry a row still on disk is missing to load, replace and touch."""
        async with SQLiteStore(db_path, clock=clock, sweep_interval=3600) as store:
            await store.save("k", b"v", ttl=10)
            clock.now += 9.999
            assert b"v" == await store.load("k")
            clock.now += 0.001
            assert None is await store.load("k")
            assert not await store.save("k", b"w", ttl=10, replace=True)
            assert not await store.touch("k", ttl=10)
            assert 1 == count_rows(db_path)  # not swept, just never served
            assert await store.save("k", b"new", ttl=10)  # a plain save starts it afresh
            assert b"new" == await store.load("k")

    async def test_sweep_deletes_in_bounded_batches(self, db_path: Path, clock: FakeClock) -> None:
        """1,200 expired rows go in chunks of sweep_batch, one hop each; live rows stay."""
        async with SQLiteStore(db_path, clock=clock, sweep_batch=500) as store:
            await asyncio.gather(*(store.save(f"old{i}", b"x", ttl=10) for i in range(1200)))
            await asyncio.gather(*(store.save(f"live{i}", b"y", ttl=100) for i in range(7)))
            clock.now += 50
            hops = store._hops
            assert 1200 == await store.sweep()
            assert 3 == store._hops - hops  # 500 + 500 + 200
            assert 7 == count_rows(db_path)
            assert [b"y"] * 7 == [await store.load(f"live{i}") for i in range(7)]
            assert 0 == await store.sweep()

    async def test_sweep_piggybacks_at_most_once_per_interval(
        self, db_path: Path, clock: FakeClock
    ) -> None:
        """A call after sweep_interval starts a background sweep, after its own batch."""
        async with SQLiteStore(db_path, clock=clock, sweep_interval=60, sweep_batch=100) as s:
            await asyncio.gather(*(s.save(f"old{i}", b"x", ttl=10) for i in range(250)))
            await s.save("live", b"y", ttl=1000)
            await s.index_add("user", "old", expires_at=int(clock.now) + 10)
            await s.index_add("user", "live", expires_at=int(clock.now) + 1000)
            clock.now += 30  # expired, but the last sweep (at first use) was 30 s ago
            await s.load("live")
            assert s._flusher is not None
            await s._flusher
            assert 251 == count_rows(db_path)
            clock.now += 30
            hops = s._hops
            assert b"y" == await s.load("live")
            await s._flusher
            assert 1 + 3 == s._hops - hops  # the load, then chunks of 100, 100, 50 + 1
            assert 1 == count_rows(db_path)
            assert [("live",)] == query(db_path, f"SELECT member FROM {TABLE}_index")

    async def test_index_members_prunes(self, db_path: Path, clock: FakeClock) -> None:
        """index_members deletes the expired members of its index, and only those."""
        now = int(clock.now)
        async with SQLiteStore(db_path, clock=clock) as store:
            await store.index_add("u", "a", expires_at=now + 100)
            await store.index_add("u", "b", expires_at=now + 300)
            await store.index_add("v", "c", expires_at=now + 100)
            assert {"b": now + 300} == await store.index_members("u", now=now + 200)
            assert [("b",), ("c",)] == query(
                db_path, f"SELECT member FROM {TABLE}_index ORDER BY member"
            )


@pytest.mark.anyio
class TestConcurrency:
    async def test_concurrent_loads_share_a_hop(self, db_path: Path) -> None:
        """Of fifty loads issued together, the first runs at once and 49 share the next hop."""
        async with SQLiteStore(db_path) as store:
            keys = [new_key() for _ in range(50)]
            await asyncio.gather(*(store.save(k, k.encode(), ttl=60) for k in keys[::2]))
            if store._flusher is not None:
                await store._flusher  # let the first-use sweep finish
            hops = store._hops
            results = await asyncio.gather(*(store.load(k) for k in keys))
            assert 2 == store._hops - hops
            assert [k.encode() if i % 2 == 0 else None for i, k in enumerate(keys)] == results

    async def test_writes_arriving_mid_batch_form_the_next_batch(self, db_path: Path) -> None:
        """Two hundred tasks doing three calls each need a handful of hops, not six hundred."""
        async with SQLiteStore(db_path) as store:
            await store.load("warm-up")
            hops = store._hops

            async def session(i: int) -> bytes | None:
                key = f"k{i}"
                await store.save(key, b"%d" % i, ttl=60)
                await store.save(key, b"w%d" % i, ttl=60, replace=True)
                return await store.load(key)

            results = await asyncio.gather(*(session(i) for i in range(200)))
            assert [b"w%d" % i for i in range(200)] == results
            assert store._hops - hops <= 10

    async def test_many_writers_and_a_second_store_never_see_locked(self, db_path: Path) -> None:
        """50 writers on each of two stores on one file all succeed: no "database is locked"."""
        async with SQLiteStore(db_path) as a, SQLiteStore(db_path) as b:

            async def writer(store: SQLiteStore, name: str) -> None:
                for round_ in range(20):
                    key = f"{name}-{round_ % 3}"
                    await store.save(key, b"%d" % round_, ttl=60)
                    assert await store.save(key, b"r%d" % round_, ttl=60, replace=True)
                    await store.index_add(name[0], key, expires_at=2**40)
                    assert await store.touch(key, ttl=60)
                    if round_ % 5 == 4:
                        await store.delete(key)

            await asyncio.gather(
                *(writer(a, f"a{i}") for i in range(50)), *(writer(b, f"b{i}") for i in range(50))
            )
            assert (b"r18", b"r17", None) == (
                await b.load("a7-0"),
                await b.load("a7-2"),
                await b.load("a7-1"),  # deleted in the last round
            )
            assert b"r18" == await a.load("b49-0")
            assert 150 == len(await a.index_members("b", now=0))

    async def test_stores_creating_one_file_at_once(self, tmp_path: Path) -> None:
        """Stores opening a new file at the same moment all set it up (WAL switch included)."""
        for attempt in range(10):
            path = tmp_path / f"new{attempt}.db"
            stores = [SQLiteStore(path) for _ in range(3)]
            try:
                saved = await asyncio.gather(
                    *(s.save(f"k{i}", b"v", ttl=60) for i, s in enumerate(stores))
                )
            finally:
                for store in stores:
                    await store.aclose()
            assert [True] * 3 == saved
            assert [(TABLE, SCHEMA_VERSION)] == query(path, f"SELECT * FROM {META_TABLE}")

    async def test_one_failing_operation_fails_only_its_caller(self, db_path: Path) -> None:
        """An operation sqlite rejects raises StoreUnavailable; its batch-mates succeed."""
        async with SQLiteStore(db_path) as store:
            await store.save("k", b"v", ttl=60)
            if store._flusher is not None:
                await store._flusher
            hops = store._hops
            results = await asyncio.gather(
                store.load("k"),  # runs alone; the next three share a batch
                store.save("j", b"w", ttl=60),
                store.load(object()),  # type: ignore[arg-type]
                store.load("k"),
                return_exceptions=True,
            )
            assert 2 == store._hops - hops
            assert [b"v", True, b"v"] == [results[0], results[1], results[3]]
            assert isinstance(results[2], StoreUnavailable)
            assert isinstance(results[2].__cause__, sqlite3.Error)
            assert b"w" == await store.load("j")

    async def test_cancelled_caller_is_skipped(self, db_path: Path) -> None:
        """A save whose caller gave up before its batch ran is not written."""
        async with SQLiteStore(db_path) as store:
            await store.load("warm-up")
            task = asyncio.ensure_future(store.save("k", b"v", ttl=60))
            await asyncio.sleep(0)  # queued, not yet run
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert None is await store.load("k")


@pytest.mark.anyio
class TestKeys:
    @pytest.mark.parametrize(
        "key",
        [
            "x'; DROP TABLE asgisession_sessions; --",
            '" OR 1=1 --',
            "%",
            "_",
            "k' OR expires_at > 0 OR key = '",
        ],
    )
    async def test_sql_looking_keys_are_plain_keys(self, db_path: Path, key: str) -> None:
        """Keys that look like SQL miss, then round-trip, and the table survives."""
        async with SQLiteStore(db_path) as store:
            await store.save("other", b"o", ttl=60)
            assert None is await store.load(key)
            assert not await store.save(key, b"x", ttl=60, replace=True)
            await store.delete(key)
            assert b"o" == await store.load("other")
            await store.save(key, b"v", ttl=60)
            assert b"v" == await store.load(key)
            assert {} == await store.index_members(key, now=0)
        assert 2 == count_rows(db_path)


@pytest.mark.anyio
class TestLifecycle:
    async def test_aclose_is_idempotent(self, db_path: Path) -> None:
        """aclose() on a store never used, used, or closed already is fine."""
        store = SQLiteStore(db_path)
        await store.aclose()
        await store.save("k", b"v", ttl=60)
        await store.aclose()
        assert store._worker is None
        await store.aclose()

    async def test_use_after_aclose_reopens(self, db_path: Path) -> None:
        """A call after aclose() opens a new connection; the data is on disk."""
        store = SQLiteStore(db_path)
        await store.save("k", b"v", ttl=60)
        await store.aclose()
        try:
            assert b"v" == await store.load("k")
        finally:
            await store.aclose()

    async def test_aclose_finishes_operations_in_flight(self, db_path: Path) -> None:
        """Calls in flight or queued when aclose() starts complete, and nothing stays open."""
        store = SQLiteStore(db_path)
        saves = [asyncio.ensure_future(store.save(f"k{i}", b"v", ttl=60)) for i in range(20)]
        await asyncio.sleep(0)  # the first is opening the connection, the rest are queued
        await store.aclose()
        assert all(save.done() for save in saves)
        assert [True] * 20 == [await save for save in saves]
        assert store._worker is None
        assert 20 == count_rows(db_path)


def test_store_moves_to_a_new_event_loop(db_path: Path) -> None:
    """A store closed in one event loop works in the next (asyncio.run twice)."""
    store = SQLiteStore(db_path)

    async def first() -> None:
        async with store:
            await store.save("k", b"v", ttl=60)

    async def second() -> bytes | None:
        async with store:
            return await store.load("k")

    asyncio.run(first())
    assert b"v" == asyncio.run(asyncio.wait_for(second(), 10))


def test_loop_ending_mid_call_leaves_a_usable_store(db_path: Path) -> None:
    """A loop that ends with a call in flight and no aclose() breaks neither thread nor store.

    asyncio.run() cancels the call and closes the loop right after. aiosqlite's thread dies
    if it answers a closed loop, so the cancelled call waits for its hop to land; here the
    hop is stuck behind another connection's lock until the busy timeout. pytest fails the
    test if a thread dies.
    """
    store = SQLiteStore(db_path, busy_timeout=0.3)
    with closing(sqlite3.connect(db_path, isolation_level=None)) as other:

        async def first() -> None:
            await store.save("k", b"v", ttl=60)
            if store._flusher is not None:
                await store._flusher
            other.execute("BEGIN IMMEDIATE")
            save = asyncio.ensure_future(store.save("k", b"w", ttl=60))
            await asyncio.sleep(0)
            assert not save.done()  # its hop waits for the lock as the loop ends

        asyncio.run(first())
        other.execute("ROLLBACK")
        time.sleep(0.1)  # were the hop still pending, it would land now, on a closed loop

    async def second() -> list[bytes | None]:
        async with store:
            return list(await asyncio.gather(*(store.load("k") for _ in range(3))))

    assert [b"v"] * 3 == asyncio.run(asyncio.wait_for(second(), 10))


@pytest.mark.anyio
class TestUnavailable:
    async def test_missing_directory_then_recovery(self, tmp_path: Path) -> None:
        """No directory: StoreUnavailable naming the file; once it exists, the store works."""
        path = tmp_path / "missing" / "sessions.db"
        async with SQLiteStore(path) as store:
            with pytest.raises(StoreUnavailable, match="missing") as info:
                await store.load("k")
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
            with pytest.raises(StoreUnavailable):
                await store.save("k", b"v", ttl=60)
            path.parent.mkdir()
            assert await store.save("k", b"v", ttl=60)
            assert b"v" == await store.load("k")

    async def test_path_is_a_directory(self, tmp_path: Path) -> None:
        """A path that cannot be opened as a file is StoreUnavailable, not sqlite3's error."""
        async with SQLiteStore(tmp_path) as store:
            with pytest.raises(StoreUnavailable):
                await store.load("k")

    async def test_not_a_database_then_recovery(self, db_path: Path) -> None:
        """A file that is not SQLite is StoreUnavailable until it is replaced."""
        db_path.write_bytes(b"this is not a database, just some text " * 100)
        async with SQLiteStore(db_path) as store:
            with pytest.raises(StoreUnavailable):
                await store.load("k")
            db_path.unlink()
            assert None is await store.load("k")

    @pytest.mark.usefixtures("permissions_bind")
    async def test_read_only_directory(self, tmp_path: Path) -> None:
        """A directory the process cannot write to is StoreUnavailable."""
        directory = tmp_path / "ro"
        directory.mkdir()
        directory.chmod(0o500)
        try:
            async with SQLiteStore(directory / "sessions.db") as store:
                with pytest.raises(StoreUnavailable):
                    await store.save("k", b"v", ttl=60)
        finally:
            directory.chmod(0o700)

    @pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
    async def test_directory_no_one_may_write(self) -> None:
        """A directory no process can create files in (/proc, even for root) is unavailable."""
        async with SQLiteStore("/proc/asgisession-sessions.db") as store:
            with pytest.raises(StoreUnavailable, match="unable to open"):
                await store.load("k")

    async def test_directory_removed_between_uses(self, tmp_path: Path) -> None:
        """If the directory goes away, calls fail cleanly, and work again once it is back."""
        directory = tmp_path / "d"
        directory.mkdir()
        async with SQLiteStore(directory / "sessions.db") as store:
            await store.save("k", b"v", ttl=60)
            await store.aclose()
            for child in directory.iterdir():
                child.unlink()
            directory.rmdir()
            with pytest.raises(StoreUnavailable):
                await store.load("k")
            directory.mkdir()
            assert None is await store.load("k")


@pytest.mark.anyio
class TestTimeout:
    """Each call is bounded by the store's own timeout, and a late write is never made."""

    async def test_a_held_write_lock_times_out_and_nothing_is_written(self, db_path: Path) -> None:
        """Another connection holds the write lock past the timeout: StoreUnavailable, in time,
        naming the file, the operation and the timeout; the lock's release writes nothing."""
        async with SQLiteStore(db_path, timeout=0.6, busy_timeout=5) as store:
            await store.save("k", b"old", ttl=60)
            with closing(sqlite3.connect(db_path, isolation_level=None)) as other:
                other.execute("BEGIN IMMEDIATE")
                start = time.monotonic()
                with pytest.raises(StoreUnavailable) as info:
                    await store.save("k", b"new", ttl=60)
                took = time.monotonic() - start
                message = str(info.value)
                assert str(db_path) in message
                assert "a save" in message
                assert "0.6 s" in message
                assert "nothing was written" in message
                assert took < 1.5
                other.execute("ROLLBACK")  # the store's thread may take the lock now
            assert b"old" == await store.load("k")
            await asyncio.sleep(0.3)  # were the abandoned save still coming, it would land
            assert b"old" == await store.load("k")
            assert [(b"old",)] == query(db_path, f"SELECT data FROM {TABLE}")

    async def test_a_caller_that_gives_up_mid_batch_is_rolled_back(
        self, db_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The lock comes free after the caller gave up but while its batch runs: the batch
        sees its caller gone before COMMIT, and rolls its write back."""

        def begin(db: sqlite3.Connection, writes: bool, *_: object) -> None:
            db.execute("BEGIN IMMEDIATE" if writes else "BEGIN")  # waits the full 5 s

        # Without the store's shortened lock wait, the batch outlives its caller for sure.
        monkeypatch.setattr(_sqlite_statements, "_begin", begin)
        store = SQLiteStore(db_path, timeout=0.2)
        store._busy_ms = 5000
        async with store:
            await store.load("warm-up")
            with closing(sqlite3.connect(db_path, isolation_level=None)) as other:
                other.execute("BEGIN IMMEDIATE")
                save = asyncio.ensure_future(store.save("k", b"late", ttl=60))
                await asyncio.sleep(0.5)  # the save has timed out; its batch still waits
                assert save.done()
                with pytest.raises(StoreUnavailable, match="nothing was written"):
                    await save
                other.execute("ROLLBACK")  # now the batch gets the lock and runs the save
            assert None is await store.load("k")  # queued behind the abandoned batch
            assert 0 == count_rows(db_path)

    async def test_queued_calls_time_out_too(self, db_path: Path) -> None:
        """Calls queued behind a blocked batch raise by their own deadline, not later."""
        async with SQLiteStore(db_path, timeout=0.3) as store:
            await store.load("warm-up")
            with closing(sqlite3.connect(db_path, isolation_level=None)) as other:
                other.execute("BEGIN IMMEDIATE")
                start = time.monotonic()
                results = await asyncio.gather(
                    *(store.save(f"k{i}", b"v", ttl=60) for i in range(5)),
                    return_exceptions=True,
                )
                assert time.monotonic() - start < 1.5
                other.execute("ROLLBACK")
            assert all(isinstance(r, StoreUnavailable) for r in results)
            assert await store.save("k", b"v", ttl=60)  # and the store works again
            assert 1 == count_rows(db_path)

    @pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), True, "2"])
    def test_timeout_is_checked(self, bad: object) -> None:
        """A timeout that is not a positive finite number (or None) is refused."""
        with pytest.raises(ConfigurationError, match="timeout"):
            SQLiteStore("unused.db", timeout=bad)  # type: ignore[arg-type]
