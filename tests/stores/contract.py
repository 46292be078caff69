"""The contract every Store adapter passes, unchanged.

Each adapter's test module subclasses :class:`StoreContract` and provides a ``store``
fixture that yields a fresh, empty store backed by the real service (a real file, a real
redis-server, a real memcached). Optional abilities are tested only where the store has
them, by protocol (``SupportsTouch``, ``SupportsUserIndex``), never by class; every
bundled store has ``SupportsAdd`` and ``SupportsVersioned``. The suite
uses anyio only, so MemoryStore runs it under Trio too (test_memory.py).
"""

from __future__ import annotations

import secrets
import time

import anyio
import pytest

from asgisession.stores.base import (
    Store,
    SupportsAdd,
    SupportsPing,
    SupportsTouch,
    SupportsUserIndex,
    SupportsVersioned,
    hash_key,
)


def new_key() -> str:
    """A key shaped like the ones the session layer makes."""
    return hash_key("s:", secrets.token_bytes(32))


async def wait_until_gone(store: Store, key: str, limit: float = 4.0) -> float:
    """Poll until ``key`` is gone; return the seconds it took (fails after ``limit``)."""
    start = time.monotonic()
    while await store.load(key) is not None:
        assert time.monotonic() - start < limit, f"{key} outlived its TTL by far"
        await anyio.sleep(0.05)
    return time.monotonic() - start


