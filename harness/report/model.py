"""The readiness report's data model: gate results, the verdict, and what renderers show.

As in coveragepy's ``coverage/results.py``, the numbers live here once; the gate function
(:mod:`harness.report.gates`) fills them in. JSON writes them from this model; Markdown and
HTML lay out the display tables :mod:`harness.report.sections` builds from it once, so the
formats cannot disagree.

::

    Evidence --gates.evaluate--> [GateResult] --decide--> Decision
    Evidence + [GateResult] --readiness.build_report--> ReadinessReport
    ReadinessReport --sections--> [Section] --render_md / render_html--> text
    ReadinessReport --render_json--> text
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.runs.coverage import Coverage
from harness.store.runs import RunRecord

__all__ = [
    "CanaryLine",
    "CanarySummary",
    "AcceptedRule",
    "Chart",
    "Check",
    "Decision",
    "DiffRow",
    "DiffTable",
    "GateResult",
    "InstanceRow",
    "LatencySummary",
    "LoadSummary",
    "MemorySummary",
    "OutcomeShift",
    "PairDifference",
    "PairSide",
    "PairView",
    "ReadinessReport",
    "ReportChanges",
    "RunContext",
    "Series",
    "Status",
    "TimelineEntry",
    "Uncomparable",
    "counts_text",
    "decide",
]


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


class Decision(StrEnum):
    GO = "GO"
    NO_GO = "NO-GO"
    INCONCLUSIVE = "INCONCLUSIVE"

    @property
    def exit_code(self) -> int:
        return {Decision.GO: 0, Decision.NO_GO: 1, Decision.INCONCLUSIVE: 2}[self]


@dataclass(frozen=True)
class Check:
    """One measured condition inside a gate (e.g. a gate's content parity)."""

    name: str
    status: Status
    samples: int
    measured: str  # human text of what was measured, e.g. "4.0 % (noise 1.0 %)"
    threshold: str
    detail: str = ""


@dataclass(frozen=True)
class GateResult:
    """One gate: PASS, FAIL or INCONCLUSIVE, with the evidence it was decided on."""

    name: str
    status: Status
    samples: int
    measured: dict[str, Any]  # name -> number or short text (the JSON report keeps it)
    threshold: str
    detail: str = ""
    needs: int = 0  # more samples needed before this gate can decide (INCONCLUSIVE only)
    checks: tuple[Check, ...] = ()

    @property
    def needs_text(self) -> str:
        return f"needs {self.needs} more samples" if self.needs > 0 else ""

    @property
    def summary(self) -> str:
        """One line for the first screen: the detail, plus what is missing."""
        parts = [p for p in (self.detail, self.needs_text) if p]
        return "; ".join(parts)


def decide(gates: list[GateResult] | tuple[GateResult, ...]) -> Decision:
    """GO when every gate passes, NO-GO when any fails, INCONCLUSIVE otherwise."""
    if any(g.status is Status.FAIL for g in gates):
        return Decision.NO_GO
    if gates and all(g.status is Status.PASS for g in gates):
        return Decision.GO
    return Decision.INCONCLUSIVE


@dataclass(frozen=True)
class DiffRow:
    """A Diffy table row: a category or a field, its rate against the A/A noise rate."""

    endpoint: str
    key: str  # the category, or the field path (list indices generalized)
    category: str
    count: int
    rate: float
    noise_rate: float
    verdict: str  # regression, noise, ok, info (informational category over the noise)
    examples: tuple[dict[str, Any], ...] = ()  # pair_id, path, sdk, legacy, detail

    @property
    def excess(self) -> float:
        return self.rate - self.noise_rate


@dataclass(frozen=True)
class DiffTable:
    """One endpoint's Diffy view: per category, then per field."""

    endpoint: str
    compared: int
    noise_samples: int
    categories: tuple[DiffRow, ...]
    fields: tuple[DiffRow, ...]
    fields_left_out: int = 0  # field rows beyond the table's limit

    @property
    def shown_categories(self) -> tuple[DiffRow, ...]:
        """The categories worth a row in every format: those that differ, or whose noise does."""
        return tuple(r for r in self.categories if r.verdict != "ok" or r.noise_rate)


def counts_text(counts: Iterable[tuple[str, int]]) -> str:
    """``[("504", 89), ("429", 33)]`` -> ``"504 x89, 429 x33"``."""
    return ", ".join(f"{label} x{count}" for label, count in counts)


@dataclass(frozen=True)
class OutcomeShift:
    """One endpoint's pairs where one proxy succeeded and the other failed outright.

    ``sdk-better`` (legacy failed): set apart, never a regression. ``sdk-worse`` (the SDK
    failed): compared as always, so it counts in the gates like any status difference.
    """

    endpoint: str
    direction: str  # "sdk-better" or "sdk-worse" (harness.report.outcomes.Direction)
    pairs: int
    of_pairs: int  # the endpoint's mirrored pairs: compared, or set apart as SDK-better
    failures: tuple[tuple[str, int], ...]  # how the failing side failed ("504"), most first
    examples: tuple[dict[str, Any], ...] = ()  # pair_id, path, sdk, legacy, detail

    @property
    def rate(self) -> float:
        return self.pairs / self.of_pairs if self.of_pairs else 0.0

    @property
    def failures_text(self) -> str:
        return counts_text(self.failures)


@dataclass(frozen=True)
class LatencySummary:
    """SDK vs legacy latency of one endpoint x stream slice (milliseconds)."""

    endpoint: str
    stream: bool
    samples: dict[str, int]  # target -> observations
    total: dict[str, dict[str, float | None]]  # target -> {p50, p95, p99}
    ttft: dict[str, dict[str, float | None]]  # target -> {p50, p95} (streams only)
    ttft_samples: dict[str, int] = field(default_factory=dict)
    # difference (sdk - legacy) -> [low, high] 95 % bootstrap interval
    intervals: dict[str, tuple[float, float] | None] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.endpoint} {'stream' if self.stream else 'non-stream'}"


