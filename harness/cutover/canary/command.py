"""``harness cutover --canary``, ``--status``, and the canary's part of ``harness rollback``."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from harness.cutover.canary.controller import CanaryController, CanaryPlan
from harness.cutover.canary.judge import WindowJudgement, judge_window
from harness.cutover.canary.plan import CanaryPlanError, parse_duration, parse_steps
from harness.cutover.switch import SwitchOptions, switch_to_sdk, write_record
from harness.report.canary import summarize_canary
from harness.report.evidence import comparator_for, run_info
from harness.settings import load_harness_settings
from harness.store.canary_store import CanaryState, CanaryStore
from harness.store.capture_store import StoredPair, UnreadableRow
from harness.store.dialect import store_exists

__all__ = ["add_canary_arguments", "roll_back_canary", "run_canary", "show_status"]


def add_canary_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("gradual cutover (the front door: harness shadow --canary)")
    group.add_argument(
        "--canary", action="store_true", help="move users to the SDK proxy a slice at a time"
    )
    group.add_argument(
        "--status", action="store_true", help="show the canary's step and history, and exit"
    )
    group.add_argument(
        "--steps", default="5,25,50,100", help="percent of users on the SDK proxy per step"
    )
    group.add_argument("--interval", default="10m", help="time per step (30s, 10m, 1h)")
    group.add_argument("--window", help="the sliding window judged (default: the interval)")
    group.add_argument("--check-every", default="5s", help="how often the window is judged")
    group.add_argument(
        "--max-wait",
        help="past the interval, how long a window may stay undecided before the canary "
        "rolls back (default: 3 intervals)",
    )
    group.add_argument(
        "--min-samples", type=int, help="pairs per gate in a window (default: the report's)"
    )
    group.add_argument(
        "--store",
        default="reports/shadow.db",
        help="the capture store: a SQLite file or a team's postgresql:// URL",
    )
    group.add_argument("--harness-config", default="config/harness.yaml")


def run_canary(args: argparse.Namespace, options: SwitchOptions) -> int:
    try:
        steps = parse_steps(args.steps)
        interval = parse_duration(args.interval)
        window = parse_duration(args.window, "--window") if args.window else interval
        check_every = parse_duration(args.check_every, "--check-every")
        max_wait = parse_duration(args.max_wait, "--max-wait") if args.max_wait else None
    except CanaryPlanError as exc:
        print(f"cutover --canary refused: {exc}")
        return 2
    settings = load_harness_settings(args.harness_config)
    if args.min_samples:
        settings = settings.with_overrides("report", min_samples=args.min_samples)
    comparator, redactor = comparator_for(settings, args.config)
    store = CanaryStore(args.store)
    plan = CanaryPlan(steps, interval, window, check_every, max_wait)

    def judge(rows: list[StoredPair | UnreadableRow]) -> WindowJudgement:
        run = run_info(args.config, args.store)
        return judge_window(rows, settings, comparator, run, redactor)

    controller = CanaryController(
        store,
        plan,
        judge,
        cutover=lambda evidence: switch_to_sdk(options, evidence),
        record=lambda record: write_record(
            options, {"at": datetime.now(UTC).isoformat(), **record}
        ),
    )
    return controller.run()


def show_status(store_path: str | Path) -> int:
    if not store_exists(store_path, "--store"):
        print(f"canary: no store at {store_path}: no canary has run")
        return 0
    store = CanaryStore(store_path)
    state = store.state()
    if state is None:
        print(f"canary: none recorded in {store_path}")
        return 0
    print(_state_line(state))
    # The same lines as the report's canary section.
    for line in summarize_canary(state, store.history()).lines:
        stamp = datetime.fromtimestamp(line.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        text = f"  {stamp}  step {line.step}  {line.percent:>5g} %  {line.event}"
        print(text + (f": {line.detail}" if line.detail else ""))
    return 0


def _state_line(state: CanaryState) -> str:
    steps = ",".join(f"{s:g}" for s in state.steps)
    line = (
        f"canary: {state.status}: step {state.step_index + 1}/{len(state.steps)} "
        f"(steps {steps}), {state.percent:g} % of users on the SDK proxy"
    )
    if state.active:
        line += f", step started {time.time() - state.step_started_at:.0f} s ago"
    return line


def roll_back_canary(store_path: str | Path) -> CanaryState | None:
    """Send every user back to legacy if a canary serves any from the SDK (running, or
    done at 100 %): the state it was in, or None when there was none."""
    if not store_exists(store_path, "--store"):
        return None
    store = CanaryStore(store_path)
    state = store.state()
    if state is None or state.percent <= 0:
        return None
    now = time.time()
    store.save(
        CanaryState(
            state.steps,
            state.interval_s,
            state.window_s,
            state.step_index,
            0.0,
            "rolled_back",
            state.step_started_at,
            now,
        ),
        "rolled_back",
        {"why": "harness rollback", "from_percent": state.percent},
    )
    print(f"rollback: canary at {state.percent:g} % -> 0 %: every user is answered by legacy")
    return state
