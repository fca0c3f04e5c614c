"""The report's evidence stays bounded: latency samples in seeded reservoirs, the cookie
gate's upstream calls in a bounded window, and parts folded apart merge to the same gates.

The caps are shrunk here (20 timings, 20 calls) so that 1,400 synthetic pairs are ten
times past them; the real ones keep every sample of a store the demo's size,
which the golden reports (unchanged) show."""

from __future__ import annotations

import pickle
import random
from dataclasses import replace

import pytest

from harness.report import cookie_tally, reservoir
from harness.report.collect import EvidenceCollector
from harness.report.cookie_tally import CookieTally, UpstreamCall
from harness.report.evidence import comparator_for
from harness.report.readiness import build_report
from harness.report.reservoir import Reservoir
from harness.report.tally import Evidence
from harness.settings import HarnessSettings
from tests.harness.report.factories import RUN
from tests.harness.report.synthetic import synthetic_pairs

CAP = 20
SETTINGS = HarnessSettings()


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reservoir, "RESERVOIR_SIZE", CAP)
    monkeypatch.setattr(cookie_tally, "COOKIE_WINDOW", CAP)


def _fold(pairs: int, first: int = 0, collector: EvidenceCollector | None = None) -> Evidence:
    """The synthetic pairs folded, each mirrored one with a latency twin (timed alike)."""
    if collector is None:
        comparator, redactor = comparator_for(SETTINGS, None)
        collector = EvidenceCollector(comparator, RUN, redactor)
    for pair in synthetic_pairs(pairs, "nogo", first=first):
        collector.add(replace(pair, latency_twin=pair.primary) if pair.shadow else pair)
    return collector.evidence


def test_a_reservoir_keeps_every_value_up_to_its_size_in_order() -> None:
    values = [float(v) for v in range(CAP)]
    kept = Reservoir(values, cap=CAP)
    assert kept.values == values and kept.seen == CAP and kept.complete


def test_past_its_size_a_reservoir_keeps_a_seeded_uniform_sample() -> None:
    added = [float(v) for v in range(100 * CAP)]
    kept = Reservoir(added, cap=CAP)
    assert len(kept) == CAP and kept.seen == 100 * CAP and not kept.complete
    assert set(kept.values) <= set(added)
    assert Reservoir(added, cap=CAP).values == kept.values  # seeded: the same sample
    # Uniform: over many streams, every position is kept as often as any other.
    big = Reservoir([float(v % 10) for v in range(100_000)], cap=1000)
    assert all(80 < big.values.count(float(d)) < 120 for d in range(10))


def test_merged_reservoirs_are_the_concatenation_below_the_size() -> None:
    one = Reservoir([1.0, 2.0], cap=CAP)
    one.merge(Reservoir([3.0], cap=CAP))
    assert one.values == [1.0, 2.0, 3.0] and one.seen == 3


def test_merged_reservoirs_draw_each_part_by_what_it_saw() -> None:
    """A part that saw nine times the values gets about nine tenths of the slots, however
    many each part kept."""
    many = Reservoir([0.0] * 9000, cap=1000)
    few = Reservoir([1.0] * 1000, cap=1000)
    many.merge(few)
    assert many.seen == 10_000 and len(many) == 1000
    assert 60 < many.values.count(1.0) < 140


@pytest.mark.usefixtures("small_caps")
def test_the_evidence_stops_growing_past_the_caps() -> None:
    # 200 pairs per latency slice, 600 calls per target: ten times the caps, and enough
    # for every kept example (5 per field, per failure) to be found.
    evidence = _fold(1400)
    size = len(pickle.dumps(evidence))
    _fold(700, first=1400, collector=_collector_of(evidence))
    assert evidence.pairs == 2100
    assert len(pickle.dumps(evidence)) <= size + 200  # counts' digits, not samples
    chat = evidence.latency[("chat", True)]
    assert chat.total["sdk"].seen > 10 * CAP and len(chat.total["sdk"]) == CAP
    assert chat.paired_ttft.seen > 10 * CAP and len(chat.paired_ttft) == CAP
    cookies = evidence.upstream_calls["sdk"]
    assert cookies.calls > 10 * CAP and cookies.held <= 2 * CAP
    # Counts stay whole: every call judged, every timing counted.
    facts = cookies.facts("sdk")
    assert facts.calls == cookies.calls and facts.expected == facts.carried == cookies.calls - 1
    summary = build_report(evidence, SETTINGS).latency[1]
    assert (summary.endpoint, summary.stream) == ("chat", True)
    assert summary.samples["sdk"] == chat.total["sdk"].seen


