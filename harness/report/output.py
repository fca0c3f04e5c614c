"""Writing a report's files and pointing ``reports/latest`` at them (the only I/O here)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report.model import ReadinessReport
from harness.report.render_html import render_html
from harness.report.render_json import render_json
from harness.report.render_md import render_markdown
from harness.report.svg import render_svg

__all__ = [
    "LATEST",
    "earlier_reports",
    "latest_report",
    "point_latest",
    "read_report_json",
    "write_report",
]

LATEST = "latest"


def _run_dir(out: Path, generated_at: float) -> Path:
    stamp = datetime.fromtimestamp(generated_at, UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate, n = out / stamp, 1
    while candidate.exists():  # two reports in one second keep both
        n += 1
        candidate = out / f"{stamp}-{n}"
    return candidate


def write_report(report: ReadinessReport, out: str | Path) -> Path:
    """``<out>/<UTC timestamp>/report.{md,html,json}`` and ``charts/*.svg``; the folder."""
    run_dir = _run_dir(Path(out), report.context.generated_at)
    charts = run_dir / "charts"
    charts.mkdir(parents=True)
    for chart in report.charts:
        (charts / f"{chart.slug}.svg").write_text(render_svg(chart) + "\n", encoding="utf-8")
    (run_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (run_dir / "report.html").write_text(render_html(report), encoding="utf-8")
    (run_dir / "report.json").write_text(render_json(report), encoding="utf-8")
    point_latest(Path(out), run_dir)
    return run_dir


def point_latest(out: Path, run_dir: Path) -> Path:
    """``<out>/latest`` -> the run folder: a relative symlink swapped in atomically, or,
    where symlinks are not allowed, a text file holding the folder's path."""
    latest = out / LATEST
    temporary = out / f".{LATEST}.{os.getpid()}"
    try:
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(temporary, latest)
    except OSError:
        temporary.unlink(missing_ok=True)
        if latest.is_symlink() or latest.is_file():
            latest.unlink()
        latest.write_text(f"{run_dir}\n", encoding="utf-8")
    return latest


def latest_report(out: str | Path) -> Path | None:
    """The folder ``<out>/latest`` points at (a symlink, or a file holding its path)."""
    latest = Path(out) / LATEST
    if latest.is_symlink() or latest.is_dir():
        target = latest.resolve()
    elif latest.is_file():
        target = Path(latest.read_text(encoding="utf-8").strip())
    else:
        return None
    return target if (target / "report.json").is_file() else None


def read_report_json(path: str | Path) -> dict[str, Any]:
    """An earlier report: its ``report.json``, or a folder holding one."""
    path = Path(path)
    file = path / "report.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HarnessError(f"{file}: cannot read the report: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise HarnessError(f"{file}: not a report (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or "decision" not in data or "gates" not in data:
        raise HarnessError(f"{file}: not a report.json written by `harness report`")
    return data


def earlier_reports(out: str | Path) -> list[dict[str, Any]]:
    """Every readable ``<out>/*/report.json`` (the report folders), in no order."""
    found = []
    for file in Path(out).glob("*/report.json"):
        folder = file.parent
        if folder.name.startswith(".") or folder.name == LATEST or folder.is_symlink():
            continue  # `latest` points at one of the folders: not a report of its own
        try:
            found.append(read_report_json(file))
        except HarnessError:
            continue  # a half-written or foreign file is not history
    return found
