"""Real server processes for the store tests, on free loopback ports, stopped by pid.

When a binary is missing the tests that need it skip with a message naming the Debian
package to install; with ``ASGISESSION_REQUIRE_SERVERS=1`` (which ``.ci/run`` sets) they
fail instead, so CI can never pass by skipping.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

LOOPBACK = "127.0.0.1"
#: The project's root: where served apps run, so ``tests.`` and ``examples.`` import.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def require_binary(name: str, package: str) -> str:
    """The path of ``name``; skip (or fail, in CI) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: install Debian's {package} (apt-get install {package})"
        if os.environ.get("ASGISESSION_REQUIRE_SERVERS") == "1":
            pytest.fail(message + "; ASGISESSION_REQUIRE_SERVERS=1 forbids skipping")
        pytest.skip(message)
    return path


def require_module(name: str, install: str) -> None:
    """Skip (or fail, in CI) when the Python module ``name`` cannot be imported."""
    try:
        importlib.import_module(name)
    except ImportError:
        message = f"the Python module {name} is missing: {install}"
        if os.environ.get("ASGISESSION_REQUIRE_SERVERS") == "1":
            pytest.fail(message + "; ASGISESSION_REQUIRE_SERVERS=1 forbids skipping")
        pytest.skip(message)


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: IO[bytes], timeout: float = 10.0
) -> None:
    """Block until something accepts connections on ``port``, or fail with the server's output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise RuntimeError(f"server exited with {process.returncode}: {output}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {LOOPBACK}:{port} within {timeout} s")


@dataclass
class ServerProcess:
    """A running server: its port and process, stoppable and restartable on the same port."""

    argv: list[str]
    port: int
    cwd: Path | None = None
    #: Stops the server at once, closing its clients' connections (PostgreSQL's SIGTERM
    #: would wait for every client to disconnect; its SIGINT is the fast shutdown).
    stop_signal: int = signal.SIGTERM
    #: Called once the port accepts connections; returns when the server can serve.
    ready: Callable[[ServerProcess], None] | None = field(default=None, repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # The server's output goes to a temporary file, not a pipe nobody drains (which would
    # block a chatty server once the pipe is full); one file per start, closed by stop().
    log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> ServerProcess:
        self.log = log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(self.port, self.process, log)
            if self.ready is not None:
                self.ready(self)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the process by pid (``stop_signal``, then SIGKILL) and reap it."""
        process, self.process = self.process, None
        log, self.log = self.log, None
        try:
            if process is not None and process.poll() is None:
                os.kill(process.pid, self.stop_signal)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
        finally:
            if log is not None:
                log.close()

    def restart(self) -> None:
        self.stop()
        self.start()


def redis_server(workdir: Path, *extra: str) -> ServerProcess:
    """A redis-server on a free loopback port, persisting nothing."""
    binary = require_binary("redis-server", "redis-server")
    port = free_port()
    argv = [
        binary, "--bind", LOOPBACK, "--port", str(port), "--save", "", "--appendonly", "no",
        "--dir", str(workdir), "--protected-mode", "yes", *extra,
    ]  # fmt: skip
    return ServerProcess(argv, port, cwd=workdir).start()


def memcached_server(*extra: str) -> ServerProcess:
    """A memcached on a free loopback port (TCP only, 64 MB)."""
    binary = require_binary("memcached", "memcached")
    port = free_port()
    argv = [binary, "-l", LOOPBACK, "-p", str(port), "-U", "0", "-m", "64", *extra]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    return ServerProcess(argv, port).start()


@dataclass
class PostgresServer:
    """A PostgreSQL server of the tests' own: its process, its data directory and its URL."""

    server: ServerProcess
    datadir: Path

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        """Superuser ``postgres``, trusted on loopback, database ``postgres``."""
        return f"postgresql://postgres@{LOOPBACK}:{self.server.port}/postgres"

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()


def postgres_bindir() -> Path:
    """Where PostgreSQL's programs are: ``postgres``'s directory if it is on PATH, else
    Debian's newest ``/usr/lib/postgresql/<version>/bin``; skip (or fail, in CI) if neither."""
    on_path = shutil.which("postgres")
    if on_path is not None:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda path: [int(part) for part in path.parts[-3].split(".") if part.isdigit()],
    )
    if found:
        return found[-1].parent
    return Path(require_binary("postgres", "postgresql")).parent  # skips or fails


def _unprivileged() -> tuple[list[str], int, int]:
    """How to run PostgreSQL, which refuses root: a ``setpriv`` prefix and the uid and gid.

    As the tests' own user when that is not root; as root, as the ``postgres`` system user
    Debian's package creates (else ``nobody``).
    """
    if os.geteuid() != 0:
        return [], os.geteuid(), os.getegid()
    import pwd

    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        user = pwd.getpwnam("nobody")
    setpriv = require_binary("setpriv", "util-linux")
    prefix = [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
              "--"]  # fmt: skip
    return prefix, user.pw_uid, user.pw_gid


