"""The canary's plan, window judge and controller, on a real SQLite store (no servers).

Time is the controller's injected clock: each check of the window moves it on by the
check interval, so a 10-step run costs no wall-clock time and no timing assumption.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.cutover.canary.controller import CanaryController, CanaryPlan
from harness.cutover.canary.judge import judge_window, served_error
from harness.cutover.canary.plan import CanaryPlanError, parse_duration, parse_steps
from harness.cutover.config_edit import read_use_sdk
from harness.cutover.switch import SwitchOptions, switch_to_sdk
from harness.observation import CapturedPair, Observation
from harness.report.evidence import comparator_for
from harness.report.model import Status
from harness.report.tally import RunInfo
from harness.settings import HarnessSettings
from harness.store.canary_store import CanaryState, CanaryStore
from harness.store.capture_store import CaptureStore, StoredPair, UnreadableRow
from tests.harness.builders import chat_observation, make_pair

MIN = 5
# Windows of MIN pairs decide every check, p95 included (report.latency_p95_min_samples
# keeps p95 INCONCLUSIVE below 50 per side by default).
SETTINGS = HarnessSettings().with_overrides("report", min_samples=MIN, latency_p95_min_samples=MIN)
RUN = RunInfo(0.0, "test", "test", "config.yaml", None, "store.db")


def _timed(observation: Observation, total_ms: float) -> Observation:
    return dataclasses.replace(observation, total_ms=total_ms, time_to_headers_ms=total_ms / 2)


def _pair(n: int, at: float, *, sdk_status: int = 200, sdk_served: bool = True) -> CapturedPair:
    sdk = _timed(chat_observation(target="sdk"), 100.0 + n % 7)
    if sdk_status != 200:
        sdk = dataclasses.replace(
            sdk, status=sdk_status, body={"error": {"message": "upstream failed"}}
        )
    legacy = _timed(chat_observation(target="legacy"), 100.0 + n % 5)
    primary, shadow = (sdk, legacy) if sdk_served else (legacy, sdk)
    pair = make_pair(primary, shadow, request_id=f"req-{at}-{n}")
    return dataclasses.replace(pair, request=dataclasses.replace(pair.request, received_at=at))


def _judge(rows: list[StoredPair | UnreadableRow]) -> Any:
    comparator, redactor = comparator_for(SETTINGS, None)
    return judge_window(rows, SETTINGS, comparator, RUN, redactor)


# -- plan ---------------------------------------------------------------------------------


def test_step_lists_are_read_and_bad_ones_refused_with_a_clear_message() -> None:
    assert parse_steps("5,25,50,100") == (5.0, 25.0, 50.0, 100.0)
    assert parse_steps("100") == (100.0,)
    for bad, says in (
        ("", "give percentages"),
        ("25,5,100", "must increase"),
        ("5,25,25,100", "must increase"),
        ("5,150", "outside (0, 100]"),
        ("0,100", "outside (0, 100]"),
        ("5,25", "not 100"),
        ("5,x,100", "not a percentage"),
    ):
        with pytest.raises(CanaryPlanError, match=says.replace("(", r"\(").replace("]", r"\]")):
            parse_steps(bad)
    assert parse_duration("10m") == 600
    assert parse_duration("1.5s") == 1.5
    with pytest.raises(CanaryPlanError, match="duration"):
        parse_duration("ten minutes")


# -- judge --------------------------------------------------------------------------------


def _rows(pairs: list[CapturedPair]) -> list[StoredPair | UnreadableRow]:
    return [StoredPair(i + 1, p) for i, p in enumerate(pairs)]


def test_a_window_of_identical_answers_passes_and_a_5xx_slice_fails() -> None:
    healthy = _judge(_rows([_pair(n, 1.0, sdk_served=n % 2 == 0) for n in range(12)]))
    assert healthy.status is Status.PASS, healthy.reason
    assert healthy.served == {"sdk": 6, "legacy": 6}

    faulty = _judge(_rows([_pair(n, 1.0, sdk_status=500) for n in range(12)]))
    assert faulty.status is Status.FAIL
    error_gate = next(g for g in faulty.gates if g.name == "canary: error rate")
    assert error_gate.status is Status.FAIL
    assert error_gate.measured["sdk_errors"] == 12 and error_gate.measured["legacy_errors"] == 0


def test_a_cut_stream_counts_as_an_error_and_a_whole_one_does_not() -> None:
    whole = chat_observation(target="sdk", stream=True)
    assert whole.events is not None and not served_error(whole, "chat")
    cut = dataclasses.replace(whole, events=whole.events[:3])  # 200, then the line dropped
    assert served_error(cut, "chat")
    assert served_error(dataclasses.replace(whole, status=503, events=None), "chat")
    assert not served_error(dataclasses.replace(whole, status=400, events=None), "chat")


def test_a_window_with_too_few_pairs_decides_nothing_even_when_failing_so_far() -> None:
    judged = _judge(_rows([_pair(n, 1.0, sdk_status=500) for n in range(MIN - 1)]))
    assert judged.status is Status.INCONCLUSIVE
    assert "not enough samples" in judged.reason


def test_under_replay_a_legacy_pair_with_no_recorded_call_is_left_out_not_an_sdk_error() -> None:
    # The legacy stack's calls did not go through the recording relay: the SDK mirror got
    # the replay upstream's miss. Not the SDK's fault, so no rollback.
    call = {"method": "POST", "status": 200}
    missed = dataclasses.replace(chat_observation(target="sdk"), status=502, body=None)
    unrecorded = [
        make_pair(chat_observation(target="legacy"), missed, request_id=f"u{n}", upstream={})
        for n in range(12)
    ]
    replay = [dataclasses.replace(p, upstream_mode="replay") for p in unrecorded]
    healthy = [
        dataclasses.replace(_pair(n, 1.0), upstream_mode="replay", upstream={"sdk": [call]})
        for n in range(12)
    ]
    judged = _judge(_rows(replay + healthy))
    assert judged.status is Status.PASS, judged.reason
    assert judged.unrecorded == 12 and judged.served == {"sdk": 12}
    assert "12 legacy-answered pairs left out" in judged.reason
    # With the call recorded (or in live mode), the same 502s are the SDK's own: a FAIL.
    recorded = [dataclasses.replace(p, upstream={"legacy": [call]}) for p in replay]
    assert _judge(_rows(recorded + healthy)).status is Status.FAIL
    assert _judge(_rows(unrecorded + healthy)).status is Status.FAIL


# -- controller ---------------------------------------------------------------------------


class _World:
    """A store, a clock, and traffic: ``per_check`` pairs arrive between two checks."""

    def __init__(self, path: Path, *, per_check: int = 4, fault_from: float | None = None):
        self.path = path
        self.canary = CanaryStore(path)
        self.now = 1_000.0
        self.per_check = per_check
        self.fault_from = fault_from
        self.served: list[float] = []  # the percent the front door read at each check
        self.cutovers: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        self.n = 0

    def sleep(self, seconds: float) -> None:
        percent = self.canary.percent()
        self.served.append(percent)
        with CaptureStore(self.path, spill=False) as store:
            for _ in range(self.per_check):
                self.n += 1
                faulty = self.fault_from is not None and percent >= self.fault_from
                store.put(_pair(self.n, self.now, sdk_status=500 if faulty else 200))
        self.now += seconds

    def controller(self, steps: tuple[float, ...], *, cutover_code: int = 0) -> CanaryController:
        def cutover(evidence: dict[str, Any]) -> int:
            self.cutovers.append(evidence)
            return cutover_code

        return CanaryController(
            self.canary,
            CanaryPlan(steps, interval_s=10, window_s=10, check_every_s=1, max_wait_s=20),
            _judge,
            cutover=cutover,
            record=self.records.append,
            say=lambda line: None,
            clock=lambda: self.now,
            sleep=self.sleep,
        )


def test_a_healthy_sdk_side_advances_through_every_step_and_cuts_over(tmp_path: Path) -> None:
    world = _World(tmp_path / "shadow.db")
    config = tmp_path / "config.yaml"
    config.write_text("# the deployment\ngeneral_settings:\n  use_sdk: false  # flipped last\n")
    options = SwitchOptions(config=config, records=tmp_path / "records", restart=False)
    controller = world.controller((5, 25, 50, 100))
    controller.cutover = lambda evidence: (
        world.cutovers.append(evidence) or switch_to_sdk(options, evidence)
    )
    assert controller.run() == 0
    assert read_use_sdk(config.read_text()) is True
    assert "# flipped last" in config.read_text()
    record = json.loads(next((tmp_path / "records").glob("*-cutover.json")).read_text())
    assert [s["percent"] for s in record["canary"]["history"] if s["event"] == "step"] == [
        5,
        25,
        50,
        100,
    ]
    state = world.canary.state()
    assert state is not None and state.status == "done" and state.percent == 100
    # Slices only grow, step by step, each served for the whole interval.
    assert world.served == sorted(world.served)
    assert [p for p in dict.fromkeys(world.served)] == [5, 25, 50]
    assert len(world.cutovers) == 1
    events = [e.event for e in world.canary.history()]
    assert events.count("window_passed") == 3 and events[-1] == "cut_over"


def test_a_5xx_slice_is_rolled_back_within_one_window_with_its_evidence(tmp_path: Path) -> None:
    world = _World(tmp_path / "shadow.db", fault_from=25)
    assert world.controller((5, 25, 50, 100)).run() == 1
    state = world.canary.state()
    assert state is not None and state.status == "rolled_back" and state.percent == 0
    assert world.cutovers == []
    history = world.canary.history()
    step_25 = next(e.at for e in history if e.event == "step" and e.percent == 25)
    rolled = history[-1]
    assert rolled.event == "rolled_back" and rolled.evidence["from_percent"] == 25
    assert rolled.at - step_25 <= 10  # within one window
    assert rolled.evidence["window"]["status"] == "FAIL"
    assert world.records[-1]["action"] == "canary-rollback"


def test_killed_mid_step_it_resumes_at_the_recorded_step(tmp_path: Path) -> None:
    world = _World(tmp_path / "shadow.db")
    steps = (5, 25, 50, 100)

    class Killed(Exception):
        pass

    def kill_at_25(seconds: float) -> None:
        if world.canary.percent() == 25 and world.now - world.canary.state().step_started_at > 3:  # type: ignore[union-attr]
            raise Killed
        _World.sleep(world, seconds)

    first = world.controller(steps)
    first.sleep = kill_at_25
    with pytest.raises(Killed):
        first.run()
    recorded = world.canary.state()
    assert recorded is not None and recorded.percent == 25 and recorded.active

    world.served.clear()
    again = world.controller(steps)
    assert again.run() == 0
    assert world.served[0] == 25  # neither 0 nor 100
    assert "resumed" in [e.event for e in world.canary.history()]
    # The resumed step keeps its recorded start: the time already served counts.
    resumed_25 = [p for p in world.served if p == 25]
    assert len(resumed_25) < 10


def test_a_rollback_from_outside_stops_the_controller(tmp_path: Path) -> None:
    from harness.cutover.canary.command import roll_back_canary

    world = _World(tmp_path / "shadow.db")

    def rollback_at_50(seconds: float) -> None:
        if world.canary.percent() == 50:
            roll_back_canary(world.path)
        _World.sleep(world, seconds)

    controller = world.controller((5, 25, 50, 100))
    controller.sleep = rollback_at_50
    assert controller.run() == 1
    state = world.canary.state()
    assert state is not None and state.status == "rolled_back" and state.percent == 0
    assert world.cutovers == []


def test_the_command_killed_mid_step_resumes_at_the_recorded_step(tmp_path: Path) -> None:
    """`harness cutover --canary` killed with SIGKILL, then started again: the recorded
    step is served throughout, and the new process resumes there (not at 0, not at 100)."""
    store_path = tmp_path / "shadow.db"
    config = tmp_path / "config.yaml"
    config.write_text("general_settings:\n  use_sdk: false\n")
    argv = [
        sys.executable,
        "-m",
        "harness.cli",
        "cutover",
        "--canary",
        "--steps",
        "5,25,100",
        "--interval",
        "1h",
        "--check-every",
        "0.2s",
        "--store",
        str(store_path),
        "--config",
        str(config),
        "--records",
        str(tmp_path / "records"),
        "--no-restart",
    ]
    canary = CanaryStore(store_path)

    def start_and_kill(expect_percent: float) -> str:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ
        )
        try:
            # Killed once the run is recorded (its first history line after this start).
            before = len(canary.history()) if store_path.exists() else 0
            while not store_path.exists() or len(canary.history()) <= before:
                assert process.poll() is None, process.communicate()[0]
                time.sleep(0.05)
            assert canary.percent() == expect_percent
        finally:
            process.send_signal(signal.SIGKILL)
            out = process.communicate()[0]
        return out

    start_and_kill(5)
    # Mid-run, at step 2 (as if it had advanced before the kill).
    state = canary.state()
    assert state is not None
    canary.save(dataclasses.replace(state, step_index=1, percent=25.0), "step")
    out = start_and_kill(25)
    assert "resuming at step 2/3 (25 %)" in out
    state = canary.state()
    assert state is not None and state.active and state.percent == 25
    assert read_use_sdk(config.read_text()) is False


def test_harness_rollback_sends_everyone_back_at_any_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    store_path = tmp_path / "shadow.db"
    config = tmp_path / "config.yaml"
    config.write_text("general_settings:\n  use_sdk: false\n")
    before = config.read_text()
    canary = CanaryStore(store_path)
    argv = ["rollback", "--store", str(store_path), "--config", str(config), "--no-restart"]
    argv += ["--records", str(tmp_path / "records")]
    # Mid-run at 25 %: the front door's percent is the whole rollback; the config, never
    # changed before the last step, stays as it was.
    state = CanaryState((5, 25, 100), 60, 60, 1, 25, "running", 1000.0, 1000.0)
    canary.save(state, "step")
    assert main(argv) == 0
    after = canary.state()
    assert after is not None and after.status == "rolled_back" and after.percent == 0
    assert config.read_text() == before
    assert canary.history()[-1].evidence == {"why": "harness rollback", "from_percent": 25}
    # Cut over (done at 100 %): the front door goes back to legacy too, and the config.
    config.write_text("general_settings:\n  use_sdk: true\n")
    canary.save(dataclasses.replace(state, step_index=2, percent=100, status="done"), "cut_over")
    assert main(argv) == 0
    assert canary.percent() == 0
    assert read_use_sdk(config.read_text()) is False
    capsys.readouterr()
    assert main(["cutover", "--status", "--store", str(store_path)]) == 0
    status = capsys.readouterr().out
    assert status.startswith("canary: rolled_back: step 3/3 (steps 5,25,100), 0 %")
    assert "step 2     25 %  step" in status
    assert "rolled_back: harness rollback" in status