@dataclass(frozen=True)
class LoadSummary:
    target: str
    run: str
    users: int | None
    requests: int | None
    failures: int | None
    rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    slo_passed: bool | None


@dataclass(frozen=True)
class MemorySummary:
    target: str
    run: str
    samples: int  # after warm-up
    duration_s: float
    first_mb: float | None
    last_mb: float | None
    requests: int | None = None  # served after warm-up (None: unknown)
    # RSS growth per 10,000 requests served after warm-up, and its 95 % interval
    growth_mb_per_10k: float | None = None
    growth_low: float | None = None
    growth_high: float | None = None
    requests_estimated: bool = False  # spread at a steady rate from the run's total


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Chart:
    """What :mod:`harness.report.svg` draws: lines (CDF, time series) or bars (histogram)."""

    slug: str  # file-name-safe id
    kind: str  # "cdf", "histogram", "timeseries"
    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]


@dataclass(frozen=True)
class RunContext:
    """Where the evidence came from and what produced it."""

    generated_at: float  # unix seconds
    project_version: str
    litellm_version: str
    config_path: str
    config_sha256: str | None
    store_path: str
    first_received: float | None
    last_received: float | None
    pairs: int
    mirrored: int
    compared: int
    aa_samples: int
    primaries: dict[str, int]  # target -> pairs it answered
    sample_rate: float
    aa_rate: float
    load_runs: int
    process_samples: int
    upstream_modes: dict[str, int] = field(default_factory=dict)  # replay / live -> pairs
    replay_unrecorded: int = 0  # replay pairs whose primary made no provider call
    not_mirrored: dict[str, int] = field(default_factory=dict)  # mirror outcome -> pairs
    # Live pairs only: the mirror's spend (pairs, requests, tokens by usage) and the memory
    # isolation in force (suffix; pairs whose mirror calls were recorded, and isolated).
    live: dict[str, int | str] = field(default_factory=dict)
    scope: str = "all pairs"  # which run(s) the evidence was read from
    shadow_run: RunRecord | None = None  # the one run read, when the scope is one run
    coverage: Coverage | None = None  # that run's mirror coverage, when it recorded it
    # "alike" / "as served" -> timed pairs (harness.report.collect._latency)
    latency_timing: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Uncomparable:
    """Store rows the report could not read or compare: in no gate's samples, listed here
    (row id and reason, never content) so that they are not lost silently."""

    rows: int = 0
    of_rows: int = 0  # every row read: the folded pairs and these
    reasons: tuple[tuple[str, int], ...] = ()  # reason -> rows, most first
    listed: tuple[tuple[int, str], ...] = ()  # (row id, reason), the first rows by id

    @property
    def rate(self) -> float:
        return self.rows / self.of_rows if self.of_rows else 0.0

    @property
    def left_out(self) -> int:
        return self.rows - len(self.listed)


@dataclass(frozen=True)
class CanaryLine:
    """One line of a canary run's history: a step, a judged window, a rollback."""

    at: float  # unix seconds
    step: int  # 1-based
    percent: float
    event: str
    detail: str


@dataclass(frozen=True)
class CanarySummary:
    """The gradual cutover recorded in the store (``harness cutover --canary``)."""

    status: str
    steps: tuple[float, ...]
    percent: float
    lines: tuple[CanaryLine, ...]


