"""A real three-node Redis Cluster on loopback, for the RedisStore tests.

Each node is a redis-server with cluster mode on, in its own directory (each writes its own
nodes.conf). ``redis-cli --cluster create`` assigns the slots, and the cluster is ready once
every node reports ``cluster_state:ok``. Nodes are stopped by pid, like every server in
:mod:`tests.servers`.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .servers import LOOPBACK, ServerProcess, require_binary

#: A node talks to the others on its port + 10000 (the cluster bus).
BUS_OFFSET = 10_000


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def free_cluster_port(taken: set[int]) -> int:
    """A port that, like its cluster-bus port (port + 10000), was free a moment ago.

    Ports come from 20000-22767, so the bus ports (30000-32767) stay below Linux's
    ephemeral range (32768+), where the kernel hands out ports to outgoing connections.
    """
    for _ in range(200):
        port = random.randint(20_000, 22_767)
        if {port, port + BUS_OFFSET} & taken:
            continue
        if _bindable(port) and _bindable(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair (port, port + 10000) on 127.0.0.1")


@dataclass
class RedisClusterProcesses:
    """The nodes of a running cluster; ``stop()`` stops every one of them by pid."""

    nodes: list[ServerProcess] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _cluster_info(cli: str, port: int) -> str:
    result = subprocess.run(
        [cli, "-h", LOOPBACK, "-p", str(port), "cluster", "info"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    return result.stdout


def start_redis_cluster(workdirs: list[Path], timeout: float = 20.0) -> RedisClusterProcesses:
    """Start one cluster node per directory, join them, and wait until the cluster is ok."""
    server = require_binary("redis-server", "redis-server")
    cli = require_binary("redis-cli", "redis-tools")
    cluster = RedisClusterProcesses()
    taken: set[int] = set()
    try:
        for workdir in workdirs:
            port = free_cluster_port(taken)
            taken |= {port, port + BUS_OFFSET}
            argv = [
                server, "--bind", LOOPBACK, "--port", str(port), "--save", "",
                "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes",
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(workdir / "nodes.conf"),
                "--cluster-node-timeout", "5000",
                # a file, not stdout: nobody drains the pipe while the node runs
                "--logfile", str(workdir / "redis.log"),
            ]  # fmt: skip
            cluster.nodes.append(ServerProcess(argv, port, cwd=workdir).start())
        create = subprocess.run(
            [cli, "--cluster", "create", *(f"{LOOPBACK}:{p}" for p in cluster.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {create.stdout}{create.stderr}")
        deadline = time.monotonic() + timeout
        while not all("cluster_state:ok" in _cluster_info(cli, port) for port in cluster.ports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster on {cluster.ports} not ok within {timeout} s")
            time.sleep(0.1)
    except BaseException:
        cluster.stop()
        raise
    return cluster
