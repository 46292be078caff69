"""The docs run as written: every Python block and console session in README.md and docs/*.md.

Each page (README.md and every ``docs/*.md``, found anew on each run, so a new page is tested
from its first commit) is read with Sybil's Markdown lexers (tests/docs_blocks.py). A page
runs in a fresh directory of its own, with ``$SECRET_KEY_BASE`` set (as it is for a reader who
followed the quick start), ``$REDIS_URL`` naming a real redis-server and ``$DATABASE_URL`` a
real PostgreSQL database; its blocks run in page order:

- a ```` ```python ```` block runs as a script of its own (``python block.py``): it must be a
  complete program, and exit 0;
- a ```` ```console ```` (or ``shell``) block runs its ``$ `` commands with bash, one after
  the other, sharing the page's directory and exported variables; where the page shows a
  command's output, what it prints must have that shape (tests/docs_console.py: words and
  numbers must be as shown, while words that mix digits with letters (ids, timestamps),
  ``...`` and times like ``(in 14 days)`` stand for any value; a line of just ``...`` for any
  lines).

Markers, for the blocks that do not run like that, are HTML comments on the line(s) right
above the block: GitHub and the Sphinx build show nothing of them.

``<!-- docs-test: fragment -->``
    A Python fragment (it uses names a full app would define). Not run; it must compile.
``<!-- docs-test: not run: REASON -->``
    Not run, for the reason given: it installs from an index, serves until stopped, needs
    a service the tests do not have, or shows a value that cannot be reproduced.
``<!-- docs-test: save as app.py -->``
    A Python block the page tells the reader to save: written to that file, then run.
``<!-- docs-test: continues -->``
    A Python block that goes on from the page's previous one: both run as one script.
``<!-- docs-test: server 8000 -->``
    A console block whose ``uvicorn``/``hypercorn``/``granian`` command serves until stopped:
    it runs in the background (stopped when the page is done), and the port the page writes,
    8000, becomes a free one in every later command of the page.

A marker the tests do not know, or one that stands above no block, fails the page.
"""

from __future__ import annotations

import ast
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sybil import Document, Example

