"""Folding captured pairs into :class:`~harness.report.tally.Evidence` (pure, no I/O).

Each pair is compared once (SDK vs legacy, whichever side answered the client) and, when
it carries a ``shadow_repeat``, once more legacy vs legacy for the A/A noise baseline;
then only counts, latency samples and a few redacted examples are kept. A pair where
legacy failed outright and the SDK succeeded (:mod:`harness.report.outcomes`) is counted
apart instead of compared; its A/A repeat, latency and upstream calls count as always.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from harness.compare import Comparator, Difference, Verdict
from harness.observation import CapturedPair, Observation
from harness.redaction import Redactor
from harness.report.outcomes import Direction, direction, oriented, outcome_label
from harness.report.tally import (
    MAX_EXAMPLES,
    DiffTally,
    Evidence,
    Example,
    LatencySlice,
    RoutingTally,
    RunInfo,
)
from harness.report.upstream_facts import routing_difference, upstream_calls

__all__ = ["EXAMPLE_CHARS", "EvidenceCollector", "is_error_pair"]

EXAMPLE_CHARS = 240  # an example value longer than this is cut: reports stay readable
_INDEX = re.compile(r"\[\d+\]")


def is_error_pair(pair: CapturedPair) -> bool:
    """An error exchange: either side answered >= 400 or not at all."""
    sides = [pair.primary] if pair.shadow is None else [pair.primary, pair.shadow]
    return any(o.status is None or o.status >= 400 for o in sides)


def _ok(observation: Observation | None) -> bool:
    return (
        observation is not None
        and observation.status is not None
        and 200 <= observation.status < 400
        and observation.error is None
    )


def _error_text(observation: Observation) -> str:
    """The failing side's own words: its error message, else its error class."""
    body = observation.body
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    if isinstance(body, str) and body.strip():
        return body.strip()
    return observation.error or ""


def _terminated(observation: Observation) -> bool:
    for event in observation.events or ():
        if event.event == "message_stop" or event.data.strip() == "[DONE]":
            return True
        if '"message_stop"' in event.data:
            return True
    return False