def _collector_of(evidence: Evidence) -> EvidenceCollector:
    comparator, redactor = comparator_for(SETTINGS, None)
    collector = EvidenceCollector(comparator, RUN, redactor)
    collector.evidence = evidence
    return collector


def test_below_the_caps_every_timing_is_kept_in_fold_order() -> None:
    pairs = list(synthetic_pairs(140, "nogo"))
    evidence = _fold(140)
    sdk_totals = [
        p.sdk.total_ms
        for p in pairs
        if (p.request.endpoint, p.request.stream) == ("chat", False)
        and p.sdk is not None
        and p.sdk.status == 200
    ]
    kept = evidence.latency[("chat", False)].total["sdk"]
    assert kept.complete and kept.values == sdk_totals


@pytest.mark.usefixtures("small_caps")
def test_two_parts_past_the_caps_give_the_same_gates_as_one() -> None:
    """As ``collect_evidence`` merges its workers' parts: the reservoirs are other samples
    of the same timings, the counts are the same, and so is every gate's status."""
    one = _fold(1400)
    two = _fold(700)
    two.merge(_fold(700, first=700))
    assert two.latency[("chat", True)].total["sdk"].seen == (
        one.latency[("chat", True)].total["sdk"].seen
    )
    for target in ("sdk", "legacy"):
        merged, whole = two.upstream_calls[target], one.upstream_calls[target]
        assert merged.facts(target) == whole.facts(target)
    report_one, report_two = build_report(one, SETTINGS), build_report(two, SETTINGS)
    assert [(g.name, g.status, g.samples) for g in report_two.gates] == [
        (g.name, g.status, g.samples) for g in report_one.gates
    ]
    assert report_two.decision == report_one.decision


def _calls(count: int, missing_at: tuple[int, ...] = ()) -> list[UpstreamCall]:
    """One call a second; the first is given the cookie, every later one should carry it."""
    return [
        UpstreamCall(i, float(i), float(i) + 0.5, i == 0, i > 0 and i not in missing_at, f"r{i}")
        for i in range(count)
    ]


@pytest.mark.usefixtures("small_caps")
def test_calls_arriving_out_of_order_within_the_window_are_judged_as_sorted() -> None:
    calls = _calls(10 * CAP, missing_at=(3, 150))
    shuffled = []
    for start in range(0, len(calls), CAP // 2):  # out of order by less than the window
        chunk = calls[start : start + CAP // 2]
        random.Random(start).shuffle(chunk)
        shuffled.extend(chunk)
    tally = CookieTally.of(shuffled)
    assert tally.held <= 2 * CAP
    facts = tally.facts("sdk")
    assert (facts.calls, facts.expected, facts.carried) == (10 * CAP, 10 * CAP - 1, 10 * CAP - 3)
    assert facts.misses == ("r3", "r150")


@pytest.mark.usefixtures("small_caps")
def test_a_later_part_is_judged_from_the_earlier_parts_cookie() -> None:
    """The later part's first calls came before it saw a cookie of its own; after the
    earlier part's, they were expected to carry it, and one did not."""
    calls = _calls(10 * CAP, missing_at=(5 * CAP,))
    earlier, later = CookieTally.of(calls[: 5 * CAP]), CookieTally.of(calls[5 * CAP :])
    assert later.facts("sdk").misses == ()  # alone, its first call raced no cookie
    earlier.merge(later)
    assert earlier.facts("sdk") == CookieTally.of(calls).facts("sdk")
    assert earlier.facts("sdk").misses == (f"r{5 * CAP}",)
