"""The suite's outputs: the terminal tables, ``bench.json``, ``bench.md`` and ``ratios.png``."""

from __future__ import annotations

import importlib.metadata
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from .codec import machine_info
from .harness import Mode, Ratio, SectionResult

PACKAGES = (
    "asgisession", "cryptography", "msgspec", "itsdangerous", "starlette", "litestar",
    "aiohttp", "aiohttp-session", "django", "starsessions", "uvicorn", "redis", "aiomcache",
    "aiosqlite", "matplotlib",
)  # fmt: skip
NOISY = 0.25  # an IQR above this share of the median is flagged


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def _ratio_text(ratio: Ratio) -> str:
    return f"{_fmt(ratio.value)} {'µs' if ratio.unit == 'us' else 'x'}"


def _target_text(ratio: Ratio) -> str:
    if ratio.target is None:
        return ""
    sign = "<=" if ratio.better == "lower" else ">="
    unit = " µs" if ratio.unit == "us" else "x"
    return f"{sign} {ratio.target:g}{unit}"


def _verdict(ratio: Ratio) -> str:
    return {True: "met", False: "MISSED", None: ""}[ratio.met]


def section_table(result: SectionResult, *, graded: bool = False) -> str:
    """One section as plain text: the figures side by side, then the ratios.

    ``graded`` adds each ratio's target and verdict (the project's own targets, issue #5):
    ``--targets`` asks for them; a user comparing libraries is not graded.
    """
    lines = [f"\n== {result.name}"]
    for key, value in result.info.items():
        lines.append(f"   {key}: {value}")
    lines += side_by_side(result)
    if result.ratios:
        lines.append("  ratios (median of per-round ratios)")
        for ratio in result.ratios:
            target = _target_text(ratio) if graded else ""
            verdict = f"  [{_verdict(ratio)} {target}]" if target else ""
            lines.append(f"    {ratio.label:<64} {_ratio_text(ratio):>12}{verdict}")
    return "\n".join(lines)


def side_by_side(result: SectionResult) -> list[str]:
    """Each candidate on one line, its median in each case in a column, peers under it.

    A ``~`` marks a noisy figure (its IQR over a quarter of the median); ``bench.md`` has
    every figure with its IQR.
    """
    cases: dict[str, str] = {}  # case -> unit, in the order measured
    rows: dict[str, dict[str, str]] = {}
    for m in result.measures:
        cases.setdefault(m.case, m.unit)
        summary = m.summary()
        iqr = summary["iqr_share"]
        noisy = "~" if iqr is not None and iqr > NOISY else ""
        rows.setdefault(m.name, {})[m.case] = noisy + _fmt(summary["median"])
    if not rows:
        return []
    units = set(cases.values())
    heads = list(cases) if len(units) == 1 else [f"{case} ({unit})" for case, unit in cases.items()]
    width = max(10, *(len(head) for head in heads))
    name_width = max(len(name) for name in rows)
    unit_note = f" ({next(iter(units))})" if len(units) == 1 else ""
    lines = [
        f"  median per candidate{unit_note}",
        f"    {'':<{name_width}}" + "".join(f"  {head:>{width}}" for head in heads),
    ]
    for name, cells in rows.items():
        lines.append(
            f"    {name:<{name_width}}"
            + "".join(f"  {cells.get(case, '-'):>{width}}" for case in cases)
        )
    return lines


def targets(results: list[SectionResult]) -> list[Ratio]:
    return [r for result in results for r in result.ratios if r.target is not None]


def targets_table(results: list[SectionResult]) -> str:
    rows = targets(results)
    if not rows:
        return ""
    lines = ["\n== targets (issue #5)"]
    for r in rows:
        lines.append(f"  {r.label:<64} {_ratio_text(r):>12}  {_target_text(r):<10} {_verdict(r)}")
    met = sum(1 for r in rows if r.met)
    lines.append(f"  {met} of {len(rows)} met in this run")
    return "\n".join(lines)


