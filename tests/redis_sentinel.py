"""A real Redis primary, one replica and three sentinels on loopback, for the Sentinel tests.

Each process is a redis-server in a directory of its own (a sentinel is ``redis-server
sentinel.conf --sentinel``, and rewrites its config file as it learns the topology). The
sentinels judge the primary down after ``DOWN_AFTER_MS`` and may fail over again after
``FAILOVER_TIMEOUT_MS``, both small so a test's failover takes seconds. :func:`start_sentinels`
returns once every sentinel knows the replica and the two other sentinels, so a failover can
be agreed on (quorum 2) as soon as the primary stops. Processes are stopped by pid.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .servers import LOOPBACK, ServerProcess, free_port, redis_server, require_binary

SERVICE = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


@dataclass
class SentinelSetup:
    """The running processes; ``stop()`` stops every one still running."""

    primary: ServerProcess
    replica: ServerProcess
    sentinels: list[ServerProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL of the service, database 0."""
        hosts = ",".join(f"{LOOPBACK}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def stop(self) -> None:
        for process in (*self.sentinels, self.replica, self.primary):
            process.stop()


def admin(port: int) -> redis.Redis:
    """A synchronous client for checking a server's or a sentinel's state."""
    return redis.Redis(LOOPBACK, port, socket_timeout=2, decode_responses=True)


def wait_until(what: str, check: Callable[[], bool], timeout: float = 15.0) -> float:
    """Poll ``check`` until true; the seconds it took (fails naming ``what`` after ``timeout``)."""
    began = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - began
        except redis.RedisError:
            pass
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def _sentinel_ready(port: int, replica_port: int) -> bool:
    with admin(port) as sentinel:
        replicas = sentinel.sentinel_slaves(SERVICE)
        peers = sentinel.sentinel_sentinels(SERVICE)
    return len(peers) == 2 and any(
        r["port"] == replica_port and not r["is_sdown"] for r in replicas
    )


def start_sentinels(workdir: Path) -> SentinelSetup:
    """Start the primary, its replica and three sentinels; return when failover is possible."""
    server = require_binary("redis-server", "redis-server")
    (workdir / "primary").mkdir()
    (workdir / "replica").mkdir()
    # shutdown-timeout 0: a primary stopped by SIGTERM does not wait for its replicas.
    log = ("--logfile", "redis.log", "--shutdown-timeout", "0")
    # Redis 7 waits 5 s before a diskless full sync, in case more replicas come: none will.
    primary = redis_server(workdir / "primary", *log, "--repl-diskless-sync-delay", "0")
    setup = SentinelSetup(primary, primary)  # the replica is set just below
    try:
        setup.replica = redis_server(
            workdir / "replica", *log, "--replicaof", LOOPBACK, str(primary.port)
        )
        with admin(setup.replica.port) as replica:
            wait_until(
                "the replica in sync",
                lambda: replica.info("replication")["master_link_status"] == "up",
            )
        for n in range(3):
            home = workdir / f"sentinel{n}"
            home.mkdir()
            port = free_port()
            (home / "sentinel.conf").write_text(
                f"bind {LOOPBACK}\nport {port}\ndir {home}\nlogfile sentinel.log\n"
                f"sentinel monitor {SERVICE} {LOOPBACK} {primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            )
            argv = [server, str(home / "sentinel.conf"), "--sentinel"]
            setup.sentinels.append(ServerProcess(argv, port, cwd=home).start())
        replica_port = setup.replica.port
        for sentinel in setup.sentinels:
            wait_until(
                f"sentinel {sentinel.port} knows the replica and its peers",
                functools.partial(_sentinel_ready, sentinel.port, replica_port),
            )
    except BaseException:
        setup.stop()
        raise
    return setup


def primary_port(setup: SentinelSetup) -> int:
    """The primary's port, as the first sentinel reports it."""
    with admin(setup.sentinels[0].port) as sentinel:
        _, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
    return int(port)
