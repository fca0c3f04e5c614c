"""Folding pairs into evidence: orientation, the A/A noise baseline, error pairs, the
worker split."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from harness.compare import Comparator, Thresholds, classify
from harness.observation import Observation
from harness.report.collect import EvidenceCollector, is_error_pair
from harness.report.evidence import collect_evidence, id_ranges
from harness.report.first_screen import first_screen
from harness.report.readiness import build_report
from harness.report.render_json import render_json
from harness.report.render_md import render_markdown
from harness.settings import HarnessSettings
from tests.harness.builders import chat_observation, make_pair, reply
from tests.harness.report.factories import RUN
from tests.harness.report.synthetic import build_store

OTHER = "an answer about something else entirely with nothing in common at all"


def _collector() -> EvidenceCollector:
    return EvidenceCollector(Comparator(), RUN)


def test_examples_are_sdk_vs_legacy_whichever_side_answered() -> None:
    sdk = replace(chat_observation(reply(OTHER)), total_ms=120.0)
    legacy = replace(chat_observation(target="legacy"), total_ms=100.0)
    collector = _collector()
    collector.add(make_pair(legacy, sdk, request_id="legacy-primary"))
    collector.add(make_pair(sdk, legacy, request_id="sdk-primary"))
    tally = collector.evidence.diffs["chat"]
    examples = tally.examples["body.choices[*].message.content"]
    assert [e.pair_id for e in examples] == ["legacy-primary", "sdk-primary"]
    assert all(e.sdk.startswith("an answer about") for e in examples)
    total = collector.evidence.latency[("chat", False)].total
    assert {t: kept.values for t, kept in total.items()} == {
        "sdk": [120.0, 120.0],
        "legacy": [100.0, 100.0],
    }


def test_noise_compares_legacy_with_legacy_when_legacy_answered() -> None:
    sdk = chat_observation(reply(OTHER))
    legacy = chat_observation(target="legacy")
    collector = _collector()
    # shadow mode the other way round: primary legacy, shadow SDK, repeat legacy
    collector.add(make_pair(legacy, sdk, repeat=legacy))
    noise = collector.evidence.noise["chat"]
    assert noise.compared == 1 and not noise.categories


def test_noise_baseline_from_a_a_pairs_and_classification() -> None:
    pairs = []
    for i in range(10):
        legacy = chat_observation(target="legacy")
        # Every other repeat says something else: content is noisy at 50 %.
        repeat = chat_observation(
            reply("a different sampled answer") if i % 2 else None, target="legacy"
        )
        # Six primaries say something else, three of them with other token counts.
        tokens = 99 if i < 3 else 14
        planned = reply("yet another answer", output_tokens=tokens) if i < 6 else None
        primary = chat_observation(planned)
        pairs.append(make_pair(primary, legacy, repeat=repeat, request_id=f"r{i}"))
    pairs.append(make_pair(chat_observation(), legacy))  # no repeat: not in the noise
    collector = _collector()
    for pair in pairs:
        collector.add(pair)
    noise = collector.evidence.noise["chat"]
    assert noise.compared == collector.evidence.aa_samples == 10
    assert noise.rate("content") == 0.5 and noise.rate("usage") == 0.0
    assert noise.field_rates() == {"body.choices[*].message.content": 0.5}
    diffs = collector.evidence.diffs["chat"]
    assert diffs.compared == 11 and diffs.rate("content") == 6 / 11
    result = classify(Thresholds(), diffs.category_rates(), noise.category_rates())
    assert not result["content"].regression  # 55 % vs 50 % noise: within 20 % relative
    assert result["usage"].regression  # 27 % vs no noise
    assert set(result) == {"content", "usage"}  # every category either side counted


def test_no_repeats_no_noise_baseline() -> None:
    collector = _collector()
    collector.add(make_pair(chat_observation(), chat_observation(target="legacy")))
    assert collector.evidence.aa_samples == 0 and not collector.evidence.noise
    assert collector.evidence.overall_noise().compared == 0


def test_error_pairs() -> None:
    ok = replace(chat_observation(), total_ms=50.0)
    failed = Observation("legacy", 503, body={"error": {"type": "api_error", "message": "x"}})
    gone = Observation("legacy", None, error="timeout")
    assert not is_error_pair(make_pair(ok, ok))
    assert is_error_pair(make_pair(ok, failed))
    assert is_error_pair(make_pair(ok, gone))
    collector = _collector()
    collector.add(make_pair(ok, failed))
    # legacy failed outright where the SDK succeeded: set apart, not compared
    assert collector.evidence.error_diffs.compared == 0
    assert collector.evidence.sdk_better.pairs == 1
    assert ("chat", False) in collector.evidence.latency  # the SDK's answer still counts
    assert "legacy" not in collector.evidence.latency[("chat", False)].total
    client_error = Observation("legacy", 400, body={"error": {"type": "invalid_request_error"}})
    collector.add(make_pair(ok, client_error))
    assert collector.evidence.error_diffs.compared == 1  # a 4xx is an answer: compared


def test_unmirrored_pairs_are_counted_not_compared() -> None:
    collector = _collector()
    collector.add(make_pair(chat_observation(), None))
    evidence = collector.evidence
    assert (evidence.pairs, evidence.mirrored, evidence.compared) == (1, 0, 0)


def test_pairs_a_stop_left_unmirrored_are_listed_in_every_rendering() -> None:
    collector = _collector()
    shutdown = "not mirrored: shutdown"
    for i in range(3):
        pair = make_pair(chat_observation(), None, request_id=f"req-{i}")
        collector.add(replace(pair, mirror_outcome=shutdown))
    collector.add(make_pair(chat_observation(), chat_observation(target="legacy")))
    evidence = collector.evidence
    assert evidence.not_mirrored == {shutdown: 3} and evidence.mirrored == 1
    report = build_report(evidence, HarnessSettings())
    line = "3 (not mirrored: shutdown: 3) pairs not mirrored"
    assert any(i.startswith(line) for i in first_screen(report).informational)
    assert "| not mirrored (primary only) | 3 (not mirrored: shutdown: 3) |" in render_markdown(
        report
    )
    assert json.loads(render_json(report))["context"]["not_mirrored"] == {shutdown: 3}


def test_two_workers_give_the_same_report_as_one(tmp_path: Path) -> None:
    store = build_store(tmp_path / "s.db", 300, "nogo")
    settings = HarnessSettings()
    one = collect_evidence(store, settings, RUN, workers=1)
    two = collect_evidence(store, settings, RUN, workers=2)
    assert two.pairs == one.pairs == 300
    assert render_json(build_report(two, settings)) == render_json(build_report(one, settings))


def test_load_runs_are_read_tolerantly(tmp_path: Path) -> None:
    from harness.store.capture_store import CaptureStore

    with CaptureStore(tmp_path / "s.db", spill=False) as store:
        store.add_load_run("a", target="sdk", results={"requests": 10})
        store.add_load_run("b", params={"users": 50})
        store.put(make_pair(chat_observation(), None))
        runs = store.load_runs()
    assert [(r.name, r.target, r.results, r.params) for r in runs] == [
        ("a", "sdk", {"requests": 10}, {}),
        ("b", None, {}, {"users": 50}),
    ]
    with CaptureStore(tmp_path / "empty.db", spill=False) as empty:
        assert empty.load_runs() == ()


def test_id_ranges_cover_every_id_once() -> None:
    assert id_ranges(1, 10, 1) == [(0, 10)]
    assert id_ranges(1, 10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert id_ranges(5, 6, 4) == [(4, 5), (5, 6)]  # fewer ids than workers


def test_a_pair_with_a_latency_twin_is_timed_alike() -> None:
    """The twin (the SDK build, timed by the mirror's client beside the mirror) stands for
    the SDK in latency; the primary's in-server timing does not; the report says how."""
    primary = replace(chat_observation(), total_ms=5.0)  # timed inside its own server
    twin = replace(chat_observation(), total_ms=21.0)
    legacy = replace(chat_observation(target="legacy"), total_ms=20.0)
    collector = _collector()
    collector.add(replace(make_pair(primary, legacy, request_id="twin"), latency_twin=twin))
    collector.add(make_pair(primary, legacy, request_id="no-twin"))
    evidence = collector.evidence
    total = evidence.latency[("chat", False)].total
    assert {t: kept.values for t, kept in total.items()} == {
        "sdk": [21.0, 5.0],
        "legacy": [20.0, 20.0],
    }
    assert evidence.latency_timing == {"alike": 1, "as served": 1}
    markdown = render_markdown(build_report(evidence, HarnessSettings()))
    assert "1 pairs timed alike" in markdown and "1 pairs timed as served" in markdown
