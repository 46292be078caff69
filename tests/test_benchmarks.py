"""The benchmark suite keeps running: one ``--quick`` run, and its outputs are well formed.

No timing is asserted (numbers belong to benchmarks, not tests); what is checked is that
every section ran, every figure is a finite number, the machine is described and the
Markdown and PNG files exist. The suite needs the ``bench`` dependency group; without it
this test skips and says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from asgisession.cli import bench as _bench
from asgisession.cli import main

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {"codec", "middleware", "stores", "e2e"}


def require_bench_group() -> None:
    missing = [name for name in _bench.BENCH_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(
            f"the bench dependency group is not installed (missing {', '.join(missing)}): "
            "pip install --group bench"
        )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    require_bench_group()
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        # The asyncio load generator, so the run does not depend on wrk being installed.
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--quick",
            "--loadgen",
            "python",
            "--targets",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert 0 == done.returncode, done.stdout[-3000:] + done.stderr[-3000:]
    return out, done.stdout


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@pytest.mark.integration
def test_quick_run_writes_json_with_every_section_and_the_machine(
    quick_run: tuple[Path, str],
) -> None:
    out, _ = quick_run
    doc = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert SECTIONS == set(doc["sections"])
    assert doc["mode"]["quick"] is True
    assert "loadgen.py" in doc["sections"]["e2e"]["info"]["load generator"]
    machine = doc["machine"]
    assert machine["cpu_count"] >= 1
    assert machine["python"]
    assert machine["packages"]["asgisession"]
    assert machine["packages"]["litestar"]
    for name, section in doc["sections"].items():
        assert section["measures"], f"{name} measured nothing"
        for measure in section["measures"]:
            assert measure["samples"], measure["name"]
            assert all(_finite(s) for s in measure["samples"]), measure
            assert _finite(measure["median"]), measure
        for ratio in section["ratios"]:
            assert _finite(ratio["value"]), ratio
            assert ratio["met"] in (True, False, None)
    if os.environ.get("ASGISESSION_REQUIRE_SERVERS") == "1":  # CI: no row may be skipped
        assert [] == doc["sections"]["stores"]["skipped"] + doc["sections"]["e2e"]["skipped"]
    # The targets are all there, each judged.
    labels = [t["label"] for t in doc["targets"]]
    assert any("asgisession / litestar" in label for label in labels)
    assert any("untouched" in label for label in labels)
    assert any("cookie store, session read" in label for label in labels)
    assert all(t["met"] in (True, False) for t in doc["targets"])


@pytest.mark.integration
def test_quick_run_writes_markdown_chart_and_terminal_table(quick_run: tuple[Path, str]) -> None:
    out, stdout = quick_run
    markdown = (out / "bench.md").read_text(encoding="utf-8")
    assert markdown.startswith("# asgisession benchmark results")
    for section in SECTIONS:
        assert f"## {section}" in markdown
    assert (out / "ratios.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "== targets (issue #5)" in stdout
    assert "met in this run" in stdout


def test_bench_command_outside_a_checkout_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_bench, "source_checkout", lambda: None)
    assert 2 == main(["bench", "--quick"])
    err = capsys.readouterr().err
    assert "not part of the installed package" in err
    assert "tox -e bench" in err


def test_bench_command_without_the_bench_group_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_bench, "BENCH_MODULES", ("no_such_module_for_asgisession_bench",))
    assert 2 == _bench.run(argparse.Namespace(quick=True, only=None, out=None))
    assert "no_such_module_for_asgisession_bench" in capsys.readouterr().err


def bench_codec(
    capfd: pytest.CaptureFixture[str], tmp_path: Path, *extra: str
) -> tuple[str, list[str]]:
    """``asgisession bench --quick --only codec``: what it printed, and the files it wrote."""
    require_bench_group()
    code = main(["bench", "--quick", "--only", "codec", "--out", str(tmp_path), *extra])
    out = capfd.readouterr().out
    assert 0 == code, out
    return out, sorted(path.name for path in tmp_path.iterdir())


def test_bench_shows_the_figures_side_by_side_and_grades_nothing(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A user's run: each candidate's medians in one row, the peers under it; no verdicts."""
    out, written = bench_codec(capfd, tmp_path)
    header = next(line for line in out.splitlines() if "50B encode" in line)
    assert ["50B", "encode", "50B", "decode", "1KB", "encode"] == header.split()[:6]
    for name in ("asgisession encrypted", "starlette (itsdangerous)", "litestar (AES-GCM)"):
        row = next(line for line in out.splitlines() if line.strip().startswith(name))
        assert 6 == len(row[len(name) + 4 :].split()), row  # one figure per case
    assert "asgisession / litestar" in out  # the ratios, without a target
    for graded in ("targets (issue #5)", "MISSED", " met", "<= 1x"):
        assert graded not in out
    assert "## Targets" not in (tmp_path / "bench.md").read_text(encoding="utf-8")
    assert ["bench.json", "bench.md"] == written


def test_bench_with_targets_grades_the_ratios(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out, written = bench_codec(capfd, tmp_path, "--targets")
    assert "== targets (issue #5)" in out
    assert "met in this run" in out
    assert re.search(r"asgisession / litestar .*<= 1x\s+(met|MISSED)", out)
    assert "## Targets" in (tmp_path / "bench.md").read_text(encoding="utf-8")
    assert "ratios.png" in written


def test_hot_session_script_runs_and_loses_no_update_of_separate_keys(tmp_path: Path) -> None:
    """``benchmarks/hot_session.py`` on MemoryStore and SQLite, briefly: every point is
    reported, and no writer's increment of its own key is lost (the merge's promise)."""
    require_bench_group()
    out = tmp_path / "hot.json"
    argv = [
        sys.executable, "-m", "benchmarks.hot_session", "--stores", "memory,sqlite",
        "--writers", "2,4", "--rounds", "1", "--seconds", "0.2", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert 0 == done.returncode, done.stderr[-2000:]
    points = json.loads(out.read_text())
    expected = {
        f"{store}|{workload}|{n}|tree"
        for store in ("memory", "sqlite")
        for workload in ("shared", "own", "burst")
        for n in (2, 4)
    }
    assert expected == set(points)
    for name, rounds in points.items():
        assert 1 == len(rounds), name
        for point in rounds:
            assert point["rps"] > 0, name
            assert 0 == point["errors"], name
            if "|shared|" not in name:  # increments of one shared key collide by design
                assert 0 == point["lost"], name
                assert 0 == point["fallbacks"], name
