"""Shared fixtures: the anyio backend, a fresh secret per test, and real store servers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from .redis_cluster import RedisClusterProcesses, start_redis_cluster
from .redis_sentinel import SentinelSetup, start_sentinels
from .servers import PostgresServer, ServerProcess, memcached_server, postgres_server, redis_server


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test under asyncio and under Trio.

    Module-scoped, not function-scoped, so hypothesis can drive async tests (it refuses
    function-scoped fixtures), and each module runs all its asyncio cases, then its Trio ones.
    A module whose tests use an asyncio-only client or asyncio's own API overrides this
    fixture with one returning ``"asyncio"``, and its docstring says why.
    """
    backend: str = request.param
    return backend


@pytest.fixture
def secret() -> str:
    """A random secret_key_base, new for every test."""
    return secrets.token_hex(32)


@pytest.fixture
def other_secret() -> str:
    """A second random secret, for rotation and foreign-key tests."""
    return secrets.token_hex(32)


@pytest.fixture(scope="module")
def redis_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real redis-server on a free loopback port, one per test module that asks for it."""
    server = redis_server(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def memcached_proc() -> Iterator[ServerProcess]:
    """A real memcached on a free loopback port, one per test module that asks for it."""
    server = memcached_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def memcached_ring_procs() -> Iterator[list[ServerProcess]]:
    """Three real memcacheds for a MemcachedStore over several servers, one set per module.

    A test that stops one starts it again, or leaves it to the next test's check."""
    servers: list[ServerProcess] = []
    try:
        for _ in range(3):
            servers.append(memcached_server())
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def redis_sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    """A real Redis primary, a replica and three sentinels, one set per module that asks
    (tests keep apart by namespace; a test that stops the primary makes its own set)."""
    setup = start_sentinels(tmp_path_factory.mktemp("sentinels"))
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture(scope="session")
def postgres_proc() -> Iterator[PostgresServer]:
    """A real PostgreSQL (initdb into a temporary directory), one for the whole run: initdb
    takes seconds. Tests keep apart by table; a test that stops it starts it again."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A real three-node Redis Cluster, one for the whole run (tests keep apart by namespace)."""
    workdirs = [tmp_path_factory.mktemp(f"redis-cluster-{n}") for n in range(3)]
    cluster = start_redis_cluster(workdirs)
    try:
        yield cluster
    finally:
        cluster.stop()
