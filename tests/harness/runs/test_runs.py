"""Runs in one store: each reported on its own, ``--since`` cuts by time, ``harness runs``
lists them and ``harness reset`` archives the store."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from harness.report.cli import add_arguments as add_report_arguments
from harness.report.cli import run as report_command
from harness.runs.cli import add_arguments, add_reset_arguments, run, run_reset
from harness.runs.listing import ResetRefused
from harness.runs.scope import ScopeError, parse_since
from harness.store.capture_store import CaptureStore
from tests.harness.report.synthetic import BASE_TIME, SLOTS, _answers, _pair, _Verbatim

HARNESS_YAML = Path(__file__).resolve().parents[3] / "config" / "harness.yaml"
# 56 pairs per endpoint x stream slot, over 50 timed on each side (the rest are error
# pairs): the p95 latency check decides only from report.latency_p95_min_samples (50).
PAIRS = 392
# The second run's pairs are received this long after the first's.
LATER = 10_000.0


def _run(store_path: Path, mood: str, shift: float) -> int:
    """One run of ``PAIRS`` pairs in ``mood``, received ``shift`` s after the base time."""
    with CaptureStore(store_path, spill=False) as store:
        run_id = store.open_run(
            mode="replay",
            primary_role="sdk",
            versions={"sdk": "memory_proxy test"},
            configs={},
            started_at=BASE_TIME + shift,
        )
    answers = {slot: _answers(*slot) for slot in SLOTS}
    with CaptureStore(
        store_path, redactor=_Verbatim(), spill=False, run_id=run_id, queue_size=PAIRS + 1
    ) as store:
        for i in range(PAIRS):
            pair = _pair(i, mood, answers)
            request = dataclasses.replace(
                pair.request, received_at=pair.request.received_at + shift
            )
            store.put(dataclasses.replace(pair, request=request))
    return run_id


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    """Run 1 clean (GO), run 2 with regressions (NO-GO), in one store."""
    path = tmp_path / "shadow.db"
    first = _run(path, "go", 0.0)
    second = _run(path, "nogo", LATER)
    with CaptureStore(path, spill=False) as store:
        store.record_run_counters(first, "tap", {"seen": 412, "skipped": {"sample": 20}})
        store.record_run_counters(first, "mirror", {"queued": PAIRS, "skipped": {}})
        store.end_run(first, BASE_TIME + 1000)
        store.record_run_counters(second, "tap", {"seen": 2000, "skipped": {"queue_full": 10}})
        store.record_run_counters(
            second, "mirror", {"queued": 1840, "skipped": {"breaker_open": 150}}
        )
        store.add_load_run("load", target="sdk", started_at=BASE_TIME + LATER, run_id=second)
    return path


def _report(tmp_path: Path, store: Path, *extra: str) -> tuple[int, dict, str]:
    config = tmp_path / "config.yaml"
    config.write_text("model_list: []\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    out = tmp_path / "reports"
    args = parser.parse_args(
        ["--store", str(store), "--out", str(out), "--harness-config", str(HARNESS_YAML)]
        + ["--config", str(config), *extra]
    )
    code = report_command(args)
    data = json.loads((out / "latest" / "report.json").read_text(encoding="utf-8"))
    return code, data, (out / "latest" / "report.md").read_text(encoding="utf-8")


def test_two_runs_in_one_store_are_reported_separately(
    tmp_path: Path, two_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Default: the latest run, with its coverage on the first screen.
    code, data, _ = _report(tmp_path, two_runs)
    screen = capsys.readouterr().out
    assert (code, data["decision"]) == (1, "NO-GO")
    context = data["context"]
    assert (context["run"]["id"], context["pairs"], context["load_runs"]) == (2, PAIRS, 1)
    assert context["coverage"] == {
        "seen": 2000,
        "mirrored": 1840,
        "skipped": {"breaker open": 150, "queue full": 10},
        "complete": True,
    }
    assert (
        "Mirror coverage: 1,840 of 2,000 requests mirrored; 160 skipped: breaker open 150, "
        "queue full 10"
    ) in screen
    assert "run 2 (replay, sdk answering clients)" in screen

    # The first run alone: no regression, its own coverage; the second run's load run is
    # not its (so its load and memory gates wait for one).
    code, data, markdown = _report(tmp_path, two_runs, "--run", "1")
    assert (code, data["decision"], data["summary"]["failed"]) == (2, "INCONCLUSIVE", [])
    assert data["summary"]["inconclusive"] == ["load: 50 concurrent users", "memory: RSS growth"]
    context = data["context"]
    assert (context["run"]["id"], context["pairs"], context["load_runs"]) == (1, PAIRS, 0)
    assert context["coverage"]["mirrored"] == PAIRS
    assert "392 of 412 requests mirrored; 20 skipped: sampled out 20" in markdown


def test_since_cuts_by_time(tmp_path: Path, two_runs: Path) -> None:
    between = BASE_TIME + LATER / 2
    _, data, _ = _report(tmp_path, two_runs, "--since", str(between))
    # Across runs (no --run): only the pairs received after the cut, i.e. run 2's.
    assert data["context"]["pairs"] == PAIRS and data["decision"] == "NO-GO"
    assert "run" not in data["context"]
    _, data, _ = _report(tmp_path, two_runs, "--since", str(BASE_TIME - 1), "--run", "all")
    assert data["context"]["pairs"] == 2 * PAIRS
    # Within one run: the cut and the run both apply.
    _, data, _ = _report(tmp_path, two_runs, "--run", "1", "--since", str(between))
    assert data["context"]["pairs"] == 0


def test_run_since_and_instance_combine(tmp_path: Path, two_runs: Path) -> None:
    # A second proxy ("bob") wrote into run 2 as well: a team's store, each pair names
    # the proxy that captured it.
    answers = {slot: _answers(*slot) for slot in SLOTS}
    with CaptureStore(
        two_runs, redactor=_Verbatim(), spill=False, run_id=2, instance="bob"
    ) as store:
        for i in range(10):
            pair = _pair(i, "go", answers)
            request = dataclasses.replace(
                pair.request, received_at=pair.request.received_at + LATER
            )
            store.put(dataclasses.replace(pair, request=request))
    since = str(BASE_TIME + LATER)
    _, data, markdown = _report(
        tmp_path, two_runs, "--run", "2", "--since", since, "--instance", "bob"
    )
    context = data["context"]
    assert (context["pairs"], context["run"]["id"]) == (10, 2)
    assert context["scope"] == "run 2, since 2026-01-01 02:46:40 UTC, instance bob"
    assert "pairs since 2026-01-01 02:46:40 UTC, instance bob" in markdown
    # --instance alone reads every run (each proxy opens runs of its own).
    _, data, markdown = _report(tmp_path, two_runs, "--instance", "bob")
    assert data["context"]["pairs"] == 10 and "run" not in data["context"]
    assert data["context"]["scope"] == "all runs, instance bob"
    assert "| pairs read | all runs, instance bob |" in markdown


def test_since_accepts_iso_times_and_ages() -> None:
    assert parse_since("2026-01-01T00:00:00Z") == BASE_TIME
    assert parse_since("2026-01-01T01:00") == BASE_TIME + 3600
    assert parse_since("2h", now=BASE_TIME) == BASE_TIME - 7200
    # The formats the team's --since took: a date, an offset, minutes and days.
    assert parse_since("2026-01-01") == BASE_TIME
    assert parse_since("2026-01-01T02:00+01:00") == BASE_TIME + 3600
    assert parse_since("90m", now=BASE_TIME) == BASE_TIME - 5400
    assert parse_since("7d", now=BASE_TIME) == BASE_TIME - 7 * 86400
    assert parse_since(str(BASE_TIME)) == BASE_TIME
    with pytest.raises(ScopeError, match="expected an ISO time"):
        parse_since("yesterday")


def test_an_unknown_run_is_a_clear_error(tmp_path: Path, two_runs: Path) -> None:
    with pytest.raises(ScopeError, match="--run 7: no such run"):
        _report(tmp_path, two_runs, "--run", "7")


def _runs_args(store: Path, *extra: str, reset: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    (add_reset_arguments if reset else add_arguments)(parser)
    return parser.parse_args(["--store", str(store), *extra])


def test_runs_lists_each_run_and_reset_archives_the_store(
    tmp_path: Path, two_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(_runs_args(two_runs)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("run 1: 2026-01-01 00:00:00 to 2026-01-01 00:16:40 UTC, replay")
    assert "392 pairs, 0 load runs; 392 of 412 requests mirrored" in lines[0]
    assert lines[1].startswith("run 2: ") and " to open UTC" in lines[1]

    # Run 2 is still open: a shadow process may be writing to the store.
    with pytest.raises(ResetRefused, match="run 2 is still open"):
        run_reset(_runs_args(two_runs, reset=True))
    assert run_reset(_runs_args(two_runs, "--force", reset=True)) == 0
    assert not two_runs.exists()
    (archive,) = tmp_path.glob("shadow-archived-*.db")
    with CaptureStore(archive, spill=False) as kept:
        assert kept.count() == 2 * PAIRS and [r.id for r in kept.runs()] == [1, 2]
    # The next run starts an empty store.
    with CaptureStore(two_runs, spill=False) as fresh:
        assert fresh.count() == 0 and fresh.runs() == ()
