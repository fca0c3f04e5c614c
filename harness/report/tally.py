"""The evidence a report is decided on: counts, samples and examples, no pairs.

A report over 100,000 pairs must not hold 100,000 pairs: :mod:`harness.report.collect`
folds each pair into these mergeable tallies (counts per category and field, up to
``MAX_EXAMPLES`` examples per field, latency samples as floats) and drops it. Tallies
merge, so pairs can be folded in separate processes and the parts added up in order.
Rows that could not be read or compared are counted apart (:class:`UncomparableRows`),
in no other tally.

These tallies are the harness's one noise path: the A/A verdicts (legacy against its
repeat) are counted in ``Evidence.noise`` exactly as SDK-vs-legacy verdicts are in
``Evidence.diffs``, and the gates classify one's rates against the other's
(:func:`harness.compare.classify`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from harness.store.capture_store import LoadRun, RunRecord

__all__ = [
    "MAX_EXAMPLES",
    "AcceptTally",
    "MAX_UNCOMPARABLE_LISTED",
    "ContractPoint",
    "InstanceTally",
    "DiffTally",
    "Evidence",
    "Example",
    "ProviderCallTally",
    "LatencySlice",
    "OutcomeTally",
    "RoutingTally",
    "RssSeries",
    "RuleHits",
    "RunInfo",
    "StreamEndings",
    "UncomparableRows",
    "UpstreamCall",
]

MAX_EXAMPLES = 5
MAX_UNCOMPARABLE_LISTED = 100


@dataclass(frozen=True)
class Example:
    """One difference, oriented SDK vs legacy whichever side was primary; values redacted."""

    pair_id: str
    path: str
    sdk: str
    legacy: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair_id": self.pair_id,
            "path": self.path,
            "sdk": self.sdk,
            "legacy": self.legacy,
            "detail": self.detail,
        }


@dataclass
class DiffTally:
    """How many compared pairs differ, per category and per field (a pair counts once)."""

    compared: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    fields: Counter[str] = field(default_factory=Counter)
    field_category: dict[str, str] = field(default_factory=dict)
    examples: dict[str, list[Example]] = field(default_factory=dict)

    def rate(self, category: str) -> float:
        return self.categories[category] / self.compared if self.compared else 0.0

    def category_rates(self) -> dict[str, float]:
        if not self.compared:
            return {}
        return {c: n / self.compared for c, n in self.categories.items()}

    def field_rates(self) -> dict[str, float]:
        if not self.compared:
            return {}
        return {f: n / self.compared for f, n in self.fields.items()}

    def merge(self, other: DiffTally) -> None:
        self.compared += other.compared
        self.categories.update(other.categories)
        self.fields.update(other.fields)
        for key, category in other.field_category.items():
            self.field_category.setdefault(key, category)
        for key, examples in other.examples.items():
            mine = self.examples.setdefault(key, [])
            mine.extend(examples[: MAX_EXAMPLES - len(mine)])


@dataclass
class OutcomeTally:
    """Pairs where one proxy succeeded and the other failed outright, one direction.

    Counted per endpoint and client family, with how the failing side failed ("504",
    "no answer: ConnectTimeout") per endpoint and a few examples (:mod:`.outcomes`).
    """

    endpoints: Counter[str] = field(default_factory=Counter)
    families: Counter[str] = field(default_factory=Counter)
    failures: dict[str, Counter[str]] = field(default_factory=dict)  # endpoint -> label ->
    stream_failures: Counter[str] = field(default_factory=Counter)  # streams only: label ->
    examples: dict[str, list[Example]] = field(default_factory=dict)  # endpoint ->

    @property
    def pairs(self) -> int:
        return sum(self.endpoints.values())

    @property
    def streams(self) -> int:
        return sum(self.stream_failures.values())

    def ranked_failures(
        self, endpoint: str | None = None, *, streams: bool = False
    ) -> tuple[tuple[str, int], ...]:
        """How the failing side failed (one endpoint's pairs, streams, or all), most first."""
        counts: Counter[str] = Counter()
        if streams:
            counts.update(self.stream_failures)
        for key, failures in self.failures.items():
            if not streams and endpoint in (None, key):
                counts.update(failures)
        return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def merge(self, other: OutcomeTally) -> None:
        self.endpoints.update(other.endpoints)
        self.families.update(other.families)
        self.stream_failures.update(other.stream_failures)
        for endpoint, failures in other.failures.items():
            self.failures.setdefault(endpoint, Counter()).update(failures)
        for endpoint, examples in other.examples.items():
            mine = self.examples.setdefault(endpoint, [])
            mine.extend(examples[: MAX_EXAMPLES - len(mine)])


@dataclass
class RuleHits:
    """One accept rule's effect: the pairs it accepted differences in, how many
    differences, and the pairs it matched but was refused (the SDK failed outright where
    legacy succeeded: never hidden)."""

    pairs: int = 0
    differences: int = 0
    refused: int = 0
    examples: list[str] = field(default_factory=list)  # pair ids
    refused_examples: list[str] = field(default_factory=list)

    def merge(self, other: RuleHits) -> None:
        self.pairs += other.pairs
        self.differences += other.differences
        self.refused += other.refused
        self.examples.extend(other.examples[: MAX_EXAMPLES - len(self.examples)])
        self.refused_examples.extend(
            other.refused_examples[: MAX_EXAMPLES - len(self.refused_examples)]
        )


@dataclass
class AcceptTally:
    """What the accept rules did, per rule index (``compare.accept`` order)."""

    rules: dict[int, RuleHits] = field(default_factory=dict)
    pairs: int = 0  # pairs with at least one accepted difference
    whole: int = 0  # of those, pairs left with no difference at all

    def add(self, pair_id: str, accepted: list[int], refused: tuple[int, ...], left: int) -> None:
        """``accepted``: the rule index of each accepted difference; ``left``: the pair's
        differences no rule took."""
        if accepted:
            self.pairs += 1
            self.whole += not left
        for index in sorted(set(accepted)):
            hits = self.rules.setdefault(index, RuleHits())
            hits.pairs += 1
            hits.differences += accepted.count(index)
            if len(hits.examples) < MAX_EXAMPLES:
                hits.examples.append(pair_id)
        for index in refused:
            hits = self.rules.setdefault(index, RuleHits())
            hits.refused += 1
            if len(hits.refused_examples) < MAX_EXAMPLES:
                hits.refused_examples.append(pair_id)

    def merge(self, other: AcceptTally) -> None:
        self.pairs += other.pairs
        self.whole += other.whole
        for index, hits in other.rules.items():
            self.rules.setdefault(index, RuleHits()).merge(hits)


@dataclass
class RoutingTally:
    """Memory routing of one client family: did both proxies send the same memory ids?"""

    compared: int = 0  # pairs whose upstream calls were captured from both proxies
    mismatched: int = 0
    missing_user: int = 0  # pairs where the SDK proxy sent no x-sm-user-id at all
    examples: list[Example] = field(default_factory=list)

    def merge(self, other: RoutingTally) -> None:
        self.compared += other.compared
        self.mismatched += other.mismatched
        self.missing_user += other.missing_user
        self.examples.extend(other.examples[: MAX_EXAMPLES - len(self.examples)])


@dataclass
class ProviderCallTally:
    """Provider calls per client request, and what each side sent the provider.

    ``counted``: pairs whose calls were known on both sides; ``count_mismatched``: of
    those, pairs where one side made more or fewer calls than the other once explained
    retries are set aside. ``parity_compared`` / ``parity_differing``: pairs whose calls
    were compared field by field (:func:`harness.compare.upstream.upstream_parity`), the
    differing fields counted by generalized path. ``unattached``: per target, provider
    calls no client request claimed; ``replay_misses``: per target, the mirror side's calls
    the replay upstream had no recorded answer for (answered 502 there, never forwarded:
    they reached no provider), and ``miss_paths`` where they went."""

    counted: int = 0
    count_mismatched: int = 0
    count_examples: list[Example] = field(default_factory=list)
    parity_compared: int = 0
    parity_differing: int = 0
    parity_fields: Counter[str] = field(default_factory=Counter)
    parity_examples: dict[str, list[Example]] = field(default_factory=dict)
    unattached: Counter[str] = field(default_factory=Counter)
    unattached_examples: list[str] = field(default_factory=list)
    replay_misses: Counter[str] = field(default_factory=Counter)
    miss_paths: Counter[str] = field(default_factory=Counter)

    def merge(self, other: ProviderCallTally) -> None:
        self.counted += other.counted
        self.count_mismatched += other.count_mismatched
        self.count_examples.extend(other.count_examples[: MAX_EXAMPLES - len(self.count_examples)])
        self.parity_compared += other.parity_compared
        self.parity_differing += other.parity_differing
        self.parity_fields.update(other.parity_fields)
        for key, examples in other.parity_examples.items():
            mine = self.parity_examples.setdefault(key, [])
            mine.extend(examples[: MAX_EXAMPLES - len(mine)])
        self.unattached.update(other.unattached)
        room = MAX_EXAMPLES - len(self.unattached_examples)
        self.unattached_examples.extend(other.unattached_examples[:room])
        self.replay_misses.update(other.replay_misses)
        self.miss_paths.update(other.miss_paths)


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """What the cookie gate needs of one captured upstream call."""

    seq: float  # the sandbox's sequence number (arrival order across both proxies)
    started: float | None  # unix seconds
    finished: float | None  # started + duration, when known
    issued: bool  # the sandbox handed out a cookie in its answer
    carried: bool  # the call brought a cookie back
    pair_id: str


@dataclass
class ContractPoint:
    """One client-contract point over the pairs it applied to (:mod:`.client_contract`):
    how many the SDK missed where legacy kept it (regressions), and the reverse."""

    compared: int = 0
    regressions: int = 0
    sdk_better: int = 0
    examples: list[str] = field(default_factory=list)  # pair ids of regressions

    def add(self, sdk: bool | None, legacy: bool | None, pair_id: str) -> None:
        self.compared += 1
        if legacy and not sdk:
            self.regressions += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(pair_id)
        elif sdk and not legacy:
            self.sdk_better += 1

    def merge(self, other: ContractPoint) -> None:
        self.compared += other.compared
        self.regressions += other.regressions
        self.sdk_better += other.sdk_better
        self.examples.extend(other.examples[: MAX_EXAMPLES - len(self.examples)])


@dataclass
class StreamEndings:
    """SDK streams that answered 2xx, and those that never sent [DONE] / message_stop."""

    streams: int = 0
    unterminated: int = 0
    examples: list[str] = field(default_factory=list)  # pair ids

    def merge(self, other: StreamEndings) -> None:
        self.streams += other.streams
        self.unterminated += other.unterminated
        self.examples.extend(other.examples[: MAX_EXAMPLES - len(self.examples)])


@dataclass
class UncomparableRows:
    """Store rows the report could not compare: unreadable (not JSON, a field of the wrong
    type) or a comparison that raised. All counted, by reason; the first
    ``MAX_UNCOMPARABLE_LISTED`` listed as (row id, reason) in id order."""

    rows: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    listed: list[tuple[int, str]] = field(default_factory=list)

    def add(self, row_id: int, reason: str) -> None:
        self.rows += 1
        self.reasons[reason] += 1
        if len(self.listed) < MAX_UNCOMPARABLE_LISTED:
            self.listed.append((row_id, reason))

    def merge(self, other: UncomparableRows) -> None:
        self.rows += other.rows
        self.reasons.update(other.reasons)
        self.listed.extend(other.listed[: MAX_UNCOMPARABLE_LISTED - len(self.listed)])


@dataclass
class LatencySlice:
    """Latency samples of one endpoint x stream slice, per target (milliseconds)."""

    endpoint: str
    stream: bool
    total: dict[str, list[float]] = field(default_factory=dict)
    ttft: dict[str, list[float]] = field(default_factory=dict)
    # SDK - legacy per pair timed alike (twin and mirror, sent at the same moment).
    paired_total: list[float] = field(default_factory=list)
    paired_ttft: list[float] = field(default_factory=list)

    def merge(self, other: LatencySlice) -> None:
        for mine, theirs in ((self.total, other.total), (self.ttft, other.ttft)):
            for target, values in theirs.items():
                mine.setdefault(target, []).extend(values)
        self.paired_total.extend(other.paired_total)
        self.paired_ttft.extend(other.paired_ttft)


@dataclass(frozen=True)
class RssSeries:
    """One target's resident memory over one load run."""

    target: str
    run_id: int
    run_name: str
    points: tuple[tuple[float, int], ...]  # (seconds since the run started, rss bytes)
    # Requests the target had served at each point (empty: unknown); ``estimated`` when
    # spread over the run at a steady rate from its total (no per-sample counts stored).
    requests: tuple[int, ...] = ()
    estimated: bool = False


@dataclass
class LiveSpend:
    """Live mirroring: what the mirror side cost the provider, and whether its memory was
    kept apart (its ids carried the suffix wherever its provider calls were recorded)."""

    pairs: int = 0  # mirrored live, the A/A repeat's second call included in ``requests``
    requests: int = 0
    tokens: int = 0  # input + output, from the usage the mirror side's answers reported
    checked: int = 0  # pairs whose mirror-side provider calls were recorded
    isolated: int = 0  # ... and every one of them carried the suffix

    def merge(self, other: LiveSpend) -> None:
        self.pairs += other.pairs
        self.requests += other.requests
        self.tokens += other.tokens
        self.checked += other.checked
        self.isolated += other.isolated


@dataclass
class InstanceTally:
    """One proxy instance's share of the pairs (a team's store holds many instances):
    which client families it saw, and how often its SDK and legacy answers differed."""

    pairs: int = 0
    compared: int = 0
    differing: int = 0  # compared pairs with at least one (not ignored) difference
    families: Counter[str] = field(default_factory=Counter)

    def merge(self, other: InstanceTally) -> None:
        self.pairs += other.pairs
        self.compared += other.compared
        self.differing += other.differing
        self.families.update(other.families)


@dataclass(frozen=True)
class RunInfo:
    """What produced the evidence; fixed values in tests make reports reproducible."""

    generated_at: float
    project_version: str
    litellm_version: str
    config_path: str
    config_sha256: str | None
    store_path: str  # a URL without its password

    @property
    def day(self) -> date:
        """The day (UTC) the report is made on: an accept rule past its ``expires`` is
        not applied. From the run info, so a report rebuilt from its inputs is the same."""
        return datetime.fromtimestamp(self.generated_at, UTC).date()


@dataclass
class Evidence:
    """Everything the gates look at, folded from the store."""

    run: RunInfo
    pairs: int = 0  # folded; the uncomparable rows are not among them
    mirrored: int = 0
    first_received: float | None = None
    last_received: float | None = None
    primaries: Counter[str] = field(default_factory=Counter)
    endpoint_pairs: Counter[str] = field(default_factory=Counter)
    diffs: dict[str, DiffTally] = field(default_factory=dict)  # endpoint -> sdk vs legacy
    noise: dict[str, DiffTally] = field(default_factory=dict)  # endpoint -> legacy vs legacy
    stream_diffs: DiffTally = field(default_factory=DiffTally)
    stream_noise: DiffTally = field(default_factory=DiffTally)
    stream_endings: StreamEndings = field(default_factory=StreamEndings)
    error_diffs: DiffTally = field(default_factory=DiffTally)
    error_noise: DiffTally = field(default_factory=DiffTally)
    # Pairs where one proxy failed outright and the other succeeded. SDK-better pairs are
    # in no DiffTally above (their "differences" only restate legacy's failure); SDK-worse
    # pairs are compared as always and also counted here.
    sdk_better: OutcomeTally = field(default_factory=OutcomeTally)
    sdk_worse: OutcomeTally = field(default_factory=OutcomeTally)
    families: dict[str, DiffTally] = field(default_factory=dict)
    family_pairs: Counter[str] = field(default_factory=Counter)
    routing: dict[str, RoutingTally] = field(default_factory=dict)  # client family -> tally
    contract: dict[str, ContractPoint] = field(default_factory=dict)  # point -> tally
    upstream_calls: dict[str, list[UpstreamCall]] = field(default_factory=dict)  # target ->
    provider_calls: ProviderCallTally = field(default_factory=ProviderCallTally)
    latency: dict[tuple[str, bool], LatencySlice] = field(default_factory=dict)
    load_runs: tuple[LoadRun, ...] = ()
    rss: tuple[RssSeries, ...] = ()
    uncomparable: UncomparableRows = field(default_factory=UncomparableRows)
    upstream_modes: Counter[str] = field(default_factory=Counter)  # replay / live -> pairs
    # Replay pairs whose primary made no provider call (answered locally, or refused
    # before calling): the mirror side had nothing to be answered with.
    replay_unrecorded: int = 0
    # Pairs stored with the primary's answer only, by their mirror outcome (e.g. "not
    # mirrored: shutdown": queued when shadow mode stopped): in no comparison, but counted.
    not_mirrored: Counter[str] = field(default_factory=Counter)
    # Differences the accept rules took out of the tallies above (harness.compare.accept).
    accepted: AcceptTally = field(default_factory=AcceptTally)
    live: LiveSpend = field(default_factory=LiveSpend)
    # What the pairs and load runs were read from: the scope's words, and the one shadow
    # run read (its versions, configs and mirror counters) when the scope is one run.
    scope: str = "all pairs"
    shadow_run: RunRecord | None = None
    # Proxy instance -> its share; pairs read without an instance (older rows) in none.
    instances: dict[str, InstanceTally] = field(default_factory=dict)
    # How each timed pair's two sides were timed (harness.report.collect): "alike" (the
    # latency twin and the mirror, by the same client at the same moment) or "as served"
    # (the primary inside its server, the mirror by the sidecar's client).
    latency_timing: Counter[str] = field(default_factory=Counter)

    @property
    def replay_only(self) -> bool:
        """Every pair was mirrored in replay mode: the upstream was held fixed."""
        return bool(self.upstream_modes) and set(self.upstream_modes) == {"replay"}

    @property
    def rows(self) -> int:
        """Every store row read: the folded pairs and the uncomparable rows."""
        return self.pairs + self.uncomparable.rows

    @property
    def compared(self) -> int:
        return sum(t.compared for t in self.diffs.values())

    @property
    def aa_samples(self) -> int:
        return sum(t.compared for t in self.noise.values())

    def overall_noise(self) -> DiffTally:
        total = DiffTally()
        for endpoint in sorted(self.noise):
            total.merge(self.noise[endpoint])
        return total

    def merge(self, other: Evidence) -> None:
        """Add ``other``'s pairs (folded after this one's, in order)."""
        self.pairs += other.pairs
        self.mirrored += other.mirrored
        received = [t for t in (self.first_received, other.first_received) if t is not None]
        self.first_received = min(received) if received else None
        received = [t for t in (self.last_received, other.last_received) if t is not None]
        self.last_received = max(received) if received else None
        self.primaries.update(other.primaries)
        self.endpoint_pairs.update(other.endpoint_pairs)
        self.family_pairs.update(other.family_pairs)
        for mine, theirs in (
            (self.diffs, other.diffs),
            (self.noise, other.noise),
            (self.families, other.families),
        ):
            for key, tally in theirs.items():
                mine.setdefault(key, DiffTally()).merge(tally)
        self.stream_diffs.merge(other.stream_diffs)
        self.stream_noise.merge(other.stream_noise)
        self.stream_endings.merge(other.stream_endings)
        self.error_diffs.merge(other.error_diffs)
        self.error_noise.merge(other.error_noise)
        self.sdk_better.merge(other.sdk_better)
        self.sdk_worse.merge(other.sdk_worse)
        for family, routing in other.routing.items():
            self.routing.setdefault(family, RoutingTally()).merge(routing)
        for point, contract_point in other.contract.items():
            self.contract.setdefault(point, ContractPoint()).merge(contract_point)
        for target, calls in other.upstream_calls.items():
            self.upstream_calls.setdefault(target, []).extend(calls)
        self.provider_calls.merge(other.provider_calls)
        for slice_key, latency in other.latency.items():
            self.latency.setdefault(slice_key, LatencySlice(*slice_key)).merge(latency)
        self.uncomparable.merge(other.uncomparable)
        self.upstream_modes.update(other.upstream_modes)
        self.replay_unrecorded += other.replay_unrecorded
        self.not_mirrored.update(other.not_mirrored)
        self.accepted.merge(other.accepted)
        self.live.merge(other.live)
        for name, instance in other.instances.items():
            self.instances.setdefault(name, InstanceTally()).merge(instance)
        self.latency_timing.update(other.latency_timing)