def document(
    results: list[SectionResult], mode: Mode, command: str, started: datetime, elapsed: float
) -> dict[str, Any]:
    """Everything as one JSON-ready dict: the machine, every measure and ratio."""
    machine = machine_info()
    versions: dict[str, str | None] = {}
    for dist in PACKAGES:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    machine["packages"] = versions
    if machine.get("load_average_at_end"):
        machine["load_average_at_end"] = [round(x, 2) for x in machine["load_average_at_end"]]
    return {
        "command": command,
        "started_at": started.isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "mode": {
            "quick": mode.quick,
            "rounds": mode.rounds,
            "batch_ms": mode.batch_ms,
            "loadgen": mode.loadgen,
        },
        "machine": machine,
        "sections": {
            result.name: {
                "info": result.info,
                "skipped": result.skipped,
                "measures": [m.summary() for m in result.measures],
                "ratios": [r.summary() for r in result.ratios],
            }
            for result in results
        },
        "targets": [r.summary() for r in targets(results)],
    }


def markdown(doc: dict[str, Any], results: list[SectionResult], *, graded: bool = False) -> str:
    machine = doc["machine"]
    lines = [
        "# asgisession benchmark results",
        "",
        f"`{doc['command']}` at {doc['started_at']} ({doc['elapsed_s']} s, "
        f"{'quick' if doc['mode']['quick'] else 'full'} run, {doc['mode']['rounds']} rounds).",
        "",
        f"Machine: {machine['cpu'].get('model')}, {machine['cpu_count']} CPUs "
        f"(load average at the end {machine.get('load_average_at_end')}), "
        f"Python {machine['python'].split()[0]}.",
        "",
        "Packages: "
        + ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v is not None),
        "",
        "Figures are medians over rounds; a ratio is the median of per-round ratios.",
        "",
    ]
    rows = targets(results) if graded else []
    if rows:
        lines += [
            "## Targets",
            "",
            "| comparison | this run | target | |",
            "| --- | ---: | --- | --- |",
        ]
        for r in rows:
            lines.append(f"| {r.label} | {_ratio_text(r)} | {_target_text(r)} | {_verdict(r)} |")
        lines.append("")
    for result in results:
        lines += [f"## {result.name}", ""]
        for key, value in result.info.items():
            lines.append(f"- {key}: {value}")
        if result.info:
            lines.append("")
        for reason in result.skipped:
            lines.append(f"- skipped: {reason}")
        if result.skipped:
            lines.append("")
        lines += [
            "| case | candidate | median | unit | p25-p75 |",
            "| --- | --- | ---: | --- | --- |",
        ]
        for m in result.measures:
            s = m.summary()
            lines.append(
                f"| {m.case} | {m.name} | {_fmt(s['median'])} | {m.unit} | "
                f"{_fmt(s['p25'])}-{_fmt(s['p75'])} |"
            )
        if graded:
            lines += ["", "| ratio | value | target |", "| --- | ---: | --- |"]
            for r in result.ratios:
                lines.append(f"| {r.label} | {_ratio_text(r)} | {_target_text(r)} {_verdict(r)} |")
        else:
            lines += ["", "| ratio | value |", "| --- | ---: |"]
            lines += [f"| {r.label} | {_ratio_text(r)} |" for r in result.ratios]
        lines.append("")
    return "\n".join(lines)


def chart(results: list[SectionResult], path: Path) -> Path | None:
    """A horizontal bar per target, drawn as the share of its target (1.0 = exactly on it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = targets(results)
    if not rows:
        return None
    labels, shares, colours = [], [], []
    for r in rows:
        # "How much of the allowance was used": below 1 is good either way.
        share = r.value / r.target if r.better == "lower" else r.target / r.value  # type: ignore[operator]
        labels.append(f"{r.label} ({_ratio_text(r)}, target {_target_text(r)})")
        shares.append(share)
        colours.append("#2a7d2a" if r.met else "#c0392b")
    fig, ax = plt.subplots(figsize=(11, 0.32 * len(rows) + 1.5))
    ax.barh(range(len(rows)), shares, color=colours)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("measured / target (for 'at least' targets: target / measured); <= 1 meets it")
    ax.set_title("asgisession: issue #5 targets in this run")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write(
    doc: dict[str, Any], results: list[SectionResult], out: Path, *, graded: bool = False
) -> list[Path]:
    """Write bench.json and bench.md; with ``graded``, the targets chart ratios.png too."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "bench.json"
    json_path.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    md_path = out / "bench.md"
    md_path.write_text(markdown(doc, results, graded=graded), encoding="utf-8")
    written = [json_path, md_path]
    if not graded:
        return written
    png = chart(results, out / "ratios.png")
    if png is not None:
        written.append(png)
    return written
