"""Run the seeded-defect catalogue through shadow mode and read the verdict each gets.

One stack, started once, serves every run; only the relays' defect changes::

    client --> SDK proxy "legacy" (primary, tapped) --> sandbox provider
                  | mirror (replay)
                  v
               answer relay --> SDK proxy "sdk" (candidate) --> request relay --> replay upstream

The same build runs on both sides: the candidate's answers and provider calls are
labelled ``sdk``, the primary's ``legacy``, so every difference the gates see is the
seeded defect's. A run sends the reduced corpus, folds the pairs it produced (and the
provider calls no request claimed) into evidence, and decides every gate. A defect is
caught when its named gate fails; the control (no defect) must fail no gate.

Latency gates are left out of the verdict here: both timings of this stack are not yet
taken at the same kind of boundary (the mirror is timed through a relay hop), so they
would measure the stack, not a defect.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.compare import Comparator
from harness.corpus import CorpusEntry, load_corpus
from harness.loopback import LoopbackServer, free_port
from harness.observation import CapturedPair
from harness.report.collect import EvidenceCollector
from harness.report.gates import evaluate
from harness.report.model import GateResult, Status
from harness.report.tally import RunInfo
from harness.report.upstream_facts import RACE_SECONDS, count_unattached
from harness.sandbox import SandboxSettings
from harness.sandbox import create_app as create_sandbox
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config
from harness.selftest.defects import CATALOGUE, Defect
from harness.selftest.relay import CONTROL_PATH, MutatingRelay
from harness.settings import CaptureSettings, HarnessSettings, ReportSettings, ShadowSettings
from harness.shadow.dispatch import LocalDispatch
from harness.shadow.engine import MirrorEngine
from harness.shadow.mirror import ShadowMirror
from harness.shadow.targets import MirrorTarget, MirrorTargets
from harness.shadow.upstream_tap import UpstreamTap
from memory_proxy.config import load_config
from memory_proxy.memory_router import MemoryRouter

__all__ = [
    "SELFTEST_CORPUS",
    "DefectResult",
    "SelftestStack",
    "run_catalogue",
]

# A reduced corpus: every kind of exchange some defect needs, few of each. Memory ids and
# Claude Code's cache_control marks, streams of both formats, tool calls, errors.
SELFTEST_CORPUS = (
    "msg-basic",
    "msg-basic-stream",
    "msg-system-blocks-cache",
    "msg-tools-call",
    "msg-tools-call-stream",
    "msg-memory-user",
    "msg-memory-user-stream",
    "cc-turn",
    "cc-tool-result",
    "chat-basic",
    "chat-basic-stream",
    "chat-tools-call",
    "chat-memory-user-stream",
    "fail-unknown-model-messages",
    "fail-unknown-model-chat",
    "fail-no-max-tokens",
    "fail-messages-not-list-chat",
    "fail-empty-messages-chat",
)
_FAMILIES = ("claude-code", "anthropic-sdk", "openai-sdk")
_MIN_SAMPLES = 4
# Decided elsewhere, not by a defect of this catalogue (see the module docstring).
_NOT_JUDGED = ("latency",)


@dataclass(frozen=True)
class DefectResult:
    """One run: the defect (None: the control), the gates that failed, and whether the
    verdict is the one the catalogue expects."""

    defect: Defect | None
    failed: tuple[str, ...]
    pairs: int
    details: dict[str, str]

    @property
    def caught(self) -> bool:
        if self.defect is None:
            return not self.failed
        return self.defect.gate in self.failed


class _Sink:
    """Pairs and unattached calls, in memory: the selftest keeps nothing on disk."""

    def __init__(self) -> None:
        self.pairs: list[CapturedPair] = []
        self.unattached: list[tuple[str, dict[str, Any]]] = []

    def put(self, pair: CapturedPair) -> bool:
        self.pairs.append(pair)
        return True

    def add_unattached(self, target: str, calls: Any) -> int:
        kept = [(target, call) for call in calls]
        self.unattached.extend(kept)
        return len(kept)

    def take(self) -> tuple[list[CapturedPair], list[tuple[str, dict[str, Any]]]]:
        pairs, self.pairs = self.pairs, []
        unattached, self.unattached = self.unattached, []
        return pairs, unattached


class SelftestStack:
    """The stack of the module docstring, on loopback; a context manager."""

    def __init__(self, workdir: Path, corpus: Sequence[CorpusEntry]) -> None:
        self.workdir = workdir
        self.corpus = list(corpus)
        self.sink = _Sink()
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> SelftestStack:
        stack = self._stack
        sandbox = stack.enter_context(LoopbackServer(create_sandbox(SandboxSettings())))
        replay_port = free_port()
        self.request_relay = MutatingRelay(f"http://127.0.0.1:{replay_port}", "request")
        request_relay = stack.enter_context(LoopbackServer(self.request_relay))
        fast = "memory_proxy:\n  retry_backoff_seconds: 0.05\n"
        primary_config = load_config(
            write_sandbox_config(sandbox.url, self.workdir / "primary.yaml", extra=fast)
        )
        candidate_config = load_config(
            write_sandbox_config(request_relay.url, self.workdir / "candidate.yaml", extra=fast)
        )
        from memory_proxy.app import create_app

        candidate = stack.enter_context(LoopbackServer(create_app(candidate_config)))
        self.answer_relay = MutatingRelay(candidate.url, "answer")
        answer_relay = stack.enter_context(LoopbackServer(self.answer_relay))
        self.settings = HarnessSettings(
            shadow=ShadowSettings(
                upstream="replay",
                replay_listen=f"127.0.0.1:{replay_port}",
                aa_rate=0.0,
                mirror_process=False,
                mirror_to=answer_relay.url,
            ),
            capture=CaptureSettings(store=self.workdir / "unused.db", store_prompts="full"),
            report=ReportSettings(min_samples=_MIN_SAMPLES, families=_FAMILIES),
        )
        # The same build on both sides; the candidate is the one labelled "sdk".
        targets = MirrorTargets(primary="legacy", shadow=MirrorTarget("sdk", answer_relay.url))
        self.engine = MirrorEngine(
            settings=self.settings,
            sink=self.sink,
            targets=targets,
            router=MemoryRouter(primary_config.user_id_mappings),
        )
        tap = UpstreamTap(self.settings.capture.max_body_bytes)
        mirror = ShadowMirror(
            create_app(primary_config, upstream_observer=tap),
            settings=self.settings,
            dispatch=LocalDispatch(self.engine),
            tap_upstream=True,
        )
        self.url = stack.enter_context(LoopbackServer(mirror)).url
        self.key = primary_config.general.master_key or ""
        self.control = stack.enter_context(httpx.Client(timeout=10, trust_env=False))
        self.relay_urls = {"request": request_relay.url, "answer": answer_relay.url}
        self.sandbox = stack.enter_context(SandboxControl(sandbox.url))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def seed(self, defect: Defect | None) -> None:
        """Switch both relays: the defect on its side's relay, none on the other. The
        provider starts a new cookie epoch: each run's first call is given a cookie, so
        the cookie gate judges every run on its own calls."""
        self.sandbox.reset()
        for place, url in self.relay_urls.items():
            name = defect.name if defect is not None and defect.place == place else None
            reply = self.control.put(url + CONTROL_PATH, json={"defect": name})
            reply.raise_for_status()

    def run(self, defect: Defect | None, rounds: int = 1) -> DefectResult:
        """Send the corpus ``rounds`` times with ``defect`` seeded; the verdict."""
        self.seed(defect)
        entries = [entry for _ in range(rounds) for entry in self.corpus]
        with httpx.Client(base_url=self.url, timeout=60, trust_env=False) as client:
            for sent, entry in enumerate(entries):
                if sent == 1:
                    # The first call was given the provider's cookie: the next ones come
                    # as a person's next turn would, after both sides had it (calls that
                    # race the first answer are not held against a proxy).
                    self._wait_for(1)
                    time.sleep(RACE_SECONDS + 0.05)
                client.request(
                    entry.method,
                    entry.path,
                    headers=entry.send_headers(self.key),
                    content=entry.content(),
                ).read()
        pairs, unattached = self._collected(len(entries))
        return self._verdict(defect, pairs, unattached)

    def _collected(
        self, sent: int, timeout: float = 60.0
    ) -> tuple[list[CapturedPair], list[tuple[str, dict[str, Any]]]]:
        """This run's pairs, once the mirror has stored all of them."""
        self._wait_for(sent, timeout)
        # A duplicate sent after its request was answered reaches the replay upstream
        # a moment later: give it the time one relay hop takes.
        time.sleep(0.2)
        self.engine.keep_unattached()
        return self.sink.take()

    def _wait_for(self, pairs: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.sink.pairs) < pairs and time.monotonic() < deadline:
            time.sleep(0.02)

    def _verdict(
        self,
        defect: Defect | None,
        pairs: list[CapturedPair],
        unattached: list[tuple[str, dict[str, Any]]],
    ) -> DefectResult:
        run = RunInfo(time.time(), "selftest", "", "", None, "")
        collector = EvidenceCollector(Comparator(), run)
        for pair in pairs:
            collector.add(pair)
        evidence = collector.evidence
        calls = evidence.provider_calls
        for target, call in unattached:
            count_unattached(calls, target, call)
        gates = [g for g in evaluate(evidence, self.settings) if _judged(g)]
        failed = tuple(g.name for g in gates if g.status is Status.FAIL)
        details = {g.name: g.summary for g in gates if g.status is Status.FAIL}
        return DefectResult(defect, failed, len(pairs), details)


def _judged(gate: GateResult) -> bool:
    return not gate.name.startswith(_NOT_JUDGED)


@contextlib.contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="harness-selftest-") as tmp:
        yield Path(tmp)


def run_catalogue(
    defects: Sequence[Defect] = CATALOGUE,
    *,
    corpus_ids: Sequence[str] = SELFTEST_CORPUS,
    rounds: int = 1,
    workdir: Path | None = None,
) -> list[DefectResult]:
    """The control first, then each defect, on one stack."""
    by_id = {entry.id: entry for entry in load_corpus()}
    corpus = [by_id[i] for i in corpus_ids]
    with _workdir(workdir) as where, SelftestStack(where, corpus) as stack:
        results = [stack.run(None, rounds)]
        results.extend(stack.run(defect, rounds) for defect in defects)
    return results
