"""Run the seeded-defect catalogue through shadow mode and read the verdict each gets.

One stack, started once, serves every run; only the relays' defect changes::

    client --> SDK proxy "legacy" (primary, tapped) --> sandbox provider
                  | mirror (replay), the twin's copy sent at the same moment
                  v
               answer relay --> SDK proxy "sdk" (candidate) --> request relay --> replay upstream
               answer relay --> SDK proxy "legacy" (twin)   --> request relay --> replay /_twin

The same build runs on both sides: the candidate's answers and provider calls are
labelled ``sdk``, the primary's ``legacy``, so every difference the gates see is the
seeded defect's. A run sends the reduced corpus, folds the pairs it produced (and the
provider calls no request claimed) into evidence, and decides every gate. A defect is
caught when its named gate fails; the control (no defect) must fail no gate.

Latency is timed as ``harness shadow`` times it: the candidate beside a latency twin of
the primary's build, both sent each request at the same moment by the mirror caller
(:mod:`harness.shadow.engine`). The twin sits behind the same two relays as the candidate,
never seeded, so both timed sides cross the same hops: without them the candidate alone
paid two relay hops, and the control's latency gates measured the stack, not a defect.
A run of the reduced corpus gives each latency slice only a few samples, too few for an
interval; the latency probes (:data:`LATENCY_PROBES`, ``rounds`` times) are sent in the
runs that judge latency: the control and the latency defects (a latency defect whose
check is still INCONCLUSIVE gets up to two more rounds of them). Before the control, the
corpus and the probes are sent once unjudged: a fresh proxy's first answers of each kind
are its slowest (the control's first pair read the twin 17-40 ms slower than the mirror).

Each request is sent once the previous one's pair is stored. Everything here shares one
process, so one interpreter lock: a twin and a mirror timed while the primary already
serves the client's next request share the lock with it too, and each answer's time is
then mostly the others' work. Measured (same build both sides, 12 probes of each kind):
with the next request sent at once, the paired median differences' intervals were
[-1.7, +2.1] and [-1.6, +2.9] ms on 23-58 ms medians, and +3 ms on every call read
[-0.4, +4.9] ms (missed); waiting, [-1.4, +1.3] and [+0.0, +0.7] ms on 13 and 50 ms, and
+3 ms read [+2.5, +4.6] ms (caught). Timing the twin and the mirror one after the other
instead of together was worse, waiting or not: the one sent first was slower by 2-8 ms
(same build), and +3 ms was missed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.compare import Comparator
from harness.corpus import CorpusEntry, load_corpus
from harness.loopback import LoopbackServer, free_port
from harness.observation import CapturedPair
from harness.report.collect import EvidenceCollector
from harness.report.gates import evaluate
from harness.report.latency_gates import latency_summaries
from harness.report.model import GateResult, LatencySummary, Status
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
from harness.shadow.replay_upstream import TWIN_PREFIX
from harness.shadow.targets import MirrorTarget, MirrorTargets
from harness.shadow.upstream_tap import UpstreamTap
from memory_proxy.config import load_config
from memory_proxy.memory_router import MemoryRouter

__all__ = [
    "LATENCY_PROBES",
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
# The latency probes: requests sent only to be timed, each with its own last user turn (so
# each is a request of its own to the provider-call matching); how many of each per round.
# +3 ms on a ~10 ms median is read through the other side's work sharing this process
# (module docstring): 12 pairs put the interval's lower bound at 1.0-2.5 ms against an
# allowance of 1.0, 20 at 1.9-2.2 (both before the twin's turn to go first alternated per
# slice; since, 20 read [+2.8, +3.7] and [+2.8, +4.0] against 0.7-0.8). The stream asks the
# sandbox for a first token after 40 ms, as a provider's comes late: +20 % of a TTFT of a
# few milliseconds would be scheduling jitter, not a defect; at 12 its intervals sit far
# above the allowance.
LATENCY_PROBES = {"msg-basic": 20, "msg-basic-stream": 12}
_PROBE_TTFT = "[sandbox:ttft_ms=40]"
# Further rounds of probes for a latency defect its check has not decided yet. On a CPU
# kept busy by other work (two busy loops on the 2 cores, load 7-8) the stack's medians
# rose to 13-19 ms and its paired differences spread over -7..+40 ms: 20 pairs read +3 ms
# as [+0.7, +4.7] ms against an allowance of 1.5 (INCONCLUSIVE); more pairs narrow it.
# With four busy loops (load 9) the median reached 56 ms: +3 ms is then 5 %, within the
# 10 % the p50 gate allows, and 40 pairs rightly PASS it (the catalogue reports MISSED).
_MORE_PROBES = 2
_FAMILIES = ("claude-code", "anthropic-sdk", "openai-sdk")
_MIN_SAMPLES = 4


@dataclass(frozen=True)
class DefectResult:
    """One run: the defect (None: the control), the gates that failed, and whether the
    verdict is the one the catalogue expects."""

    defect: Defect | None
    failed: tuple[str, ...]
    pairs: int
    details: dict[str, str]
    # Each failed gate's failing checks (a latency gate: "p50", "TTFT p50"...).
    failed_checks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The latency slices as timed in this run (the control's: an A/A measurement).
    latency: tuple[LatencySummary, ...] = ()

    @property
    def caught(self) -> bool:
        if self.defect is None:
            return not self.failed
        return any(
            self.defect.named_by(gate, self.failed_checks.get(gate, ())) for gate in self.failed
        )


class _Sink:
    """Pairs and unattached calls, in memory: the selftest keeps nothing on disk."""

    def __init__(self) -> None:
        self.pairs: list[CapturedPair] = []
        self.unattached: list[tuple[str, dict[str, Any]]] = []
        # The mirror stores pairs on its server's thread; the client's thread waits here.
        self._stored = threading.Condition()

    def put(self, pair: CapturedPair) -> bool:
        with self._stored:
            self.pairs.append(pair)
            self._stored.notify_all()
        return True

    def wait_for(self, count: int, timeout: float) -> bool:
        """Whether ``count`` pairs are stored within ``timeout`` seconds."""
        with self._stored:
            return self._stored.wait_for(lambda: len(self.pairs) >= count, timeout)

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

    def __init__(
        self,
        workdir: Path,
        corpus: Sequence[CorpusEntry],
        probes: Sequence[CorpusEntry] = (),
    ) -> None:
        self.workdir = workdir
        self.corpus = list(corpus)
        self.probes = list(probes)
        self.sink = _Sink()
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> SelftestStack:
        stack = self._stack
        sandbox = stack.enter_context(LoopbackServer(create_sandbox(SandboxSettings())))
        replay_port = free_port()
        replay = f"http://127.0.0.1:{replay_port}"
        fast = "memory_proxy:\n  retry_backoff_seconds: 0.05\n"
        primary_config = load_config(
            write_sandbox_config(sandbox.url, self.workdir / "primary.yaml", extra=fast)
        )
        from memory_proxy.app import create_app

        def relayed(name: str, provider: str) -> tuple[str, str]:
            """The SDK proxy between two relays, its provider calls sent to ``provider``
            (the twin's the same, never seeded): the URLs of its two relays."""
            request_relay = stack.enter_context(LoopbackServer(MutatingRelay(provider, "request")))
            config_path = self.workdir / f"{name}.yaml"
            config = load_config(write_sandbox_config(request_relay.url, config_path, extra=fast))
            proxy = stack.enter_context(LoopbackServer(create_app(config)))
            answer_relay = stack.enter_context(LoopbackServer(MutatingRelay(proxy.url, "answer")))
            return request_relay.url, answer_relay.url

        request_url, answer_url = relayed("candidate", replay)
        _, twin_url = relayed("twin", replay + TWIN_PREFIX)
        self.settings = HarnessSettings(
            shadow=ShadowSettings(
                upstream="replay",
                replay_listen=f"127.0.0.1:{replay_port}",
                aa_rate=0.0,
                mirror_process=False,
                mirror_to=answer_url,
                twin_to=twin_url,
            ),
            capture=CaptureSettings(store=self.workdir / "unused.db", store_prompts="full"),
            report=ReportSettings(min_samples=_MIN_SAMPLES, families=_FAMILIES),
        )
        # The same build on both sides; the candidate is the one labelled "sdk", and the
        # twin, timed beside it, stands for the primary.
        targets = MirrorTargets(
            primary="legacy",
            shadow=MirrorTarget("sdk", answer_url),
            twin=MirrorTarget("legacy", twin_url),
        )
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
        self.relay_urls = {"request": request_url, "answer": answer_url}
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
        """Send the corpus ``rounds`` times with ``defect`` seeded (a latency defect: the
        latency probes only; the control: both); the verdict."""
        self.seed(defect)
        latency = defect is None or defect.gate == "latency"
        functional = defect is None or not latency
        entries = [entry for _ in range(rounds) for entry in self.corpus] if functional else []
        probes = [entry for _ in range(rounds) for entry in self.probes] if latency else []
        pairs, unattached = self._send(entries + probes)
        result, undecided = self._verdict(defect, pairs, unattached)
        # A latency defect's check still INCONCLUSIVE (its interval straddles the
        # allowance) needs more samples, as the report says: more probes, a bounded number
        # of times. Never for the control: a clean control is one no gate FAILs.
        for _ in range(_MORE_PROBES):
            if defect is None or result.caught or not undecided:
                break
            more, more_unattached = self._send(probes)
            pairs, unattached = pairs + more, unattached + more_unattached
            result, undecided = self._verdict(defect, pairs, unattached)
        return result

    def warm_up(self) -> None:
        """Send the corpus once, no defect, and forget what came of it (the module
        docstring says why)."""
        self.seed(None)
        self._send(self.corpus)

    def _send(
        self, entries: Sequence[CorpusEntry]
    ) -> tuple[list[CapturedPair], list[tuple[str, dict[str, Any]]]]:
        """Send ``entries`` one by one; the pairs and unattached calls they produced."""
        with httpx.Client(base_url=self.url, timeout=60, trust_env=False) as client:
            for sent, entry in enumerate(entries):
                if sent == 1:
                    # The first call was given the provider's cookie: the next ones come
                    # as a person's next turn would, after both sides had it (calls that
                    # race the first answer are not held against a proxy).
                    time.sleep(RACE_SECONDS + 0.05)
                client.request(
                    entry.method,
                    entry.path,
                    headers=entry.send_headers(self.key),
                    content=entry.content(),
                ).read()
                # The next request waits for this one's mirror: see the module docstring.
                self._wait_for(sent + 1)
        return self._collected(len(entries))

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
        self.sink.wait_for(pairs, timeout)

    def _verdict(
        self,
        defect: Defect | None,
        pairs: list[CapturedPair],
        unattached: list[tuple[str, dict[str, Any]]],
    ) -> tuple[DefectResult, bool]:
        """The run's result, and whether the defect's check is still undecided (a latency
        check INCONCLUSIVE on a slice it could fail on)."""
        run = RunInfo(time.time(), "selftest", "", "", None, "")
        collector = EvidenceCollector(Comparator(), run)
        for pair in pairs:
            collector.add(pair)
        evidence = collector.evidence
        calls = evidence.provider_calls
        for target, call in unattached:
            count_unattached(calls, target, call)
        summaries = latency_summaries(evidence)
        decided = evaluate(evidence, self.settings, latency=summaries)
        gates = [g for g in decided if g.status is Status.FAIL]
        result = DefectResult(
            defect,
            tuple(g.name for g in gates),
            len(pairs),
            {g.name: g.summary for g in gates},
            {g.name: _checks(g, Status.FAIL) for g in gates},
            summaries,
        )
        undecided = defect is not None and any(
            defect.named_by(g.name, _checks(g, Status.INCONCLUSIVE))
            for g in decided
            if defect.check is not None
        )
        return result, undecided


def _checks(gate: GateResult, status: Status) -> tuple[str, ...]:
    return tuple(c.name for c in gate.checks if c.status is status)


def latency_probes(entries: Mapping[str, CorpusEntry]) -> list[CorpusEntry]:
    """:data:`LATENCY_PROBES`, taken in turn, each with its own last user turn."""
    probes = []
    for i in range(max(LATENCY_PROBES.values())):
        for probe_id, count in LATENCY_PROBES.items():
            if i >= count:
                continue
            entry = entries[probe_id]
            mark = f" (latency probe {i})" + (f" {_PROBE_TTFT}" if entry.stream else "")
            probes.append(
                dataclasses.replace(entry, id=f"{probe_id}-probe-{i}", body=_marked(entry, mark))
            )
    return probes


def _marked(entry: CorpusEntry, mark: str) -> object:
    """The entry's body with ``mark`` appended to its last message's text."""
    body = dict(entry.body)
    messages = list(body["messages"])
    last = dict(messages[-1])
    assert isinstance(last["content"], str), entry.id
    last["content"] += mark
    messages[-1] = last
    body["messages"] = messages
    return body


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
    probes = latency_probes(by_id)
    with _workdir(workdir) as where, SelftestStack(where, corpus, probes) as stack:
        stack.warm_up()
        results = [stack.run(None, rounds)]
        results.extend(stack.run(defect, rounds) for defect in defects)
    return results
