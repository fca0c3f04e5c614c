"""Outcome direction: legacy failing where the SDK succeeded is set apart, never a regression;
the SDK failing where legacy succeeded is a regression, shown first; the rest is unchanged.

Table-driven twice: the pure classification of one pair, then pairs folded into evidence
(beside clean evidence on which every gate passes) and judged by the gates.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.compare import Comparator
from harness.observation import CapturedPair, Observation
from harness.report.collect import EvidenceCollector
from harness.report.first_screen import first_screen
from harness.report.gates import evaluate
from harness.report.model import Status
from harness.report.outcomes import Direction, direction, outcome_label
from harness.report.readiness import build_report
from harness.report.tally import Evidence
from harness.settings import HarnessSettings
from tests.harness.builders import chat_observation, make_pair, messages_observation, reply
from tests.harness.report.factories import clean_evidence, gate

SETTINGS = HarnessSettings()
PASS, FAIL = Status.PASS, Status.FAIL
BETTER, WORSE = Direction.SDK_BETTER, Direction.SDK_WORSE


def _failed(target: str, status: int | None, error: str | None = None) -> Observation:
    body = None
    if status is not None:
        body = {"error": {"message": f"failed with {status}", "type": "api_error"}}
    return Observation(target, status, {"content-type": "application/json"}, body=body, error=error)


def _ok(target: str = "sdk", *, stream: bool = False) -> Observation:
    return chat_observation(target=target, stream=stream)


def _cut_stream() -> Observation:
    whole = _ok(stream=True)
    assert whole.events is not None
    return replace(whole, events=whole.events[:-1])  # no data: [DONE]


# (id, SDK's answer, legacy's answer, endpoint, expected direction)
DIRECTIONS: list[tuple[str, Observation, Observation, str, Direction | None]] = [
    ("legacy 504", _ok(), _failed("legacy", 504), "chat", BETTER),
    ("legacy 429 (router cooldown)", _ok(), _failed("legacy", 429), "chat", BETTER),
    ("legacy 408", _ok(), _failed("legacy", 408), "chat", BETTER),
    ("legacy 500", _ok(), _failed("legacy", 500), "chat", BETTER),
    ("legacy no answer", _ok(), _failed("legacy", None, "ConnectTimeout"), "chat", BETTER),
    ("legacy cut after headers", _ok(), _failed("legacy", 200, "ReadTimeout"), "chat", BETTER),
    ("SDK stream, legacy 504", _ok(stream=True), _failed("legacy", 504), "chat", BETTER),
    (
        "SDK messages stream, legacy 429",
        messages_observation(stream=True),
        _failed("legacy", 429),
        "messages",
        BETTER,
    ),
    ("SDK 503", _failed("sdk", 503), _ok("legacy"), "chat", WORSE),
    ("SDK 429", _failed("sdk", 429), _ok("legacy"), "chat", WORSE),
    ("SDK no answer", _failed("sdk", None, "ReadTimeout"), _ok("legacy"), "chat", WORSE),
    # unchanged: same outcome, or a client error (an answer, not an outage)
    ("both succeeded", _ok(), _ok("legacy"), "chat", None),
    ("both failed outright", _failed("sdk", 504), _failed("legacy", 429), "chat", None),
    ("both 4xx, different", _failed("sdk", 404), _failed("legacy", 400), "chat", None),
    ("SDK 400, legacy 500", _failed("sdk", 400), _failed("legacy", 500), "chat", None),
    ("SDK 400, legacy 200", _failed("sdk", 400), _ok("legacy"), "chat", None),
    ("SDK 200, legacy 404", _ok(), _failed("legacy", 404), "chat", None),
    # a 2xx that is not a success in substance proves nothing
    ("SDK 200 without content", chat_observation(reply("")), _failed("legacy", 504), "chat", None),
    ("SDK stream without [DONE]", _cut_stream(), _failed("legacy", 504), "chat", None),
    ("SDK answer truncated", replace(_ok(), truncated=True), _failed("legacy", 504), "chat", None),
]


@pytest.mark.parametrize(
    ("sdk", "legacy", "endpoint", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in DIRECTIONS],
)
def test_direction(
    sdk: Observation, legacy: Observation, endpoint: str, expected: Direction | None
) -> None:
    stream = sdk.is_stream
    assert direction(make_pair(sdk, legacy, endpoint=endpoint, stream=stream)) is expected
    # whichever side answered the client
    assert direction(make_pair(legacy, sdk, endpoint=endpoint, stream=stream)) is expected


def test_unmirrored_pairs_have_no_direction() -> None:
    assert direction(make_pair(_ok(), None)) is None
    assert direction(make_pair(_failed("legacy", 504), None)) is None


def test_outcome_labels() -> None:
    assert outcome_label(_failed("legacy", 504)) == "504"
    assert outcome_label(_failed("legacy", None, "ConnectTimeout")) == "no answer: ConnectTimeout"
    assert outcome_label(_failed("legacy", 200, "ReadTimeout")) == "200, then ReadTimeout"


def _pairs(
    sdk: Observation, legacy: Observation, n: int, stream: bool = False
) -> list[CapturedPair]:
    return [make_pair(sdk, legacy, stream=stream, request_id=f"r{i}") for i in range(n)]


def _folded(pairs: list[CapturedPair]) -> Evidence:
    """Clean evidence (every gate passes with 40 samples) plus ``pairs`` folded in."""
    collector = EvidenceCollector(Comparator(), clean_evidence().run)
    for pair in pairs:
        collector.add(pair)
    evidence = clean_evidence()
    evidence.merge(collector.evidence)
    return evidence


_COOLDOWN = _failed("legacy", 429)
_TIMEOUT = _failed("legacy", 504)
_GATES = ("parity: chat", "streaming parity", "error handling", "compatibility")

# (id, folded pairs, expected status of parity: chat, streaming, error handling,
#  compatibility, SDK-better pairs, SDK-worse pairs)
FOLDED: list[tuple[str, list[CapturedPair], tuple[Status, ...], int, int]] = [
    (
        "SDK-better: legacy 429/504, SDK 200",
        _pairs(_ok(), _COOLDOWN, 10)
        + _pairs(_ok(), _TIMEOUT, 10)
        + _pairs(_ok(stream=True), _TIMEOUT, 10, stream=True),
        (PASS, PASS, PASS, PASS),
        30,
        0,
    ),
    (
        "SDK-worse: SDK 503, legacy 200",
        _pairs(_failed("sdk", 503), _ok("legacy"), 10),
        (FAIL, PASS, FAIL, FAIL),
        0,
        10,
    ),
    (
        "SDK-worse stream: SDK no answer, legacy 200",
        _pairs(_failed("sdk", None, "ReadTimeout"), _ok("legacy", stream=True), 10, stream=True),
        (FAIL, FAIL, FAIL, FAIL),
        0,
        10,
    ),
    (
        "both 4xx, different: SDK 404, legacy 400",
        _pairs(_failed("sdk", 404), _failed("legacy", 400), 10),
        (FAIL, PASS, FAIL, FAIL),
        0,
        0,
    ),
    (
        "both failed outright, differently: SDK 504, legacy 429",
        _pairs(_failed("sdk", 504), _COOLDOWN, 10),
        (FAIL, PASS, FAIL, FAIL),
        0,
        0,
    ),
]


@pytest.mark.parametrize(
    ("pairs", "statuses", "better", "worse"),
    [pytest.param(*case[1:], id=case[0]) for case in FOLDED],
)
def test_folded_outcomes_in_the_gates(
    pairs: list[CapturedPair], statuses: tuple[Status, ...], better: int, worse: int
) -> None:
    evidence = _folded(pairs)
    assert (evidence.sdk_better.pairs, evidence.sdk_worse.pairs) == (better, worse)
    gates = evaluate(evidence, SETTINGS)
    assert tuple(gate(gates, name).status for name in _GATES) == statuses
    # set-apart pairs are no samples; every other pair is compared as before
    assert evidence.diffs["chat"].compared == 40 + len(pairs) - better
    assert gate(gates, "parity: chat").measured["sdk_better"] == better
    assert gate(gates, "parity: chat").measured["sdk_worse"] == worse
    assert gate(gates, "error handling").measured["sdk_better"] == better


def test_sdk_better_is_counted_and_said_but_never_fails() -> None:
    pairs = _pairs(_ok(), _COOLDOWN, 3) + _pairs(_ok(), _failed("legacy", None, "Timeout"), 1)
    report = build_report(_folded(pairs), SETTINGS)
    assert report.decision.value == "GO"
    (shift,) = report.sdk_better
    assert (shift.endpoint, shift.pairs, shift.of_pairs) == ("chat", 4, 44)
    assert shift.failures_text == "429 x3, no answer: Timeout x1"
    check = [c for c in gate(report.gates, "parity: chat").checks if c.samples == 4]
    assert check[0].status is PASS and "legacy 429 x3" in check[0].measured
    screen = first_screen(report)
    assert screen.failed == ()
    assert screen.informational == (
        # The pairs are built as live mirrors (the stored default): their spend is said.
        "Mirrored live for 4 pairs: the mirror side called the provider itself (4 requests, "
        "0 tokens by the answers' usage); memory isolation (the mirror's memory ids suffixed "
        "'-shadow'): configured, no mirror-side provider call recorded to confirm it",
        "legacy failed where the SDK succeeded in 4 pairs, set apart (not regressions): "
        "chat 4 of 44 (429 x3, no answer: Timeout x1)",
    )
    assert "4 set apart" in screen.evidence


def test_sdk_worse_leads_the_worst_differences() -> None:
    content = chat_observation(reply("an answer about something else entirely, nothing alike"))
    pairs = _pairs(content, _ok("legacy"), 8) + _pairs(_failed("sdk", 503), _ok("legacy"), 1)
    report = build_report(_folded(pairs), SETTINGS)
    first = report.worst[0]
    assert first.key == "SDK failed where legacy succeeded: SDK 503 x1"
    assert (first.endpoint, first.category, first.count) == ("chat", "status", 1)
    assert first.examples[0]["sdk"] == "503" and first.examples[0]["legacy"] == "200"
    # one pair in 49 is within the +3 points: said first, judged as any status difference;
    # no A/A repeat ever showed it, so it is not called noise
    assert first.verdict == "not in A/A"
    assert report.worst[1].category == "content" and report.worst[1].verdict == "regression"
    assert [s.pairs for s in report.sdk_worse] == [1]


def test_the_first_screen_names_the_replay_mode() -> None:
    from harness.report.first_screen import first_screen, upstream_mode_line
    from harness.report.readiness import build_report
    from harness.settings import HarnessSettings
    from tests.harness.report.factories import clean_evidence

    evidence = clean_evidence()
    assert upstream_mode_line(build_report(evidence, HarnessSettings())) == ""  # live
    evidence.upstream_modes["replay"] = 120
    evidence.replay_unrecorded = 3
    report = build_report(evidence, HarnessSettings())
    line = upstream_mode_line(report)
    assert line.startswith("Upstream held fixed (replay) for 120 pairs")
    assert "3 pairs had no provider call" in line
    assert first_screen(report).informational[0] == line
