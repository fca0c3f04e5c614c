"""``harness load``: Locust in a subprocess against the real SDK proxy (sandbox upstream).

Locust is never imported here (it monkey-patches the standard library with gevent): the
driver under test starts it as ``python -m locust``. Runs are kept to a few seconds.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import harness.load.driver as load_module
from harness.load.cli import add_arguments as add_load_arguments
from harness.load.cli import run as load_command
from harness.load.driver import LoadPlan, run_load
from harness.load.locust_job import LOCUSTFILE, LocustJob
from harness.load.process_sampler import ProcessSampler, find_listening_pid
from harness.load.targets import (
    LoadTarget,
    RemoteTargetRefused,
    check_loopback,
    parse_duration,
    parse_target,
)
from harness.loopback import LoopbackServer, free_port
from harness.sandbox.client import SandboxControl
from harness.store.capture_store import CaptureStore
from tests.conftest import MASTER_KEY

LOAD_NAMES = {"chat", "chat stream", "messages", "messages stream+tools"}
STREAM_NAMES = {"chat stream", "messages stream+tools"}


def _plan(tmp_path: Path, *targets: LoadTarget, **overrides: Any) -> LoadPlan:
    values: dict[str, Any] = {
        "targets": targets,
        "key": MASTER_KEY,
        "out_dir": tmp_path / "load",
        "store": tmp_path / "shadow.db",
        "warmup_loops": 0,
    }
    values.update(overrides)
    return LoadPlan(**values)


def _answers_counted(out_dir: Path) -> int:
    """The answers Locust has counted so far, from its stats file (0 before it exists)."""
    for stats in out_dir.glob("*/*/locust_stats.csv"):
        with stats.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["Name"] == "Aggregated":
                    return int(row["Request Count"])
    return 0


def _load_runs(store: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(store) as conn:
        rows = conn.execute(
            "SELECT id, name, target, params_json, results_json FROM load_runs ORDER BY id"
        ).fetchall()
    return [
        {"id": r[0], "name": r[1], "target": r[2], "params": json.loads(r[3]), **json.loads(r[4])}
        for r in rows
    ]


@pytest.mark.slow
def test_criterion_run_against_the_sdk_proxy(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl, tmp_path: Path
) -> None:
    out = io.StringIO()
    plan = _plan(tmp_path, LoadTarget("sdk", sdk_proxy.url), users=50, duration_s=5, warmup_loops=1)

    report = run_load(plan, out=out)

    assert report.exit_code == 0, out.getvalue()
    (result,) = report.results
    assert result.status == "ok" and result.exit_code == 0
    requests = result.requests()
    assert requests["count"] >= 100 and requests["failures"] == 0
    assert requests["p50_ms"] <= requests["p95_ms"] <= requests["p99_ms"]
    assert result.ttft()["count"] > 0
    rows = {(r["type"], r["name"]): r for r in result.summary["by_name"]}  # type: ignore[index]
    assert rows.keys() == {("POST", n) for n in LOAD_NAMES} | {("TTFT", n) for n in STREAM_NAMES}
    for name in LOAD_NAMES:  # the response length is the output tokens, not bytes
        assert 0 < rows[("POST", name)]["avg_response_length"] < 500
    for name in STREAM_NAMES:  # a stream is timed to its end, after its first token
        assert rows[("TTFT", name)]["avg_ms"] <= rows[("POST", name)]["avg_ms"]
    assert result.summary["slo"] == {  # type: ignore[index]
        "max_failure_ratio": 0.0,
        "p95_ms": 5000.0,
        "missed": [],
        "ok": True,
    }

    # Files: CSV, HTML, summary and log per target under <out>/<UTC timestamp>/<target>/.
    assert result.out_dir == report.run_dir / "sdk"
    assert report.run_dir.parent == (tmp_path / "load").resolve()
    files = {p.name for p in result.out_dir.iterdir()}
    assert {"locust_stats.csv", "locust_failures.csv", "report.html", "summary.json"} <= files
    with (result.out_dir / "locust_stats.csv").open() as stats:
        types = {row["Type"] for row in csv.DictReader(stats)}
    assert {"POST", "TTFT"} <= types

    # The proxy runs in this process: found by its port, sampled every second.
    assert result.pid == os.getpid()
    assert len(result.samples) >= 5
    assert all(s.rss_bytes and s.cpu_seconds is not None for s in result.samples)
    cpu = result.cpu_ms_per_request()
    assert cpu is not None and cpu > 0

    (run,) = _load_runs(tmp_path / "shadow.db")
    assert run["target"] == "sdk" and run["status"] == "ok"
    assert run["name"] == f"load-criterion-{report.run_dir.name}"
    assert run["params"]["users"] == 50 and run["params"]["seed"] == 1
    assert run["requests"]["count"] == requests["count"]
    assert run["process"]["pid"] == os.getpid()
    stored = CaptureStore(tmp_path / "shadow.db").process_samples(run["id"])
    assert len(stored) == len(result.samples)
    # Each sample knows how many requests had been served by then (the memory gate's
    # x axis): from Locust's history, rising to the run's request count.
    served = [s.requests for s in stored]
    assert all(n is not None for n in served) and served == sorted(served)  # type: ignore[type-var]
    assert served[-1] == requests["count"]

    text = out.getvalue()
    for label in ("req/s", "p99 ms", "TTFT p50 ms", "TTFT p95 ms", "RSS end MB", "CPU ms/request"):
        assert label in text
    assert "warm-up" in text and MASTER_KEY not in text
    # Bodies, User-Agents and memory ids came from the corpus and the seeded users.
    user_ids = {r["headers"].get("x-sm-user-id") for r in sandbox.api_requests()}
    assert any(u and u.startswith("load-user-") for u in user_ids)
    assert {"claude-code", "openai-sdk", "pycharm-ai"} <= user_ids  # sandbox.yaml's mappings


@pytest.mark.slow
def test_injected_upstream_errors_fail_the_slo(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl, tmp_path: Path
) -> None:
    # The SDK proxy retries 429 and 503, not 500: half the requests fail.
    sandbox.set_faults(error_rate_500=0.5)

    report = run_load(
        _plan(tmp_path, LoadTarget("sdk", sdk_proxy.url), users=10, duration_s=3),
        out=io.StringIO(),
    )

    assert report.exit_code == 1
    (result,) = report.results
    assert result.status == "slo-missed"
    assert result.exit_code == 1  # set by the locustfile's quitting listener
    assert "failure ratio" in result.reason
    assert result.requests()["failures"] > 0
    assert result.summary["slo"]["ok"] is False  # type: ignore[index]
    # The summary is written as Locust quits; its CSVs are snapshots refreshed once a
    # second, so a failure in a run's last second may not be in them yet.
    # Every error is the injected fault: a plain answer's 500 comes back as 502 (the
    # proxy's upstream-error mapping), a stream's as the 500 event the provider sent.
    # Which kinds draw the fault in a 3-second run is chance, so neither is required.
    errors = result.summary["errors"]  # type: ignore[index]
    assert errors
    assert all(re.search(r"status 50[02]\b", error["error"]) for error in errors), errors
    assert _load_runs(tmp_path / "shadow.db")[0]["status"] == "slo-missed"


@pytest.mark.slow
def test_streams_are_read_as_they_arrive(
    sandbox_server: LoopbackServer, sandbox: SandboxControl, tmp_path: Path
) -> None:
    # Straight at the sandbox, streams only: 300 ms before the first token, 20 ms between
    # events. Reading in blocks would hold back the first token until the stream's end.
    sandbox.set_faults(ttft_ms=300, chunk_delay_ms=20)
    plan = _plan(
        tmp_path,
        LoadTarget("sandbox", sandbox_server.url),
        users=4,
        duration_s=3,
        store=None,
        extra_env={"LOAD_WEIGHT_CHAT": "0", "LOAD_WEIGHT_MESSAGES": "0"},
    )

    report = run_load(plan, out=io.StringIO())

    assert report.exit_code == 0
    summary = report.results[0].summary or {}
    rows = {(r["type"], r["name"]): r for r in summary["by_name"]}
    assert {name for _, name in rows} == STREAM_NAMES
    for name in STREAM_NAMES:
        ttft, whole = rows[("TTFT", name)], rows[("POST", name)]
        assert 300 <= ttft["p50_ms"] < 600
        assert whole["p50_ms"] >= ttft["p50_ms"] + 60


@pytest.mark.slow
def test_ctrl_c_stops_the_run_and_keeps_what_was_measured(
    sdk_proxy: LoopbackServer,
    sandbox: SandboxControl,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wait = subprocess.Popen.wait

    def interrupted_wait(self: subprocess.Popen[bytes], timeout: float | None = None) -> int:
        if timeout is not None and timeout > 30:  # the driver waiting for the whole run
            # Ctrl-C once Locust has counted a few answers (its stats file, rewritten every
            # second): on a busy machine its start alone can take longer than any fixed
            # sleep, and requests the provider has seen may not be answered yet.
            deadline = time.monotonic() + 60
            while _answers_counted(tmp_path / "load") < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            raise KeyboardInterrupt
        return wait(self, timeout)

    monkeypatch.setattr(subprocess.Popen, "wait", interrupted_wait)
    second = LoadTarget("legacy", sdk_proxy.url)

    report = run_load(
        _plan(tmp_path, LoadTarget("sdk", sdk_proxy.url), second, users=5, duration_s=60),
        out=io.StringIO(),
    )

    assert report.interrupted and report.exit_code == 130
    (result,) = report.results  # the second target was not started
    assert result.status == "interrupted"
    assert result.requests()["count"] > 0 and result.requests()["failures"] == 0
    assert {"summary.json", "report.html", "locust_stats.csv"} <= {
        p.name
        for p in result.out_dir.iterdir()  # type: ignore[union-attr]
    }
    (run,) = _load_runs(tmp_path / "shadow.db")
    assert run["status"] == "interrupted" and run["requests"]["count"] > 0


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("nothing may be sent to a refused target")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(httpx, "get", refuse)
    monkeypatch.setattr(load_module, "run_locust", refuse)
    monkeypatch.setattr(load_module, "replay", refuse)


def test_a_remote_target_is_refused_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_network(monkeypatch)
    local = LoadTarget("sdk", "http://127.0.0.1:8764")
    remote = LoadTarget("legacy", "http://10.1.2.3:8764")

    with pytest.raises(RemoteTargetRefused, match=r"10\.1\.2\.3.*--allow-remote"):
        run_load(_plan(tmp_path, local, remote))
    assert not (tmp_path / "load").exists() and not (tmp_path / "shadow.db").exists()

    parser = argparse.ArgumentParser()
    add_load_arguments(parser)
    args = parser.parse_args(
        ["--target", "sdk=http://10.1.2.3:8764", "--key", "k", "--out", str(tmp_path / "o")]
    )
    assert load_command(args) == 2
    assert "not a loopback address" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8764", True),
        ("http://127.8.9.10:1", True),
        ("http://localhost:8764", True),
        ("http://[::1]:8764", True),
        ("http://10.1.2.3:8764", False),
        ("http://0.0.0.0:8764", False),
        ("http://proxy.example.com:8764", False),
    ],
)
def test_loopback_rule(url: str, allowed: bool) -> None:
    targets = [LoadTarget("t", url)]
    if allowed:
        check_loopback(targets, allow_remote=False)
    else:
        with pytest.raises(RemoteTargetRefused):
            check_loopback(targets, allow_remote=False)
    check_loopback(targets, allow_remote=True)


def test_a_down_target_is_reported_as_down(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    out = io.StringIO()

    report = run_load(
        _plan(tmp_path, LoadTarget("legacy", f"http://127.0.0.1:{port}"), warmup_loops=1),
        out=out,
    )

    assert report.exit_code == 1
    (result,) = report.results
    assert result.status == "down"
    assert "ConnectError" in result.reason
    assert not (report.run_dir / "legacy").exists()  # no Locust run, no flood of failures
    text = out.getvalue()
    assert f"http://127.0.0.1:{port} is down" in text and "no load sent" in text
    assert _load_runs(tmp_path / "shadow.db")[0]["status"] == "down"


def test_process_sampler_and_pid_lookup(sandbox_server: LoopbackServer) -> None:
    assert find_listening_pid(sandbox_server.port) == os.getpid()
    assert find_listening_pid(free_port()) is None

    sampler = ProcessSampler("me", os.getpid(), interval=0.05).start()
    time.sleep(0.3)
    samples = sampler.stop()
    assert len(samples) >= 4
    assert all(s.target == "me" and s.rss_bytes for s in samples)
    cpu = [s.cpu_seconds or 0.0 for s in samples]
    assert cpu == sorted(cpu)
    assert [s.t for s in samples] == sorted(s.t for s in samples)

    assert ProcessSampler("nobody", None).start().stop() == []


def test_parsing_targets_durations_and_pids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parse_target("sdk=http://127.0.0.1:8764/") == LoadTarget("sdk", "http://127.0.0.1:8764")
    assert parse_target("http://127.0.0.1:8765").name == "127.0.0.1-8765"
    for bad in ("sdk=ftp://127.0.0.1", "s d=http://127.0.0.1:1", "sdk="):
        with pytest.raises(ValueError):
            parse_target(bad)
    assert parse_duration("60s") == 60
    assert parse_duration("90") == 90
    assert parse_duration("5m") == 300
    assert parse_duration("1h30m") == 5400
    for bad in ("", "0s", "soon", "5x"):
        with pytest.raises(ValueError):
            parse_duration(bad)

    parser = argparse.ArgumentParser()
    add_load_arguments(parser)
    args = parser.parse_args(
        ["--target", "sdk=http://127.0.0.1:1", "--pid", "legacy=12", "--key", "k"]
    )
    assert load_command(args) == 2
    assert "no target named legacy" in capsys.readouterr().err


def test_locust_command_per_profile(tmp_path: Path) -> None:
    def job(profile: str, **kw: Any) -> LocustJob:
        return LocustJob(url="http://127.0.0.1:1", out_dir=tmp_path, key="k", profile=profile, **kw)

    criterion = job("criterion", users=50, duration_s=60).command()
    assert criterion[1:5] == ["-m", "locust", "-f", str(LOCUSTFILE)]
    assert "--headless" in criterion and "--html" in criterion and "--csv" in criterion
    assert criterion[-6:] == ["-u", "50", "-r", "50", "-t", "60s"]
    assert job("soak", users=50, duration_s=1800).command()[-6:] == [
        *("-u", "50", "-r", "5", "-t", "1800s")
    ]
    assert job("criterion", users=8, spawn_rate=2).command()[-4] == "-r"
    ramp = job("ramp", users=20, duration_s=40)
    assert "-u" not in ramp.command() and "-t" not in ramp.command()  # the shape decides
    env = ramp.environment({"PATH": "/bin", "LOAD_WEIGHT_CHAT": "3"})
    assert env["LOAD_PROFILE"] == "ramp" and env["LOAD_PEAK"] == "20"
    assert env["LOAD_DURATION_S"] == "40" and env["LOAD_API_KEY"] == "k"
    assert env["LOAD_WEIGHT_CHAT"] == "3"  # the caller's weights pass through
    assert env["LOAD_SUMMARY"] == str(tmp_path / "summary.json")


def _csv_columns(path: Path) -> list[str]:
    with path.open(newline="") as stats:
        return next(csv.reader(stats))


@pytest.mark.slow
def test_two_workers_total_the_sum_of_their_requests_with_the_same_files(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl, tmp_path: Path
) -> None:
    out = io.StringIO()
    target = LoadTarget("sdk", sdk_proxy.url)
    # Warmed up: a fresh proxy answers its first requests seconds late (lazy imports),
    # which would miss the p95 SLO whatever the workers do.
    plan = _plan(tmp_path, target, users=4, duration_s=3, workers=2, warmup_loops=1)

    report = run_load(plan, out=out)

    assert report.exit_code == 0, out.getvalue()
    (result,) = report.results
    assert result.status == "ok" and result.summary is not None
    workers = result.summary["workers"]
    assert len(workers) == 2 and all(w is not None and w["requests"] > 0 for w in workers)
    requests = result.requests()
    # Every request a worker sent reached the master's totals, none twice.
    assert requests["count"] == sum(w["requests"] for w in workers)
    assert requests["failures"] == sum(w["failures"] for w in workers) == 0
    assert result.ttft()["count"] == sum(w["ttft"] for w in workers) > 0
    assert (report.run_dir / "sdk" / "report.html").is_file()
    (run,) = _load_runs(tmp_path / "shadow.db")
    assert run["requests"]["count"] == requests["count"] and run["status"] == "ok"

    # One Locust process, for the columns: the same CSV files, the same columns.
    single = run_load(_plan(tmp_path / "one", target, users=2, duration_s=2), out=io.StringIO())
    (alone,) = single.results
    assert alone.status == "ok" and alone.out_dir is not None and result.out_dir is not None
    for name in ("locust_stats.csv", "locust_failures.csv", "locust_stats_history.csv"):
        assert _csv_columns(result.out_dir / name) == _csv_columns(alone.out_dir / name)


def test_distributed_commands_and_the_master_bind_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = LocustJob(
        url="http://127.0.0.1:1", out_dir=tmp_path, key="k", workers=2, master_port=5599
    )
    master = job.command()
    assert master[master.index("-t") + 1] == "60s"
    assert master[-7:] == [
        *("--master", "--expect-workers", "2"),
        *("--master-bind-host", "127.0.0.1", "--master-bind-port", "5599"),
    ]
    assert job.worker_command()[-5:] == [
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        "5599",
    ]
    worker_env = job.worker_environment(1)
    assert "LOAD_SUMMARY" not in worker_env
    assert worker_env["LOAD_WORKER_SUMMARY"] == str(tmp_path / "worker-1.json")

    parser = argparse.ArgumentParser()
    add_load_arguments(parser)
    args = parser.parse_args(
        ["--target", "sdk=http://127.0.0.1:8764", "--key", "k", "--out", str(tmp_path / "o"),
         "--workers", "2", "--master-bind", "0.0.0.0"]
    )  # fmt: skip
    assert load_command(args) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