class EvidenceCollector:
    """Accumulates evidence pair by pair; ``evidence`` is the running result."""

    def __init__(
        self, comparator: Comparator, run: RunInfo, redactor: Redactor | None = None
    ) -> None:
        self.comparator = comparator
        self.redactor = redactor or Redactor()
        self.evidence = Evidence(run)

    def add(self, pair: CapturedPair) -> None:
        e = self.evidence
        request = pair.request
        e.pairs += 1
        received = request.received_at
        if e.first_received is None or received < e.first_received:
            e.first_received = received
        if e.last_received is None or received > e.last_received:
            e.last_received = received
        e.primaries[pair.primary.target] += 1
        e.endpoint_pairs[request.endpoint] += 1
        e.family_pairs[request.client_family] += 1
        if pair.shadow is not None:
            e.mirrored += 1
        sdk_is_primary = pair.primary.target == "sdk"
        error_pair = is_error_pair(pair)

        shift = direction(pair)
        if shift is Direction.SDK_BETTER:
            self._outcome(shift, pair)
        else:
            verdict = self.comparator.compare(pair)
            if verdict.skipped is None:
                diffs = e.diffs.setdefault(request.endpoint, DiffTally())
                self._tally(diffs, verdict, sdk_is_primary)
                self._tally(e.families.setdefault(request.client_family, DiffTally()), verdict)
                if request.stream:
                    self._tally(e.stream_diffs, verdict)
                if error_pair:
                    self._tally(e.error_diffs, verdict)
            if shift is Direction.SDK_WORSE:
                self._outcome(shift, pair)

        noise = self._repeat(pair)
        if noise is not None:
            self._tally(e.noise.setdefault(request.endpoint, DiffTally()), noise)
            if request.stream:
                self._tally(e.stream_noise, noise)
            if error_pair:
                self._tally(e.error_noise, noise)

        self._latency(pair)
        self._stream_ending(pair)
        self._upstream(pair)

    def _repeat(self, pair: CapturedPair) -> Verdict | None:
        """Legacy against legacy: whichever side the legacy proxy was, and its repeat.

        (``Comparator.compare_repeat`` compares shadow and repeat, which is A/A only when
        the shadow is the legacy proxy.)
        """
        if pair.shadow is None or pair.shadow_repeat is None:
            return None
        legacy = pair.shadow if pair.primary.target == "sdk" else pair.primary
        request = pair.request
        return self.comparator.compare_observations(
            request.request_id, request.endpoint, request.stream, legacy, pair.shadow_repeat
        )

    def _tally(
        self, tally: DiffTally, verdict: Verdict, sdk_is_primary: bool | None = None
    ) -> None:
        """Count the verdict; keep examples when the orientation is given."""
        tally.compared += 1
        if not verdict.differences:
            return
        tally.categories.update({d.category for d in verdict.differences})
        seen: dict[str, Difference] = {}
        for difference in verdict.differences:
            seen.setdefault(_INDEX.sub("[*]", difference.path), difference)
        tally.fields.update(seen.keys())
        for key, difference in seen.items():
            tally.field_category.setdefault(key, difference.category)
            if sdk_is_primary is None:
                continue
            examples = tally.examples.setdefault(key, [])
            if len(examples) >= MAX_EXAMPLES:
                continue
            sdk, legacy = difference.primary, difference.candidate
            if not sdk_is_primary:
                sdk, legacy = legacy, sdk
            examples.append(
                Example(
                    verdict.pair_id,
                    difference.path,
                    self._show(sdk),
                    self._show(legacy),
                    difference.detail,
                )
            )

    def _outcome(self, shift: Direction, pair: CapturedPair) -> None:
        """Count a pair where one side failed outright: how it failed, and an example."""
        answers = oriented(pair)
        if answers is None:  # a direction needs both answers
            return
        sdk, legacy = answers
        e, request = self.evidence, pair.request
        if shift is Direction.SDK_BETTER:
            tally, failing = e.sdk_better, legacy
        else:
            tally, failing = e.sdk_worse, sdk
        tally.endpoints[request.endpoint] += 1
        tally.families[request.client_family] += 1
        label = outcome_label(failing)
        tally.failures.setdefault(request.endpoint, Counter())[label] += 1
        if request.stream:
            tally.stream_failures[label] += 1
        examples = tally.examples.setdefault(request.endpoint, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(
                Example(
                    request.request_id,
                    "status",
                    outcome_label(sdk),
                    outcome_label(legacy),
                    self._show(_error_text(failing)),
                )
            )

    def _show(self, value: Any) -> str:
        value = self.redactor.redact(value)
        if isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"

    def _latency(self, pair: CapturedPair) -> None:
        request = pair.request
        key = (request.endpoint, request.stream)
        for observation in (pair.primary, pair.shadow):
            if observation is None or not _ok(observation) or observation.total_ms is None:
                continue
            latency = self.evidence.latency.get(key)
            if latency is None:
                latency = self.evidence.latency[key] = LatencySlice(*key)
            latency.total.setdefault(observation.target, []).append(observation.total_ms)
            if request.stream and observation.ttft_ms is not None:
                latency.ttft.setdefault(observation.target, []).append(observation.ttft_ms)

    def _stream_ending(self, pair: CapturedPair) -> None:
        sdk = pair.primary if pair.primary.target == "sdk" else pair.shadow
        if sdk is None or not sdk.is_stream or not _ok(sdk) or sdk.truncated:
            return
        endings = self.evidence.stream_endings
        endings.streams += 1
        if not _terminated(sdk):
            endings.unterminated += 1
            if len(endings.examples) < MAX_EXAMPLES:
                endings.examples.append(pair.request.request_id)

    def _upstream(self, pair: CapturedPair) -> None:
        if not pair.upstream:
            return
        request_id = pair.request.request_id
        for target, calls in pair.upstream.items():
            if isinstance(calls, list):
                found = upstream_calls(request_id, calls)
                self.evidence.upstream_calls.setdefault(target, []).extend(found)
        sdk_calls, legacy_calls = pair.upstream.get("sdk"), pair.upstream.get("legacy")
        if not sdk_calls or not legacy_calls:
            return
        routing = self.evidence.routing.setdefault(pair.request.client_family, RoutingTally())
        routing.compared += 1
        difference, missing_user = routing_difference(request_id, sdk_calls, legacy_calls)
        routing.missing_user += missing_user
        if difference is not None:
            routing.mismatched += 1
            if len(routing.examples) < MAX_EXAMPLES:
                routing.examples.append(difference)