def _wait_until_accepting(pg_isready: str) -> Callable[[ServerProcess], None]:
    """A ``ready`` hook: the port opens before PostgreSQL accepts logins ("starting up")."""

    def ready(server: ServerProcess, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        argv = [pg_isready, "-q", "-h", LOOPBACK, "-p", str(server.port), "-t", "1"]
        while subprocess.run(argv, check=False, timeout=10).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on port {server.port} not ready in {timeout} s")
            time.sleep(0.05)

    return ready


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL of its own: ``initdb`` into a temporary directory, then ``postgres`` on
    a free port of 127.0.0.1 only (its Unix socket in that directory), durability off for
    speed; as an unprivileged user (see :func:`_unprivileged`). The directory is removed after.
    """
    bindir = postgres_bindir()
    initdb, postgres = str(bindir / "initdb"), str(bindir / "postgres")
    pg_isready = str(bindir / "pg_isready")
    prefix, uid, gid = _unprivileged()
    # Not under pytest's tmp_path: its parents are private to root, and PostgreSQL's user
    # must reach the data directory.
    root = Path(tempfile.mkdtemp(prefix="asgisession-pg-"))
    try:
        os.chown(root, uid, gid)
        datadir = root / "data"
        subprocess.run(
            [*prefix, initdb, "-D", str(datadir), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        port = free_port()
        argv = [
            *prefix, postgres, "-D", str(datadir), "-p", str(port),
            "-c", f"listen_addresses={LOOPBACK}", "-c", f"unix_socket_directories={root}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200", "-c", "log_min_messages=warning",
            # No background writes: tests/reliability/stores.py counts the server's writes.
            "-c", "autovacuum=off",
        ]  # fmt: skip
        server = ServerProcess(
            argv, port, stop_signal=signal.SIGINT, ready=_wait_until_accepting(pg_isready)
        )
        server.start()
        try:
            yield PostgresServer(server, datadir)
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


#: The Debian 12 packages the Rails interop tests need (real Rails code, run by ruby).
RAILS_PACKAGES = "ruby-actionpack ruby-activesupport ruby-rack ruby-webrick"
RAILS_TOOLS = Path(__file__).parent / "data" / "rails"


def require_ruby_rails() -> str:
    """The path of ``ruby`` with Rails' ActionPack loadable; skip (or fail, in CI) if not."""
    ruby = require_binary("ruby", RAILS_PACKAGES)
    probe = subprocess.run(
        [ruby, "-e", 'require "action_controller"; require "rack/handler/webrick"'],
        capture_output=True,
        timeout=120,
    )
    if probe.returncode != 0:
        message = (
            f"ruby cannot load Rails' ActionPack: install Debian's {RAILS_PACKAGES} "
            f"(apt-get install -y {RAILS_PACKAGES}): {probe.stderr.decode(errors='replace')[:200]}"
        )
        if os.environ.get("ASGISESSION_REQUIRE_SERVERS") == "1":
            pytest.fail(message + "; ASGISESSION_REQUIRE_SERVERS=1 forbids skipping")
        pytest.skip(message)
    return ruby


def rails_server(secret_key_base: str, digest: str) -> ServerProcess:
    """``server.rb``: real Rails cookies, CookieStore session and CSRF on a free loopback port."""
    ruby = require_ruby_rails()
    port = free_port()
    argv = [ruby, "server.rb", str(port), secret_key_base, digest]
    return ServerProcess(argv, port, cwd=RAILS_TOOLS).start()


def serve_command(server: str, factory: str, port: int) -> list[str]:
    """How ``server`` (uvicorn, hypercorn or granian) serves the app ``factory`` makes."""
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", LOOPBACK,
                "--port", str(port)]  # fmt: skip
    if server == "hypercorn":
        return [sys.executable, "-m", "hypercorn", f"{factory}()", "--bind", f"{LOOPBACK}:{port}"]
    return [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host",
            LOOPBACK, "--port", str(port), "--workers", "1", factory]  # fmt: skip


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a served app: SIGTERM, then SIGKILL if it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_serving(
    url: str, process: subprocess.Popen[bytes], log: Path, *, seconds: float = 15.0
) -> None:
    """Poll ``url`` until ``process`` answers; fail with its log if it exits or stalls."""
    import httpx  # only the served tests need it

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
        else:
            return
    pytest.fail(f"the server did not answer {url} within {seconds} s:\n{log.read_text()}")


@contextmanager
def serving(
    command: list[str],
    port: int,
    ready_path: str,
    log: Path,
    env: dict[str, str] | None = None,
    *,
    seconds: float = 15.0,
) -> Iterator[str]:
    """Run ``command`` (a server listening on ``port``) from the project's root, its output
    in ``log``; yield its base URL once ``ready_path`` answers; stop it afterwards."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            base_url = f"http://{LOOPBACK}:{port}"
            wait_until_serving(f"{base_url}{ready_path}", process, log, seconds=seconds)
            yield base_url
        finally:
            stop_process(process)