@pytest.mark.anyio
class StoreContract:
    """Behaviour every store must show. Subclasses provide the ``store`` fixture."""

    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError("subclasses provide a store fixture")

    async def test_ping_when_up(self, store: Store) -> None:
        if not isinstance(store, SupportsPing):
            pytest.skip("the store has no ping()")
        await store.ping()

    async def test_is_a_store(self, store: Store) -> None:
        """The adapter satisfies the Store protocol structurally."""
        assert isinstance(store, Store)

    async def test_missing_key_loads_none(self, store: Store) -> None:
        """A key never saved loads as None."""
        assert None is await store.load(new_key())

    async def test_save_then_load(self, store: Store) -> None:
        """Saved bytes load back unchanged, and save reports that they are stored."""
        key = new_key()
        assert await store.save(key, b'{"user":1}', ttl=60)
        assert b'{"user":1}' == await store.load(key)

    async def test_every_byte_value_round_trips(self, store: Store) -> None:
        """Values are opaque bytes: NUL, high bytes and line breaks survive."""
        key, value = new_key(), bytes(range(256)) * 4
        await store.save(key, value, ttl=60)
        assert value == await store.load(key)

    async def test_large_value_round_trips(self, store: Store) -> None:
        """A 100 KB session (far past any cookie) is kept whole."""
        key, value = new_key(), secrets.token_bytes(100_000)
        await store.save(key, value, ttl=60)
        assert value == await store.load(key)

    async def test_save_overwrites(self, store: Store) -> None:
        """A second save replaces the first."""
        key = new_key()
        await store.save(key, b"one", ttl=60)
        await store.save(key, b"two", ttl=60)
        assert b"two" == await store.load(key)

    async def test_replace_writes_over_a_live_key(self, store: Store) -> None:
        """save(replace=True) over an existing key writes and says so."""
        key = new_key()
        await store.save(key, b"one", ttl=60)
        assert await store.save(key, b"two", ttl=60, replace=True)
        assert b"two" == await store.load(key)

    async def test_replace_never_creates(self, store: Store) -> None:
        """save(replace=True) on a missing key writes nothing and returns False."""
        key = new_key()
        assert not await store.save(key, b"ghost", ttl=60, replace=True)
        assert None is await store.load(key)

    async def test_replace_after_delete_does_not_resurrect(self, store: Store) -> None:
        """A save racing a delete (logout in another tab) cannot bring the session back."""
        key = new_key()
        await store.save(key, b"v1", ttl=60)
        assert b"v1" == await store.load(key)
        await store.delete(key)
        assert not await store.save(key, b"v2", ttl=60, replace=True)
        assert None is await store.load(key)

    async def test_delete(self, store: Store) -> None:
        """A deleted key loads as None; deleting a missing key is fine."""
        key = new_key()
        await store.save(key, b"x", ttl=60)
        await store.delete(key)
        assert None is await store.load(key)
        await store.delete(key)
        await store.delete(new_key())

    async def test_delete_says_whether_the_key_was_there(self, store: Store) -> None:
        """delete returns True for a live key, False once it is gone or never was."""
        key = new_key()
        await store.save(key, b"x", ttl=60)
        assert True is await store.delete(key)
        assert False is await store.delete(key)
        assert False is await store.delete(new_key())

    async def test_delete_of_an_expired_key_finds_nothing(self, store: Store) -> None:
        """A key past its TTL is not there for delete either (rule 2)."""
        key = new_key()
        await store.save(key, b"short", ttl=1)
        await wait_until_gone(store, key)
        assert False is await store.delete(key)

    async def test_concurrent_deletes_find_the_key_once(self, store: Store) -> None:
        """Of 20 concurrent deletes of one key, exactly one removed it (regenerate races)."""
        key = new_key()
        await store.save(key, b"x", ttl=60)
        found: list[bool | None] = []

        async def delete() -> None:
            found.append(await store.delete(key))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(delete)
        assert 1 == found.count(True)
        assert 19 == found.count(False)

    async def test_add_writes_only_where_nothing_is(self, store: Store) -> None:
        """add creates a missing key, and never overwrites a live one."""
        assert isinstance(store, SupportsAdd)
        key = new_key()
        assert await store.add(key, b"first", ttl=60)
        assert not await store.add(key, b"second", ttl=60)
        assert b"first" == await store.load(key)
        await store.delete(key)
        assert await store.add(key, b"third", ttl=60)
        assert b"third" == await store.load(key)

    async def test_add_over_an_expired_key(self, store: Store) -> None:
        """An expired key is no key: add writes over it."""
        assert isinstance(store, SupportsAdd)
        key = new_key()
        await store.save(key, b"short", ttl=1)
        await wait_until_gone(store, key)
        assert await store.add(key, b"new", ttl=60)
        assert b"new" == await store.load(key)

    async def test_concurrent_adds_write_once(self, store: Store) -> None:
        """Of 20 concurrent adds of one key, exactly one wrote, and its value stays."""
        assert isinstance(store, SupportsAdd)
        key = new_key()
        won: list[bytes] = []

        async def add(n: int) -> None:
            if await store.add(key, b"%d" % n, ttl=60):
                won.append(b"%d" % n)

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(add, n)
        assert 1 == len(won)
        assert won[0] == await store.load(key)

    async def test_save_if_writes_over_the_version_read(self, store: Store) -> None:
        """save_if writes over the record load_versioned read, and the new one loads."""
        assert isinstance(store, SupportsVersioned)
        key = new_key()
        assert None is await store.load_versioned(key)
        await store.save(key, b"first", ttl=60)
        found = await store.load_versioned(key)
        assert found is not None
        assert b"first" == found[0]
        assert await store.save_if(key, b"second", ttl=60, version=found[1])
        assert b"second" == await store.load(key)

    async def test_save_if_refuses_a_changed_or_gone_record(self, store: Store) -> None:
        """A write in between, or a delete, makes save_if write nothing."""
        assert isinstance(store, SupportsVersioned)
        key = new_key()
        await store.save(key, b"first", ttl=60)
        found = await store.load_versioned(key)
        assert found is not None
        await store.save(key, b"theirs", ttl=60, replace=True)
        assert not await store.save_if(key, b"mine", ttl=60, version=found[1])
        assert b"theirs" == await store.load(key)
        again = await store.load_versioned(key)
        assert again is not None
        await store.delete(key)
        assert not await store.save_if(key, b"mine", ttl=60, version=again[1])
        assert None is await store.load(key)

    async def test_concurrent_save_ifs_of_one_version_write_once(self, store: Store) -> None:
        """Of 20 concurrent save_ifs over the same version, exactly one wrote."""
        assert isinstance(store, SupportsVersioned)
        key = new_key()
        await store.save(key, b"base", ttl=60)
        found = await store.load_versioned(key)
        assert found is not None
        won: list[bytes] = []

        async def save_if(n: int) -> None:
            assert found is not None
            if await store.save_if(key, b"%d" % n, ttl=60, version=found[1]):
                won.append(b"%d" % n)

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(save_if, n)
        assert 1 == len(won)
        assert won[0] == await store.load(key)

    async def test_keys_are_independent(self, store: Store) -> None:
        """Writing or deleting one key leaves others alone."""
        a, b = new_key(), new_key()
        await store.save(a, b"a", ttl=60)
        await store.save(b, b"b", ttl=60)
        await store.delete(a)
        assert (None, b"b") == (await store.load(a), await store.load(b))

    async def test_ttl_expires(self, store: Store) -> None:
        """A key is gone once its TTL has passed (never served afterwards)."""
        key = new_key()
        await store.save(key, b"short", ttl=1)
        await store.save(other := new_key(), b"long", ttl=60)
        assert 0.0 <= await wait_until_gone(store, key)
        assert b"long" == await store.load(other)
        assert not await store.save(key, b"late", ttl=60, replace=True)

    async def test_concurrent_writers(self, store: Store) -> None:
        """Fifty concurrent saves and loads all succeed and read their own data."""
        keys = [new_key() for _ in range(50)]

        async def write_then_read(index: int, key: str) -> bytes | None:
            await store.save(key, b"v%d" % index, ttl=60)
            await store.save(key, b"w%d" % index, ttl=60, replace=True)
            return await store.load(key)

        results: dict[int, bytes | None] = {}

        async def one(index: int, key: str) -> None:
            results[index] = await write_then_read(index, key)

        async with anyio.create_task_group() as group:  # asyncio's or Trio's, as the test runs
            for index, key in enumerate(keys):
                group.start_soon(one, index, key)
        assert [b"w%d" % i for i in range(50)] == [results[i] for i in range(50)]

    async def test_touch_extends(self, store: Store) -> None:
        """touch() resets the TTL without changing data, and says whether the key exists."""
        if not isinstance(store, SupportsTouch):
            pytest.skip("this store has no touch()")
        key = new_key()
        await store.save(key, b"data", ttl=1)
        assert await store.touch(key, ttl=60)
        await anyio.sleep(1.5)
        assert b"data" == await store.load(key)
        assert not await store.touch(new_key(), ttl=60)

    async def test_user_index(self, store: Store) -> None:
        """Index members come back with their expiry; removed and expired ones do not."""
        if not isinstance(store, SupportsUserIndex):
            pytest.skip("this store has no user index")
        index, now = new_key(), int(time.time())
        await store.index_add(index, "a", expires_at=now + 600)
        await store.index_add(index, "b", expires_at=now + 600)
        await store.index_add(index, "old", expires_at=now - 1)
        await store.index_add(index, "b", expires_at=now + 900)
        assert {"a": now + 600, "b": now + 900} == await store.index_members(index, now=now)
        await store.index_remove(index, "a")
        await store.index_remove(index, "missing")
        assert {"b": now + 900} == await store.index_members(index, now=now)
        assert {} == await store.index_members(index, now=now + 901)
        assert {} == await store.index_members(new_key(), now=now)

    async def test_async_context_manager(self, store: Store) -> None:
        """The store is an async context manager (closing is tested per adapter)."""
        assert hasattr(store, "__aenter__")
        assert hasattr(store, "__aexit__")
