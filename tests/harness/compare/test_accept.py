"""Accepted differences: a rule hides exactly the pairs it matches, never an SDK outage."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from harness.compare import Comparator
from harness.compare.accept import AcceptRules, parse_rules
from harness.observation import CapturedPair, Observation
from harness.report.collect import EvidenceCollector
from harness.report.model import Status
from harness.report.readiness import build_report
from harness.settings import HarnessSettings, load_harness_settings, with_accepted
from memory_proxy.errors import ConfigError
from tests.harness.builders import make_pair, messages_observation
from tests.harness.report.factories import RUN

# RUN.generated_at is 2026-01-02 (UTC): the day the reports below are made on.
TODAY = date(2026, 1, 2)
UNKNOWN_MODEL = {
    "name": "unknown-model",
    "endpoint": "messages",
    "status": {"sdk": 404, "legacy": 400},
    "category": ["status", "error_type", "error_message"],
    "reason": "unknown model: 404 with the list of models is what clients expect",
    "owner": "platform",
    "expires": "2026-06-30",
}


def _error(target: str, status: int, kind: str, message: str) -> Observation:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return Observation(target, status, {"content-type": "application/json"}, body=body)


def _unknown_model(request_id: str, endpoint: str = "messages") -> CapturedPair:
    return make_pair(
        _error("sdk", 404, "not_found_error", "model 'x' is not served here; available: a, b"),
        _error("legacy", 400, "invalid_request_error", "litellm.BadRequestError: no deployments"),
        endpoint=endpoint,
        request_id=request_id,
        request_body={"model": "x", "max_tokens": 10, "messages": []},
    )


def _content_change(request_id: str) -> CapturedPair:
    from tests.harness.builders import reply

    return make_pair(
        messages_observation(),
        messages_observation(reply("something else entirely, nothing alike"), target="legacy"),
        endpoint="messages",
        request_id=request_id,
    )


def _outage(request_id: str) -> CapturedPair:
    sdk = _error("sdk", 502, "api_error", "upstream failed")
    return make_pair(
        sdk, messages_observation(target="legacy"), endpoint="messages", request_id=request_id
    )


def _collect(rules: list[dict[str, Any]], pairs: list[CapturedPair]) -> EvidenceCollector:
    collector = EvidenceCollector(Comparator(), RUN, accept=AcceptRules(parse_rules(rules), TODAY))
    for pair in pairs:
        collector.add(pair)
    return collector


def _settings(rules: list[dict[str, Any]]) -> HarnessSettings:
    return with_accepted(HarnessSettings(), parse_rules(rules))


def test_a_rule_hides_exactly_the_pairs_it_matches() -> None:
    pairs = [
        _unknown_model("matched-1"),
        _unknown_model("matched-2"),
        _unknown_model("other-endpoint", endpoint="chat"),  # the rule names messages only
        _content_change("other-status"),  # 200 vs 200: not the rule's status pair
    ]
    without = _collect([], pairs).evidence
    evidence = _collect([UNKNOWN_MODEL], pairs).evidence
    # The matched pairs' status, error type and message are gone from the tallies ...
    assert without.diffs["messages"].categories["status"] == 2
    assert evidence.diffs["messages"].categories["status"] == 0
    assert evidence.diffs["messages"].categories["content"] == 1  # ... not the others'
    assert evidence.diffs["chat"].categories == without.diffs["chat"].categories
    assert evidence.diffs["messages"].compared == 3  # still compared, counted as accepted
    hits = evidence.accepted.rules[0]
    assert (hits.pairs, hits.examples) == (2, ["matched-1", "matched-2"])
    assert hits.differences == 2 * 4  # status, error_type (2 paths), error_message
    assert evidence.accepted.whole == 2
    report = build_report(evidence, _settings([UNKNOWN_MODEL]))
    (rule,) = report.accepted
    assert (rule.name, rule.state, rule.pairs, rule.expires) == (
        "unknown-model",
        "applied",
        2,
        "2026-06-30",
    )
    assert report.accepted_pairs == 2


def test_paths_model_family_and_request_fields_narrow_a_rule() -> None:
    base = {"reason": "deliberate", "endpoint": "messages"}
    rules = [
        {**base, "name": "by-path", "path": "body.error.message"},
        {**base, "name": "by-model", "category": "status", "model": "gpt-*"},
        {**base, "name": "by-family", "category": "error_type", "family": "curl"},
        {**base, "name": "by-field", "category": "status", "request_field": "api_key"},
    ]
    evidence = _collect(rules, [_unknown_model("p")]).evidence
    # Only the path rule applied: model claude-sonnet-4.5, family claude-code, no api_key.
    assert set(evidence.accepted.rules) == {0}
    categories = evidence.diffs["messages"].categories
    assert categories["error_message"] == 0
    assert categories["status"] == categories["error_type"] == 1
    # The same pair with an api_key in the client's body: the field rule takes its status.
    keyed = _unknown_model("keyed")
    keyed = replace(keyed, request=replace(keyed.request, body={"api_key": "<redacted>"}))
    evidence = _collect(rules, [keyed]).evidence
    assert set(evidence.accepted.rules) == {0, 3}
    assert evidence.diffs["messages"].categories["status"] == 0


def test_an_sdk_error_pattern_takes_only_the_sdk_errors_it_names() -> None:
    def refused(request_id: str, message: str) -> CapturedPair:
        return make_pair(
            _error("sdk", 400, "invalid_request_error", message),
            _error("legacy", 502, "api_error", "replay miss"),
            endpoint="messages",
            request_id=request_id,
        )

    rule = {
        "name": "checked-locally",
        "reason": "the SDK proxy checks the shape first",
        "endpoint": "messages",
        "status": {"sdk": 400},
        # Brackets are literal, only * is a wildcard: "messages[0]" is no character class.
        "sdk_error": ["messages[*]: expected an object*", "*: expected *, got *"],
        "category": ["status", "error_type", "error_message"],
    }
    evidence = _collect(
        [rule],
        [
            refused("a", "messages[0]: expected an object with a string 'role'"),
            refused("b", "stream: expected a boolean, got string"),
            # The same statuses with another message (an SDK defect refusing a valid
            # request, say) stay regressions.
            refused("c", "messages0: expected an object with a string 'role'"),
            refused("d", "upstream refused the request"),
        ],
    ).evidence
    assert evidence.accepted.rules[0].examples == ["a", "b"]
    assert evidence.diffs["messages"].categories["status"] == 2
    assert parse_rules([rule])[0].to_dict()["sdk_error"] == rule["sdk_error"]


def test_an_expired_rule_is_listed_and_not_applied_a_stale_one_is_listed() -> None:
    expired = {**UNKNOWN_MODEL, "name": "expired", "expires": "2026-01-01"}
    stale = {**UNKNOWN_MODEL, "name": "stale", "endpoint": "count_tokens"}
    rules = [expired, stale]
    evidence = _collect(rules, [_unknown_model("p")]).evidence
    assert evidence.diffs["messages"].categories["status"] == 1  # not hidden
    report = build_report(evidence, _settings(rules))
    assert [(r.name, r.state, r.pairs) for r in report.accepted] == [
        ("expired", "expired", 0),
        ("stale", "stale", 0),
    ]
    gates = {g.name: g for g in report.gates}
    assert gates["error handling"].checks[0].measured.startswith("100.0 %")


def test_a_rule_that_would_hide_an_sdk_outage_is_refused() -> None:
    outage = {
        "name": "hide-502",
        "status": {"sdk": 502, "legacy": 200},
        "category": "status",
        "reason": "we do not care",
    }
    with pytest.raises(ValueError, match=r"refused: it would hide an SDK failure.*502"):
        parse_rules([outage])
    with pytest.raises(ValueError, match="refused"):
        parse_rules([{**outage, "status": {"sdk": [400, 504]}}])  # any legacy answer
    # Both sides failing outright hides nothing legacy served.
    assert parse_rules([{**outage, "status": {"sdk": 502, "legacy": 503}}])
    # A broad rule (no status pair) is never applied to a pair where the SDK failed.
    broad = {
        "name": "broad",
        "category": [
            "status",
            "error_type",
            "schema",
            "other",
            "content",
            "type_change",
            "finish_reason",
            "usage",
            "model",
            "headers",
        ],
        "reason": "too broad",
    }
    evidence = _collect([broad], [_outage("outage-1")]).evidence
    hits = evidence.accepted.rules[0]
    assert (hits.pairs, hits.refused, hits.refused_examples) == (0, 1, ["outage-1"])
    assert evidence.diffs["messages"].categories["status"] == 1
    report = build_report(evidence, _settings([broad]))
    assert report.accepted[0].state == "refused"
    assert report.sdk_worse and report.sdk_worse[0].pairs == 1


def test_the_harness_config_checks_rules(tmp_path: Path) -> None:
    path = tmp_path / "harness.yaml"
    path.write_text("compare:\n  accept:\n    - name: x\n      category: status\n")
    with pytest.raises(ConfigError, match=r"compare\.accept\[0\]: a rule needs a reason"):
        load_harness_settings(path)
    path.write_text(
        "compare:\n  accept:\n    - {category: status, status: {sdk: 500}, reason: r}\n"
    )
    with pytest.raises(ConfigError, match="refused"):
        load_harness_settings(path)
    path.write_text("compare:\n  accept:\n    - {category: nonsense, reason: r}\n")
    with pytest.raises(ConfigError, match="unknown"):
        load_harness_settings(path)
    path.write_text(
        "compare:\n  ignore: []\n  accept:\n"
        "    - {name: a, path: 'upstream[*].headers.x-sm-user-id', reason: r, "
        "expires: 2027-01-31}\n"
    )
    (rule,) = load_harness_settings(path).compare.accept
    assert rule.expires == date(2027, 1, 31)


def test_the_shipped_harness_config_reads() -> None:
    from harness.paths import HARNESS_CONFIG

    assert load_harness_settings(HARNESS_CONFIG).compare.accept == ()
    assert Status.PASS  # the report's vocabulary is importable beside the rules


def test_the_shipped_accepted_differences_are_documented() -> None:
    from harness.paths import CONFIG_DIR, REPO_ROOT
    from harness.settings import load_accept_file

    rules = load_accept_file(CONFIG_DIR / "accepted-differences.yaml")
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert [r.name for r in rules] == [
        "unknown-model-404",
        "client-credentials-refused",
        "model-list-from-config",
        "local-token-count",
        "request-checked-locally",
        "openai-error-code",
        "litellm-usage-cost",
        "invalid-json-error-shape",
    ]
    for rule in rules:
        assert f"| `{rule.name}` |" in readme, f"{rule.name} is not documented in the README"
        assert rule.reason and rule.owner and rule.expires is None
