"""``CanaryController``: walk the steps, judge each window, roll back at the first failure.

::

    step i (percent p): the front door serves p % of users from the SDK proxy
      every check_every seconds: judge the pairs received since
          max(step start, now - window)
        FAIL                   -> 0 % at once, status rolled_back, record, exit 1
        PASS, interval elapsed -> the next step
        INCONCLUSIVE           -> wait for more samples; past max_wait -> rolled back
      the last step (100 %)    -> the cutover: use_sdk: true, restart, health and canary
                                  checks (:mod:`harness.cutover.switch`)

Every change is written to the store first (:class:`~harness.store.canary_store.CanaryStore`),
then acted on: killed and started again, the controller resumes at the recorded step
with its recorded start. ``harness rollback`` (or anyone setting the state to rolled
back) stops it at its next check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from harness.cutover.canary.judge import WindowJudgement
from harness.report.model import Status
from harness.store.canary_store import CanaryState, CanaryStore
from harness.store.capture_store import StoredPair, UnreadableRow

__all__ = ["CanaryController", "CanaryPlan"]

Judge = Callable[[list[StoredPair | UnreadableRow]], WindowJudgement]


@dataclass(frozen=True)
class CanaryPlan:
    steps: tuple[float, ...]
    interval_s: float
    window_s: float
    check_every_s: float = 1.0
    max_wait_s: float | None = None  # past the interval, INCONCLUSIVE this long: rolled back

    @property
    def wait_limit_s(self) -> float:
        return self.max_wait_s if self.max_wait_s is not None else 3 * self.interval_s


def _say(line: str) -> None:
    # Flushed: a supervisor's log shows each decision as it is made, even if killed.
    print(line, flush=True)


class CanaryController:
    def __init__(
        self,
        store: CanaryStore,
        plan: CanaryPlan,
        judge: Judge,
        *,
        cutover: Callable[[dict[str, Any]], int],
        record: Callable[[dict[str, Any]], None],
        say: Callable[[str], None] = _say,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``cutover(evidence)``: what `harness cutover` does, 0 on success; ``record``:
        writes a record file (the rollback's evidence)."""
        self.store = store
        self.plan = plan
        self.judge = judge
        self.cutover = cutover
        self.record = record
        self.say = say
        self.clock = clock
        self.sleep = sleep

    def run(self) -> int:
        state = self._resume_or_start()
        while True:
            current = self.store.state()
            if current is None or not current.active:
                self.say(
                    f"canary: stopped: the run is {current.status if current else 'gone'} "
                    "(changed outside this command)"
                )
                return 1
            state = current
            if state.percent >= 100:
                return self._cut_over(state)
            now = self.clock()
            since = max(state.step_started_at, now - state.window_s)
            judgement = self.judge(list(self.store.rows_since(since)))
            if judgement.status is Status.FAIL:
                return self._roll_back(state, judgement, now, "window failed")
            elapsed = now - state.step_started_at
            if elapsed >= state.interval_s:
                if judgement.status is Status.PASS:
                    state = self._advance(state, judgement, now)
                    continue
                if elapsed >= state.interval_s + self.plan.wait_limit_s:
                    return self._roll_back(
                        state, judgement, now, "not enough samples to decide in time"
                    )
            self.sleep(self.plan.check_every_s)

    # -- state changes, each written before it is acted on ----------------------------

    def _resume_or_start(self) -> CanaryState:
        state = self.store.state()
        if state is not None and state.active:
            if state.steps != self.plan.steps:
                self.say(
                    f"canary: resuming the recorded run (steps {_steps(state.steps)}; "
                    f"--steps {_steps(self.plan.steps)} ignored)"
                )
            self.say(
                f"canary: resuming at step {state.step_index + 1}/{len(state.steps)} "
                f"({state.percent:g} %), started {self.clock() - state.step_started_at:.0f} s ago"
            )
            self.store.save(replace(state, updated_at=self.clock()), "resumed")
            return state
        now = self.clock()
        state = CanaryState(
            steps=self.plan.steps,
            interval_s=self.plan.interval_s,
            window_s=self.plan.window_s,
            step_index=0,
            percent=self.plan.steps[0],
            status="running",
            step_started_at=now,
            updated_at=now,
        )
        self.store.save(state, "step", {"interval_s": state.interval_s})
        self.say(
            f"canary: step 1/{len(state.steps)}: {state.percent:g} % of users on the SDK proxy"
        )
        return state

    def _advance(self, state: CanaryState, judgement: WindowJudgement, now: float) -> CanaryState:
        self.store.save(replace(state, updated_at=now), "window_passed", judgement.to_dict())
        self.say(
            f"canary: step {state.step_index + 1} ({state.percent:g} %) passed: "
            f"{judgement.pairs} pairs ({_served(judgement)}); {judgement.reason}"
        )
        index = state.step_index + 1
        state = replace(
            state,
            step_index=index,
            percent=state.steps[index],
            step_started_at=now,
            updated_at=now,
        )
        self.store.save(state, "step")
        self.say(
            f"canary: step {index + 1}/{len(state.steps)}: {state.percent:g} % of users on the "
            "SDK proxy"
        )
        return state

    def _roll_back(
        self, state: CanaryState, judgement: WindowJudgement, now: float, why: str
    ) -> int:
        evidence = {"why": why, "from_percent": state.percent, "window": judgement.to_dict()}
        back = replace(state, percent=0.0, status="rolled_back", updated_at=now)
        # Written first: the front door sends every user to legacy at its next read.
        self.store.save(back, "rolled_back", evidence)
        self.say(
            f"canary: ROLLED BACK to 0 % at step {state.step_index + 1} ({state.percent:g} %): "
            f"{why}: {judgement.reason}"
        )
        self.record({"action": "canary-rollback", "result": "rolled_back", **evidence})
        return 1

    def _cut_over(self, state: CanaryState) -> int:
        history = [
            {"event": e.event, "percent": e.percent, "at": e.at}
            for e in self.store.history()
            if e.event in ("step", "window_passed")
        ]
        self.say("canary: last step: the cutover (use_sdk: true, restart, health and canary)")
        code = self.cutover({"canary": {"steps": list(state.steps), "history": history}})
        now = self.clock()
        if code == 0:
            self.store.save(replace(state, status="done", updated_at=now), "cut_over")
            self.say("canary: done: every user is on the SDK proxy")
            return 0
        # The cutover rolled the config back by itself: legacy serves everyone again.
        failed = replace(state, percent=0.0, status="cutover_failed", updated_at=now)
        self.store.save(failed, "cutover_failed", {"exit": code})
        self.say("canary: the cutover's checks failed; back to 0 % (legacy serves everyone)")
        return 1


def _steps(steps: tuple[float, ...]) -> str:
    return ",".join(f"{s:g}" for s in steps)


def _served(judgement: WindowJudgement) -> str:
    return ", ".join(f"{n} answered by {who}" for who, n in sorted(judgement.served.items()))
