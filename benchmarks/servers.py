"""redis-server, memcached, PostgreSQL for the benchmarks: on free loopback ports, stopped by pid.

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
from collections.abc import Callable
from dataclasses import dataclass, field
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
    #: PostgreSQL's SIGTERM waits for its clients to leave; its SIGINT is the fast shutdown.
    stop_signal: int = signal.SIGTERM
    #: Runs after the process has ended (PostgreSQL's data directory is removed).
    cleanup: Callable[[], None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                os.kill(self.process.pid, self.stop_signal)
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=5)
        finally:
            self.log.close()
            if self.cleanup is not None:
                self.cleanup()


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


def postgres_bindir() -> Path | None:
    """``postgres``'s directory if it is on PATH, else Debian's newest
    ``/usr/lib/postgresql/<version>/bin`` (off PATH), else ``None``."""
    on_path = shutil.which("postgres")
    if on_path is not None:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda path: [int(part) for part in path.parts[-3].split(".") if part.isdigit()],
    )
    return found[-1].parent if found else None


def missing_postgres() -> str | None:
    """Why PostgreSQL cannot be used (not installed), or ``None`` when it can."""
    if postgres_bindir() is None:
        return "postgres not found: install Debian's postgresql (apt-get install postgresql)"
    return None


def postgres_url(port: int) -> str:
    """The URL of :func:`postgres_server`'s database (superuser ``postgres``, no password)."""
    return f"postgresql://postgres@{LOOPBACK}:{port}/postgres"


def postgres_server() -> Server:
    """A PostgreSQL on a free loopback port: ``initdb`` into a temporary directory of its
    own, durability off, as an unprivileged user when run as root (PostgreSQL refuses root).

    The same recipe as ``tests/servers.py``'s; superuser ``postgres``, trusted on loopback.
    """
    bindir = postgres_bindir()
    assert bindir is not None, "the caller checks missing_postgres() first"
    initdb, postgres = str(bindir / "initdb"), str(bindir / "postgres")
    prefix: list[str] = []
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0:
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            user = pwd.getpwnam("nobody")
        uid, gid = user.pw_uid, user.pw_gid
        prefix = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
    root = Path(tempfile.mkdtemp(prefix="asgisession-bench-pg-"))
    try:
        os.chown(root, uid, gid)
        subprocess.run(  # noqa: S603 - argv is built here
            [*prefix, initdb, "-D", str(root / "data"), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        port = free_port()
        argv = [
            *prefix, postgres, "-D", str(root / "data"), "-p", str(port),
            "-c", f"listen_addresses={LOOPBACK}", "-c", f"unix_socket_directories={root}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ]  # fmt: skip
        server = start("postgres", argv, port, wait=False)
        server.stop_signal = signal.SIGINT
        server.cleanup = lambda: shutil.rmtree(root, ignore_errors=True)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    ready(server)
    # The port opens before logins are accepted ("the database system is starting up").
    pg_isready = os.path.join(os.path.dirname(postgres), "pg_isready")
    deadline = time.monotonic() + 20
    probe = [pg_isready, "-q", "-h", LOOPBACK, "-p", str(port), "-t", "1"]
    while subprocess.run(probe, check=False, timeout=10).returncode != 0:  # noqa: S603
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"postgres on port {port} accepted no login within 20 s")
        time.sleep(0.05)
    return server