from .docs_blocks import CONSOLE, PYTHON, Block, MarkerError, parse_page
from .docs_console import Page, new_page, parse_session, run_session, shape_mismatch
from .servers import LOOPBACK, PostgresServer, ServerProcess

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def run_python(example: Example) -> str | None:
    block: Block = example.parsed
    if block.kind == "fragment":
        try:
            compile(block.source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except SyntaxError as exc:
            return f"the fragment does not compile: {exc}"
        return None
    if block.kind == "not run":
        return None
    page: Page = example.namespace["page"]
    script = block.source
    if block.kind == "continues":
        if not page.last_python:
            return "`continues`, but no Python block ran before it on this page"
        script = page.last_python + "\n\n" + script
    if block.kind == "save as":
        (page.directory / block.arg).write_text(block.source)
    (page.directory / "docs_block.py").write_text(script)
    result = subprocess.run(
        [sys.executable, "docs_block.py"],
        cwd=page.directory,
        env=page.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    page.last_python = script
    if result.returncode != 0:
        return f"exited with {result.returncode}:\n{result.stdout}{result.stderr}"
    return None


def run_console(example: Example) -> str | None:
    block: Block = example.parsed
    if block.kind == "not run":
        return None
    commands = parse_session(block.source, block.line)
    if not commands:
        return "a console block with no `$ ` command: mark it, or make it a ```text block"
    page: Page = example.namespace["page"]
    return run_session(page, commands, block.arg if block.kind == "server" else None)


def _parse(path: Path) -> Document:
    return parse_page(path, run_python, run_console)


def _cases() -> Iterator[object]:
    for path in PAGES:
        try:
            examples = list(_parse(path))
        except MarkerError:
            yield pytest.param(path, -1, id=f"{path.relative_to(ROOT)}:markers")
            continue
        for index, example in enumerate(examples):
            block: Block = example.parsed
            name = f"{path.relative_to(ROOT)}:{block.line}"
            yield pytest.param(path, index, id=name)


@dataclass
class PageRun:
    """A page being run: its parsed blocks, its state, and how many blocks have run."""

    examples: list[Example]
    page: Page
    done: int = 0


class PageRuns:
    """Every page's run, each started on first use: a fresh directory and environment."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> None:
        self.tmp_path_factory, self.env = tmp_path_factory, env
        self.runs: dict[Path, PageRun] = {}

    def __getitem__(self, path: Path) -> PageRun:
        if path not in self.runs:
            document = _parse(path)
            page = new_page(self.tmp_path_factory.mktemp(path.stem), dict(self.env))
            document.namespace["page"] = page
            self.runs[path] = PageRun(list(document), page)
        return self.runs[path]

    def stop(self) -> None:
        for run in self.runs.values():
            run.page.stop()


@pytest.fixture(scope="module")
def page_runs(
    tmp_path_factory: pytest.TempPathFactory,
    redis_proc: ServerProcess,
    postgres_proc: PostgresServer,
) -> Iterator[PageRuns]:
    env = {
        **os.environ,
        "SECRET_KEY_BASE": secrets.token_hex(64),
        "REDIS_URL": f"redis://{LOOPBACK}:{redis_proc.port}/0",
        "DATABASE_URL": postgres_proc.url,
    }
    runs = PageRuns(tmp_path_factory, env)
    try:
        yield runs
    finally:
        runs.stop()


@pytest.mark.parametrize(("path", "index"), list(_cases()))
def test_block(path: Path, index: int, page_runs: PageRuns) -> None:
    """One block runs as written (blocks above it on its page run first, if not yet run)."""
    if index < 0:
        _parse(path)  # raises the MarkerError, naming the line
    run = page_runs[path]
    while run.done < index:  # selected alone (-k): what the page did before it comes first
        run.examples[run.done].evaluate()
        run.done += 1
    try:
        run.examples[index].evaluate()
    finally:
        run.done = max(run.done, index + 1)


_FENCE = re.compile(r"^[ \t]*(?:`{3,}|~{3,})[ \t]*(\w[\w-]*)[ \t]*$", re.MULTILINE)


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_block_is_collected(path: Path) -> None:
    """The lexers find every Python and console block a plain scan of the page finds."""
    text = path.read_text()
    languages = {"python", *PYTHON, *CONSOLE}
    opening = [m[1] for m in _FENCE.finditer(text) if m[1].lower() in languages]
    assert len(opening) == len(list(_parse(path)))


_PIP_EXTRAS = re.compile(r"pip install[^\n]*?(?:\.|asgisession)\[([\w,\s-]+)\]")


def test_install_lines_name_real_extras() -> None:
    """Every `pip install ...[extra]` in the docs names an extra that pyproject.toml has."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    section = pyproject.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    extras = set(re.findall(r"^([\w-]+) = \[", section, flags=re.MULTILINE))
    assert {"demo", "redis"} <= extras, "the extras section was not read"
    named = {
        (path.name, extra.strip())
        for path in PAGES
        for group in _PIP_EXTRAS.findall(path.read_text())
        for extra in group.split(",")
    }
    assert named, "no install line found: has the pattern gone stale?"
    assert [] == [(page, extra) for page, extra in sorted(named) if extra not in extras]


@pytest.mark.parametrize(
    ("expected", "actual", "fits"),
    [
        (["visits: 2"], ["visits: 2"], True),
        (["visits: 2"], ["visits: 1"], False),  # a session that was not read back
        (["key id fc03d46a"], ["key id 6c9dce4d"], True),
        (
            ["issued 2026-11-27T01:24:12Z (now)"],
            ["issued 2026-12-07T17:48:36Z (1 second ago)"],
            True,
        ),
        (["cookie=Ab1...; Path=/"], ["cookie=Xy9 zz; Path=/"], True),
        (["cookie=Ab1...; Path=/"], ["cookie=Xy9; Path=/app"], False),
        (["HTTP/1.1 200 OK", "...", "body"], ["HTTP/1.1 200 OK", "a: 1", "b: 2", "body"], True),
        (["HTTP/1.1 200 OK", "body"], ["HTTP/1.1 200 OK", "a: 1", "body"], False),
        (["one"], ["one", "two"], False),
    ],
)
def test_output_shape(expected: list[str], actual: list[str], fits: bool) -> None:
    """The shape rules of tests/docs_console.py, on lines that fit them and lines that do not."""
    assert fits == (shape_mismatch(expected, actual) is None)