@dataclass(frozen=True)
class AcceptedRule:
    """One accept rule as the report lists it: applied (with hits), stale (it matched
    nothing) or expired (not applied)."""

    name: str
    state: str  # "applied", "stale", "expired" or "refused" (it matched only SDK failures)
    matches: str  # what it matches, one line
    reason: str
    owner: str
    expires: str | None  # YYYY-MM-DD
    pairs: int = 0
    differences: int = 0
    refused: int = 0  # pairs matched but not accepted: the SDK failed where legacy succeeded
    examples: tuple[str, ...] = ()  # pair ids
    refused_examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class PairSide:
    """One proxy's answer to a pair's request, as text to read (redacted, size-capped)."""

    target: str
    status: str  # "200", "502", "no answer: ReadTimeout"
    headers: str
    answer: str  # the JSON body, or a stream's assembled message
    events: str  # a stream's event sequence, "" for a plain answer
    upstream: tuple[str, ...]  # one line per provider call this side made


@dataclass(frozen=True)
class PairDifference:
    category: str
    path: str
    sdk: str
    legacy: str
    note: str  # the comparison's detail, or "accepted: <rule>"


@dataclass(frozen=True)
class PairView:
    """One captured pair, drilled down: the client's request, both answers, what differs
    and each side's provider calls. ``harness show`` and the HTML report show it alike."""

    pair_id: str
    endpoint: str
    stream: bool
    model: str | None
    family: str
    received_at: float
    request: str  # method, path, headers and body, redacted
    sdk: PairSide | None
    legacy: PairSide | None
    differences: tuple[PairDifference, ...]
    note: str = ""  # why nothing was compared, or that the pair was set apart

    @property
    def title(self) -> str:
        kind = "stream" if self.stream else "non-stream"
        return f"Pair {self.pair_id}: {self.endpoint} {kind}, {self.model or '-'}, {self.family}"


@dataclass(frozen=True)
class ReportChanges:
    """What changed since an earlier report (``harness report --compare-to``)."""

    against: str  # the earlier report's path
    previous_generated: str | None
    previous_decision: str
    flipped: tuple[tuple[str, str, str], ...] = ()  # gate, status before, status now
    new_gates: tuple[str, ...] = ()  # gates the earlier report did not have
    appeared: tuple[str, ...] = ()  # regressing differences new in this report
    disappeared: tuple[str, ...] = ()  # ... and those gone since
    rules: tuple[tuple[str, str, str], ...] = ()  # accept rule, before, now

    @property
    def any(self) -> bool:
        return bool(
            self.flipped or self.new_gates or self.appeared or self.disappeared or self.rules
        )


@dataclass(frozen=True)
class TimelineEntry:
    """One report's decision, for the timeline of earlier reports."""

    generated: str  # ISO UTC
    decision: str
    failed: int
    inconclusive: int
    current: bool = False


@dataclass(frozen=True)
class InstanceRow:
    """One proxy instance of a team's store, next to the rest of the team: its
    difference rate beside the others' makes one misconfigured laptop stand out."""

    instance: str
    pairs: int
    compared: int
    differing: int
    others_compared: int  # every other instance's compared pairs
    others_differing: int
    families: tuple[tuple[str, int], ...]  # client family -> pairs, most first

    @property
    def rate(self) -> float | None:
        return self.differing / self.compared if self.compared else None

    @property
    def others_rate(self) -> float | None:
        return self.others_differing / self.others_compared if self.others_compared else None


@dataclass(frozen=True)
class ReadinessReport:
    decision: Decision
    gates: tuple[GateResult, ...]
    worst: tuple[DiffRow, ...]  # the worst differences, for the first screen
    tables: tuple[DiffTable, ...]
    latency: tuple[LatencySummary, ...]
    load: tuple[LoadSummary, ...]
    memory: tuple[MemorySummary, ...]
    charts: tuple[Chart, ...]
    context: RunContext
    sdk_better: tuple[OutcomeShift, ...] = ()  # legacy failed where the SDK succeeded
    sdk_worse: tuple[OutcomeShift, ...] = ()  # the SDK failed where legacy succeeded
    uncomparable: Uncomparable = field(default_factory=Uncomparable)
    canary: CanarySummary | None = None  # only when a canary ran on this store
    accepted: tuple[AcceptedRule, ...] = ()  # every accept rule, in config order
    accepted_pairs: int = 0  # pairs with a difference a rule accepted
    # Drill-down: the example pairs of the worst differences and failed gates ...
    drilldown: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (what, pair ids)
    pairs: tuple[PairView, ...] = ()  # ... and each such pair, read back from the store
    changes: ReportChanges | None = None  # since the report it was compared to
    timeline: tuple[TimelineEntry, ...] = ()  # earlier reports' decisions, then this one
    instances: tuple[InstanceRow, ...] = ()  # the proxies that wrote the pairs, by name

    @property
    def failed(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if g.status is Status.FAIL)

    @property
    def inconclusive(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if g.status is Status.INCONCLUSIVE)

    @property
    def passed(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if g.status is Status.PASS)
