"""redis-server and memcached for the benchmarks: started on free loopback ports, stopped by pid.

The same approach as ``tests/servers.py`` (which benchmarks must not import, as it needs
pytest): a missing binary is not an error here but a reason to skip the rows that need it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before listening")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {LOOPBACK}:{port} within {timeout} s")


@dataclass
class Server:
    """A running server process; ``stop()`` ends it by pid (SIGTERM, then SIGKILL)."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=5)
        finally:
            self.log.close()


def start(
    name: str,
    argv: list[str],
    port: int,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> Server:
    """Start ``argv``; with ``wait``, return once it listens on ``port`` (else see ``ready``)."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by Server.stop()
    process = subprocess.Popen(  # noqa: S603 - argv is built here, from which() and numbers
        argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    server = Server(name, port, process, log)
    if wait:
        ready(server)
    return server


def ready(server: Server) -> None:
    """Block until ``server`` listens; stop it and raise with its output if it never does."""
    name, port, process, log = server.name, server.port, server.process, server.log
    try:
        wait_for_port(port, process)
    except BaseException as exc:
        log.seek(0)
        output = log.read().decode(errors="replace")[-2000:]
        server.stop()
        if isinstance(exc, RuntimeError):
            raise RuntimeError(f"{name}: {exc}\n{output}") from None
        raise


def missing(binary: str, package: str) -> str | None:
    """Why ``binary`` cannot be used (not installed), or ``None`` when it can."""
    if shutil.which(binary) is None:
        return f"{binary} not found: install Debian's {package} (apt-get install {package})"
    return None


def redis_server(workdir: Path) -> Server:
    """A redis-server on a free loopback port that persists nothing."""
    port = free_port()
    argv = [
        shutil.which("redis-server") or "redis-server", "--bind", LOOPBACK, "--port", str(port),
        "--save", "", "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes",
    ]  # fmt: skip
    return start("redis-server", argv, port, cwd=workdir)


def memcached_server() -> Server:
    """A memcached on a free loopback port (TCP only, 64 MB)."""
    port = free_port()
    argv = [shutil.which("memcached") or "memcached", "-l", LOOPBACK, "-p", str(port), "-U", "0"]
    argv += ["-m", "64"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    return start("memcached", argv, port)
