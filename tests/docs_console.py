"""Console sessions in the docs, run for real (tests/test_docs.py).

A page's commands share one directory and one environment (an ``export`` in one block holds
for the next), with the project's .venv first on PATH, so ``python``, ``uvicorn`` and
``asgisession`` are the ones the tests use. A command's output is compared by its shape
(``shape_mismatch``), since ids, sizes, times and cookies differ from run to run.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .servers import free_port, stop_process, wait_for_port

#: Commands that start a server, which a ``server PORT`` block runs in the background.
SERVERS = re.compile(r"^(?:python -m )?(?:uvicorn|hypercorn|granian)\b")
_SHELL_ONLY = frozenset({"_", "SHLVL", "PWD", "OLDPWD"})
#: "(now)", "(in 14 days)", "(2 seconds ago)": how inspect says when.
#: Terminal styling (curl -i prints header names in bold), which a reader never sees as text.
_STYLE = re.compile(r"\x1b\[[0-9;]*m")
_RELATIVE_TIME = re.compile(r"\((?:now|in [^()]*|[^()]* ago)\)")


@dataclass
class Command:
    text: str
    expected: list[str]
    line: int


def parse_session(source: str, first_line: int) -> list[Command]:
    """The ``$ `` commands of a console block (a trailing ``\\`` continues one), each with
    the output lines below it."""
    commands: list[Command] = []
    lines = source.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("$ "):
            text, start = line[2:], index
            while text.endswith("\\") and index + 1 < len(lines):
                index += 1
                text = text[:-1] + "\n" + lines[index]
            commands.append(Command(text, [], first_line + start))
        elif commands:
            commands[-1].expected.append(line)
        else:
            raise ValueError(f"line {first_line + index}: output before any `$ ` command")
        index += 1
    return commands


def _line_pattern(expected: str) -> re.Pattern[str]:
    """A line's shape: words and numbers as written, a word that mixes digits with other
    characters for any word, ``...`` for any text, a relative time for any relative time.

    A first word ending in ``:`` (a header name) matches in any case, as HTTP reads it:
    uvicorn writes ``Transfer-Encoding`` with h11 and ``transfer-encoding`` with httptools.
    """
    parts: list[str] = []
    for index, word in enumerate(_RELATIVE_TIME.sub(" \0 ", expected).split()):
        if word == "\0":
            parts.append(_RELATIVE_TIME.pattern)
        elif "..." in word:
            parts.append(".*?".join(_word(piece) for piece in word.split("...")))
        elif index == 0 and word.endswith(":") and len(word) > 1:
            parts.append(f"(?i:{_word(word)})")
        else:
            parts.append(_word(word))
    return re.compile(r"\s*" + r"\s+".join(parts) + r"\s*")


def _word(word: str) -> str:
    # A number is kept (a count, a size); a word that mixes digits with letters or signs (a
    # key id, a timestamp, a cookie value) differs from run to run.
    if word.isdigit() or not any(c.isdigit() for c in word):
        return re.escape(word)
    return r"\S+"


def shape_mismatch(expected: list[str], actual: list[str]) -> str | None:
    """None when ``actual`` has the shape of ``expected``; else what differs.

    A line of just ``...`` stands for any number of lines (headers a server adds, say).
    """
    expected = [line.rstrip() for line in expected]
    actual = [line.rstrip("\r\n ") for line in actual]
    while expected and not expected[-1]:
        expected.pop()
    while actual and not actual[-1]:
        actual.pop()

    def match(e: int, a: int) -> bool:
        if e == len(expected):
            return a == len(actual)
        if expected[e].strip() == "...":
            return any(match(e + 1, skip) for skip in range(a, len(actual) + 1))
        return (
            a < len(actual)
            and _line_pattern(expected[e]).fullmatch(actual[a]) is not None
            and match(e + 1, a + 1)
        )

    if match(0, 0):
        return None
    return "expected (shape):\n  " + "\n  ".join(expected) + "\ngot:\n  " + "\n  ".join(actual)


@dataclass
class Page:
    """What a page's blocks share: a directory, an environment, servers, the last Python."""

    directory: Path
    env: dict[str, str]
    ports: dict[str, str] = field(default_factory=dict)
    servers: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)
    last_python: str = ""

    def with_ports(self, text: str) -> str:
        for documented, real in self.ports.items():
            text = re.sub(rf"(?<=[:= ]){documented}\b", real, text)
        return text

    def run(self, command: str, timeout: float = 120) -> tuple[int, str]:
        """Run one command with bash on a terminal, as a reader would; keep what it exports.

        A terminal, not a pipe, so programs print what a reader sees (curl, say, shows its
        progress meter only when its output is not a terminal).
        """
        env_file = self.directory / ".docs-test-env"
        script = f'{command}\n__status=$?\nenv -0 > "{env_file}"\nexit $__status\n'
        main, child = pty.openpty()
        process = subprocess.Popen(
            ["bash", "-c", script],
            cwd=self.directory,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=child,
            stderr=child,
        )
        os.close(child)
        output = bytearray()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if select.select([main], [], [], 0.1)[0]:
                    try:
                        data = os.read(main, 65536)
                    except OSError:  # EIO: every writer has closed the terminal
                        break
                    if not data:
                        break
                    output += data
                elif process.poll() is not None:
                    break
            else:
                process.kill()
                raise TimeoutError(f"still running after {timeout} s: {command}")
        finally:
            os.close(main)
        status = process.wait(timeout=10)
        if env_file.exists():
            pairs = (item.split("=", 1) for item in env_file.read_text().split("\0") if item)
            self.env = {k: v for k, v in pairs if k not in _SHELL_ONLY}
            env_file.unlink()
        text = output.decode(errors="replace").replace("\r\n", "\n")
        return status, _STYLE.sub("", text)

    def serve(self, command: str, port: int) -> None:
        """Start a server command in the background and wait until it listens."""
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=self.directory,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.servers.append((process, log))
        wait_for_port(port, process, log, timeout=20)

    def stop(self) -> None:
        while self.servers:
            process, log = self.servers.pop()
            stop_process(process)
            log.close()


def new_page(directory: Path, env: dict[str, str]) -> Page:
    """A page's state: its directory, and the environment with .venv's bin first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    return Page(directory, {**env, "PATH": path})


def run_session(page: Page, commands: list[Command], server_port: str | None) -> str | None:
    """Run a console block's commands in order; None when each output has its shape."""
    if server_port is not None and server_port not in page.ports:
        page.ports[server_port] = str(free_port())
    for command in commands:
        text = page.with_ports(command.text)
        if server_port is not None and SERVERS.match(text):
            page.serve(text.rstrip().removesuffix("&"), int(page.ports[server_port]))
            continue
        status, output = page.run(text)
        where = f"line {command.line}: $ {command.text}"
        if command.expected:
            mismatch = shape_mismatch(command.expected, output.splitlines())
            if mismatch is not None:
                return f"{where}\n{mismatch}\n(exit status {status})"
        elif status != 0:
            return f"{where}\nexited with {status}:\n{output}"
    return None
