"""Runs the conformance matrix and writes its result into docs/frameworks.md.

    .venv/bin/python scripts/matrix.py [pytest args...]

Runs ``pytest tests/integration/test_matrix.py`` (with a JUnit XML report), then replaces
the text between the ``matrix:start`` and ``matrix:end`` markers of docs/frameworks.md with
a table of the cases by framework (each cell summarising the stores that case runs on), the
server of each (framework, store) cell, the date, the command and the wall time. Exits with
pytest's status, so a failing matrix is written down and still fails.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.matrix_cells import STORES, server_for  # noqa: E402
from tests.integration.test_matrix import CASES  # noqa: E402

FRAMEWORKS = {
    "raw": "raw ASGI",
    "starlette": "Starlette",
    "fastapi": "FastAPI",
    "litestar": "Litestar",
    "quart": "Quart",
    "django": "Django",
}
STORE_NAMES = {"cookie": "cookie", "sqlite": "SQLite", "redis": "Redis", "memcached": "Memcached"}
DOCS = ROOT / "docs" / "frameworks.md"
START, END = "<!-- matrix:start -->", "<!-- matrix:end -->"
TEST = "tests/integration/test_matrix.py"


def outcomes(report: Path) -> dict[tuple[str, str, str], str]:
    """(framework, store, case) -> passed, failed, xfail or skipped, from JUnit XML."""
    found = {}
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 - our pytest's
        name = case.get("name", "")
        if not name.startswith("test_matrix["):
            continue
        framework, store, row = name.removeprefix("test_matrix[").removesuffix("]").split("-", 2)
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif skipped is not None:
            outcome = "xfail" if skipped.get("type") == "pytest.xfail" else "skipped"
        else:
            outcome = "passed"
        found[(framework, store, row)] = outcome
    return found


def summary(results: dict[tuple[str, str, str], str], framework: str, case: str) -> str:
    """One table cell: ``pass`` when every store passed, else what did not, by store."""
    by_store = {s: results.get((framework, s, case), "not run") for s in STORES}
    ran = {s: outcome for s, outcome in by_store.items() if outcome != "not run"}
    if not ran:
        return "not run"
    if all(outcome == "passed" for outcome in ran.values()):
        return "pass"
    worse = [f"{outcome}: {STORE_NAMES[s]}" for s, outcome in ran.items() if outcome != "passed"]
    return "**" + "; ".join(worse) + "**"


def table(results: dict[tuple[str, str, str], str], command: str, seconds: float) -> str:
    lines = [
        "| case | stores | " + " | ".join(FRAMEWORKS.values()) + " |",
        "| --- | --- |" + " --- |" * len(FRAMEWORKS),
    ]
    for case in CASES:
        stores = (
            "all four" if case.stores == STORES else ", ".join(STORE_NAMES[s] for s in case.stores)
        )
        cells = [summary(results, framework, case.name) for framework in FRAMEWORKS]
        lines.append(f"| {case.title} | {stores} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "The server of each cell:",
        "",
        "| | " + " | ".join(STORE_NAMES.values()) + " |",
        "| --- |" + " --- |" * len(STORES),
    ]
    for framework, name in FRAMEWORKS.items():
        servers = [server_for(framework, store) for store in STORES]
        lines.append(f"| {name} | " + " | ".join(servers) + " |")
    counts: dict[str, int] = {}
    for outcome in results.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    tally = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    served = len({(framework, store) for framework, store, _ in results})
    lines += [
        "",
        f"Last run: {date}, {len(results)} cases in {served} served cells: {tally}; "
        f"{seconds:.0f} s wall time on a loaded 2-core machine. Command: `{command}`.",
    ]
    return "\n".join(lines)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "matrix.xml"
        args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", TEST, *sys.argv[1:]]
        began = time.monotonic()
        status = subprocess.run(  # noqa: S603 - this interpreter, our args
            [sys.executable, *args, f"--junitxml={report}"], cwd=ROOT, check=False
        ).returncode
        seconds = time.monotonic() - began
        results = outcomes(report)
    command = "python " + " ".join(args)
    text = DOCS.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{START}\n{table(results, command, seconds)}\n{END}{tail}")
    print(f"docs/frameworks.md: the matrix table written ({len(results)} cases, {seconds:.0f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
