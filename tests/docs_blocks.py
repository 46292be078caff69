"""A Markdown page's code blocks and the ``docs-test`` markers above them (tests/test_docs.py).

Sybil's Markdown lexers find the fenced blocks and the ``<!-- docs-test: ... -->`` comments;
this module pairs each marker with the block right below it, so every block knows at parse
time how it is to be run, and a marker that stands before no block (or a marker it does not
know) fails the page's parse instead of silently running nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sybil import Document, Example, Region
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, RawFencedCodeBlockLexer

PYTHON = frozenset({"python", "py"})
CONSOLE = frozenset({"console", "shell", "shell-session"})

#: The markers, as written after ``docs-test:``. Each takes the block right below it.
MARKER_KINDS = {
    "fragment": "a Python fragment: compiled (top-level await allowed), never run",
    "not run": "not run; the reason follows the colon: `not run: starts a server`",
    "save as": "also written to the named file in the page's directory before it runs",
    "continues": "run after the page's previous Python block, as one script",
    "server": "a console block that starts a server: `server 8000` runs it on a free port",
}
_MARKER = re.compile(r"(?P<kind>fragment|not run|save as|continues|server)\s*:?\s*(?P<arg>.*)")

_fences = RawFencedCodeBlockLexer(info_pattern=re.compile(r"(?P<language>[^\n]*)$\n", re.MULTILINE))
_markers = DirectiveInHTMLCommentLexer(directive="docs-test", arguments=".+?")
_ONLY_CLOSE = re.compile(r"\s*-*>?\s*")


class MarkerError(ValueError):
    """A ``docs-test`` marker that is unknown, lacks its argument, or precedes no block."""


@dataclass(frozen=True)
class Marker:
    kind: str
    arg: str
    line: int


@dataclass(frozen=True)
class Block:
    """One fenced block the tests look at: its language, text, line and marker (if any)."""

    language: str
    source: str
    line: int
    marker: Marker | None

    @property
    def kind(self) -> str:
        return "" if self.marker is None else self.marker.kind

    @property
    def arg(self) -> str:
        return "" if self.marker is None else self.marker.arg


Evaluator = Callable[[Example], str | None]


def _line(document: Document, position: int) -> int:
    return document.text.count("\n", 0, position) + 1


def _marker(document: Document, region: Region) -> Marker:
    line = _line(document, region.start)
    text = str(region.lexemes["arguments"]).strip()
    match = _MARKER.fullmatch(text)
    if match is None:
        known = ", ".join(MARKER_KINDS)
        raise MarkerError(f"{document.path}:{line}: unknown marker {text!r} (known: {known})")
    kind, arg = match["kind"], match["arg"].strip()
    if kind in {"not run", "save as", "server"} and not arg:
        raise MarkerError(f"{document.path}:{line}: `{kind}` needs an argument ({text!r})")
    if kind == "server" and not arg.isdigit():
        raise MarkerError(f"{document.path}:{line}: `server` takes the port the page uses")
    return Marker(kind, arg, line)


def block_parser(python: Evaluator, console: Evaluator) -> Callable[[Document], Iterator[Region]]:
    """A Sybil parser: a region for each Python or console block, its marker attached."""

    def parse(document: Document) -> Iterator[Region]:
        markers = sorted(_markers(document), key=lambda region: region.start)
        fences = sorted(_fences(document), key=lambda region: region.start)
        pending = list(markers)
        for fence in fences:
            marker = None
            while pending and pending[0].end <= fence.start:
                candidate = pending.pop(0)
                # Sybil's region stops before the comment's closing ``-->``.
                if not _ONLY_CLOSE.fullmatch(document.text[candidate.end : fence.start]):
                    line = _line(document, candidate.start)
                    raise MarkerError(f"{document.path}:{line}: the marker is above no block")
                marker = _marker(document, candidate)
            language = str(fence.lexemes["language"]).strip().split(" ")[0].lower()
            evaluator = python if language in PYTHON else console if language in CONSOLE else None
            if evaluator is None:
                if marker is not None:
                    raise MarkerError(
                        f"{document.path}:{marker.line}: a marker on a {language or 'plain'} block,"
                        " which is never run"
                    )
                continue
            source = str(fence.lexemes["source"])
            # The block's own first line (the fence line is 1 above it).
            line = _line(document, fence.start) + 1
            block = Block(language, source, line, marker)
            yield Region(fence.start, fence.end, block, evaluator)
        if pending:
            line = _line(document, pending[0].start)
            raise MarkerError(f"{document.path}:{line}: the marker is above no block")

    return parse


def parse_page(path: Path, python: Evaluator, console: Evaluator) -> Document:
    return Document.parse(str(path), block_parser(python, console))
