"""Folding captured pairs into :class:`~harness.report.tally.Evidence` (pure, no I/O).

Each pair is compared once (SDK vs legacy, whichever side answered the client) and, when
it carries a ``legacy_repeat``, once more legacy vs legacy for the A/A noise baseline;
then only counts, bounded latency samples, the cookie gate's bounded window of upstream
calls and a few redacted examples are kept: the evidence stops growing with the pairs. A pair where
legacy failed outright and the SDK succeeded (:mod:`harness.report.outcomes`) is counted
apart instead of compared; its A/A repeat, latency and upstream calls count as always.

A pair is judged first (every comparison, everything that reads the answers' content),
then counted: nothing is counted until the judging is done, so a pair counts whole or not
at all. :meth:`EvidenceCollector.add_row` is the one place a row that cannot be judged is
caught: it, and a row the store could not read, is counted as uncomparable (row id and
reason, never content) instead of ending the report.
"""

from __future__ import annotations

import dataclasses
import json
import re
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any

from harness.compare import Comparator, Difference, Verdict
from harness.compare.accept import Acceptance, AcceptRules, PairFacts
from harness.observation import CapturedPair, Observation
from harness.redaction import Redactor
from harness.report.client_contract import contract_facts
from harness.report.cookie_tally import CookieTally
from harness.report.outcomes import Direction, direction, outcome_label
from harness.report.reservoir import Reservoir
from harness.report.tally import (
    MAX_EXAMPLES,
    ContractPoint,
    DiffTally,
    Evidence,
    Example,
    InstanceTally,
    LatencySlice,
    RoutingTally,
    RunInfo,
    UpstreamCall,
)
from harness.report.upstream_facts import (
    call_count_difference,
    routing_difference,
    uncalled_success,
    upstream_calls,
)
from harness.sse import format_of
from harness.store.capture_store import StoredPair, UnreadableRow
from harness.usage import usage_tokens

__all__ = [
    "EXAMPLE_CHARS",
    "EvidenceCollector",
    "comparison_failure",
    "is_error_pair",
    "pair_facts",
    "sdk_failed",
]

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


def comparison_failure(exc: BaseException) -> str:
    """Why a pair could not be compared, for the report: the exception's class and the
    function that raised it. Not its message: that may quote the pair's content."""
    named = [f.name for f in traceback.extract_tb(exc.__traceback__) if not f.name.startswith("<")]
    where = f" in {named[-1]}" if named else ""
    return f"comparison failed: {type(exc).__name__}{where}"


def _fields(verdict: Verdict) -> dict[str, Difference]:
    """The verdict's first difference per field path (list indices generalized)."""
    seen: dict[str, Difference] = {}
    for difference in verdict.differences:
        seen.setdefault(_INDEX.sub("[*]", difference.path), difference)
    return seen


@dataclass(frozen=True)
class _Judged:
    """What judging one pair found, before any of it is counted."""

    shift: Direction | None
    verdict: Verdict | None  # None: set apart (legacy failed outright, the SDK succeeded)
    examples: dict[str, Example]  # field -> the verdict's example, where one is still wanted
    outcome: Example | None  # the outright failure's example, when one side failed
    noise: Verdict | None  # the A/A comparison, when the pair has a repeat
    upstream: dict[str, list[UpstreamCall]]  # target -> the calls it sent upstream
    routing: tuple[Example | None, bool] | None  # when both targets' calls were captured
    # Live pairs whose mirror side's provider calls were recorded: did every one carry
    # the live suffix on its memory user id?
    isolated: bool | None
    contract: dict[str, tuple[bool | None, bool | None]]  # point -> (sdk, legacy) kept
    # When both sides' calls are known: (calls per request differ?, the example).
    call_count: tuple[bool, Example | None] | None
    # When both sides' calls were compared: differing field (generalized) -> example.
    parity: dict[str, Example] | None
    acceptance: Acceptance | None = None  # what the accept rules took, when any applied
    # Live pairs: the tokens the mirror side's answers say they used (read from captured
    # answers, so it may raise: read here, counted in ``_count``).
    live_tokens: int = 0


def _both_answered(pair: CapturedPair) -> bool:
    """Both proxies answered (any status): each side's provider calls are complete. A
    side cut by a timeout or a broken connection may not have made all of its calls."""
    sdk, legacy = pair.sdk, pair.legacy
    return (
        sdk is not None
        and legacy is not None
        and sdk.error is None
        and legacy.error is None
        and sdk.status is not None
        and legacy.status is not None
    )


def _terminated(observation: Observation) -> bool:
    for event in observation.events or ():
        if event.event == "message_stop" or event.data.strip() == "[DONE]":
            return True
        if '"message_stop"' in event.data:
            return True
    return False


def sdk_failed(pair: CapturedPair, shift: Direction | None) -> bool:
    """The SDK failed where legacy succeeded: outright (5xx, 408, 429, no answer), or a
    stream legacy ended and the SDK's did not. No accept rule may hide such a pair."""
    if shift is Direction.SDK_WORSE:
        return True
    sdk, legacy = pair.sdk, pair.legacy
    if sdk is None or legacy is None or not sdk.is_stream or not legacy.is_stream:
        return False
    return not sdk.truncated and _terminated(legacy) and not _terminated(sdk)


def _error_message(answer: Observation | None) -> str | None:
    """``error.message`` of an answer in either API's error shape, else None."""
    body = answer.body if answer is not None else None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None


def pair_facts(pair: CapturedPair, shift: Direction | None) -> PairFacts:
    """What the accept rules match a pair on, besides its differences."""
    request, sdk, legacy = pair.request, pair.sdk, pair.legacy
    body = request.body
    return PairFacts(
        endpoint=request.endpoint,
        model=request.model,
        family=request.client_family,
        sdk_status=sdk.status if sdk is not None else None,
        legacy_status=legacy.status if legacy is not None else None,
        request_keys=frozenset(str(k) for k in body) if isinstance(body, dict) else frozenset(),
        sdk_error=_error_message(sdk),
        sdk_failed=sdk_failed(pair, shift),
    )


def _kept(samples: dict[str, Reservoir], target: str) -> Reservoir:
    """``target``'s reservoir, made at its first value (not one per pair, discarded)."""
    found = samples.get(target)
    if found is None:
        found = samples[target] = Reservoir()
    return found


class EvidenceCollector:
    """Accumulates evidence pair by pair; ``evidence`` is the running result."""

    def __init__(
        self,
        comparator: Comparator,
        run: RunInfo,
        redactor: Redactor | None = None,
        accept: AcceptRules | None = None,
        live_suffix: str = "",
    ) -> None:
        """``live_suffix``: ``shadow.live_suffix``, what live mirroring appends to the
        mirror side's memory ids; the routing gate takes it off before comparing."""
        self.comparator = comparator
        self.redactor = redactor or Redactor()
        self.accept = accept
        self.live_suffix = live_suffix
        self.evidence = Evidence(run)

    def add_row(self, row: StoredPair | UnreadableRow) -> None:
        """Fold one store row in; one that cannot be read or compared is counted and listed
        as uncomparable instead. The one place a pair's failure is caught."""
        if isinstance(row, UnreadableRow):
            self.evidence.uncomparable.add(row.id, row.reason)
            return
        try:
            judged = self._judge(row.pair)
        except Exception as exc:  # whatever the pair made the comparison raise
            self.evidence.uncomparable.add(row.id, comparison_failure(exc))
            return
        self._count(row.pair, judged, row.instance)

    def add(self, pair: CapturedPair) -> None:
        """Fold one pair in; raises, having counted nothing, when it cannot be compared."""
        self._count(pair, self._judge(pair))

    def _judge(self, pair: CapturedPair) -> _Judged:
        """Every comparison and every value read for the examples: may raise, counts nothing."""
        shift = direction(pair)
        verdict = None if shift is Direction.SDK_BETTER else self.comparator.compare(pair)
        acceptance = None
        if self.accept and verdict is not None and verdict.skipped is None:
            acceptance = self.accept.apply(verdict.differences, pair_facts(pair, shift))
            verdict = dataclasses.replace(verdict, differences=acceptance.kept)
        examples: dict[str, Example] = {}
        if verdict is not None and verdict.skipped is None:
            examples = self._examples(pair, verdict)
        outcome = self._outcome_example(shift, pair) if shift is not None else None
        upstream: dict[str, list[UpstreamCall]] = {}
        routing = None
        call_count = None
        parity = None
        isolated = None
        if pair.upstream:
            request_id = pair.request.request_id
            for target, calls in pair.upstream.items():
                upstream[target] = upstream_calls(request_id, calls)
            # Live mode: the mirror side's memory ids carry the suffix (its own namespace).
            suffixes = {}
            if pair.upstream_mode == "live" and pair.shadow is not None and self.live_suffix:
                suffixes[pair.shadow.target] = self.live_suffix
                mirror_calls = pair.upstream.get(pair.shadow.target)
                if mirror_calls:
                    isolated = all(
                        str(headers.get("x-sm-user-id", "")).endswith(self.live_suffix)
                        for call in mirror_calls
                        if isinstance(call, dict)
                        for headers in (call.get("headers") or {},)
                    )
            sdk_calls, legacy_calls = pair.upstream.get("sdk"), pair.upstream.get("legacy")
            if sdk_calls:
                # The SDK side's calls are judged even when legacy's are missing: a call
                # without x-sm-user-id fails memory routing on its own.
                routing = routing_difference(request_id, sdk_calls, legacy_calls or [], suffixes)
            # A pair set apart (legacy failed outright) is not compared, here either.
            counted = verdict is not None and _both_answered(pair)
            if counted and sdk_calls is not None and legacy_calls is not None:
                found = call_count_difference(request_id, sdk_calls, legacy_calls)
                call_count = (found is not None, found)
                if verdict is not None and verdict.skipped is None:
                    parity = {
                        key: self._example(verdict.pair_id, d)
                        for key, d in _fields(verdict).items()
                        if d.category == "upstream"
                    }
            elif shift is Direction.SDK_BETTER and sdk_calls is not None:
                made_up = uncalled_success(
                    request_id,
                    pair.request.endpoint,
                    pair.sdk.status if pair.sdk is not None else None,
                    sdk_calls,
                )
                if made_up is not None:
                    call_count = (True, made_up)
        if routing is not None and routing[0] is not None and acceptance is not None:
            # The routing gate reads the same upstream difference the verdict holds: a
            # rule that accepted it there accepts it here.
            if routing[0].path in {d.path for _, d in acceptance.accepted}:
                routing = (None, routing[1])
        noise = self.comparator.compare_repeat(pair)
        contract = contract_facts(pair)
        live_tokens = 0
        if pair.upstream_mode == "live":
            fmt = format_of(pair.request.endpoint)
            live_tokens = sum(usage_tokens(a, fmt) for a in (pair.shadow, pair.shadow_repeat))
        return _Judged(
            shift,
            verdict,
            examples,
            outcome,
            noise,
            upstream,
            routing,
            isolated,
            contract,
            call_count,
            parity,
            acceptance,
            live_tokens,
        )

    def _live_spend(self, pair: CapturedPair, judged: _Judged) -> None:
        live = self.evidence.live
        live.pairs += 1
        live.requests += sum(a is not None for a in (pair.shadow, pair.shadow_repeat))
        live.tokens += judged.live_tokens
        if judged.isolated is not None:
            live.checked += 1
            live.isolated += judged.isolated

    def _count(self, pair: CapturedPair, judged: _Judged, instance: str | None = None) -> None:
        """Count a judged pair (reads only its typed metadata and what judging found)."""
        e = self.evidence
        request = pair.request
        e.pairs += 1
        received = request.received_at
        if e.first_received is None or received < e.first_received:
            e.first_received = received
        if e.last_received is None or received > e.last_received:
            e.last_received = received
        e.primaries[pair.primary.target] += 1
        e.upstream_modes[pair.upstream_mode] += 1
        if pair.upstream_mode == "replay" and not pair.upstream.get(pair.primary.target):
            e.replay_unrecorded += 1
        e.endpoint_pairs[request.endpoint] += 1
        e.family_pairs[request.client_family] += 1
        if pair.shadow is not None:
            e.mirrored += 1
            if pair.upstream_mode == "live":
                self._live_spend(pair, judged)
        else:
            e.not_mirrored[pair.mirror_outcome] += 1
        error_pair = is_error_pair(pair)

        verdict = judged.verdict
        if verdict is not None and verdict.skipped is None:
            diffs = e.diffs.setdefault(request.endpoint, DiffTally())
            self._tally(diffs, verdict, judged.examples)
            self._tally(e.families.setdefault(request.client_family, DiffTally()), verdict)
            if request.stream:
                self._tally(e.stream_diffs, verdict)
            if error_pair:
                self._tally(e.error_diffs, verdict)
        if judged.shift is not None:
            self._outcome(judged.shift, pair, judged.outcome)
        acceptance = judged.acceptance
        if acceptance is not None and (acceptance.accepted or acceptance.refused):
            e.accepted.add(
                request.request_id,
                [index for index, _ in acceptance.accepted],
                acceptance.refused,
                len(acceptance.kept),
            )
        if instance is not None:
            share = e.instances.setdefault(instance, InstanceTally())
            share.pairs += 1
            share.families[request.client_family] += 1
            if verdict is not None and verdict.skipped is None:
                share.compared += 1
                share.differing += bool(verdict.differences)

        noise = judged.noise
        if noise is not None:
            self._tally(e.noise.setdefault(request.endpoint, DiffTally()), noise)
            if request.stream:
                self._tally(e.stream_noise, noise)
            if error_pair:
                self._tally(e.error_noise, noise)

        self._latency(pair)
        self._stream_ending(pair)
        self._upstream(pair, judged)
        for point, (sdk, legacy) in judged.contract.items():
            e.contract.setdefault(point, ContractPoint()).add(sdk, legacy, request.request_id)

    def _examples(self, pair: CapturedPair, verdict: Verdict) -> dict[str, Example]:
        """The verdict's examples, SDK vs legacy, for the fields still short of examples.

        ``Comparator.compare`` puts the SDK's value first, whichever answered the client.
        """
        tally = self.evidence.diffs.get(pair.request.endpoint)
        out = {}
        for key, difference in _fields(verdict).items():
            if tally is not None and len(tally.examples.get(key, ())) >= MAX_EXAMPLES:
                continue
            out[key] = self._example(verdict.pair_id, difference)
        return out

    def _example(self, pair_id: str, difference: Difference) -> Example:
        return Example(
            pair_id,
            difference.path,
            self._show(difference.primary),
            self._show(difference.candidate),
            difference.detail,
        )

    def _tally(
        self, tally: DiffTally, verdict: Verdict, examples: dict[str, Example] | None = None
    ) -> None:
        """Count the verdict; keep the examples given."""
        tally.compared += 1
        if not verdict.differences:
            return
        tally.categories.update({d.category for d in verdict.differences})
        seen = _fields(verdict)
        tally.fields.update(seen.keys())
        for key, difference in seen.items():
            tally.field_category.setdefault(key, difference.category)
        for key, example in (examples or {}).items():
            kept = tally.examples.setdefault(key, [])
            if len(kept) < MAX_EXAMPLES:
                kept.append(example)

    def _outcome_example(self, shift: Direction, pair: CapturedPair) -> Example | None:
        sdk, legacy = pair.sdk, pair.legacy
        if sdk is None or legacy is None:  # a direction needs both answers
            return None
        failing = legacy if shift is Direction.SDK_BETTER else sdk
        return Example(
            pair.request.request_id,
            "status",
            outcome_label(sdk),
            outcome_label(legacy),
            self._show(_error_text(failing)),
        )

    def _outcome(self, shift: Direction, pair: CapturedPair, example: Example | None) -> None:
        """Count a pair where one side failed outright: how it failed, and an example."""
        sdk, legacy = pair.sdk, pair.legacy
        if sdk is None or legacy is None or example is None:
            return
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
            examples.append(example)

    def _show(self, value: Any) -> str:
        value = self.redactor.redact(value)
        if isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"

    def _latency(self, pair: CapturedPair) -> None:
        """Both sides' timings, taken the same way where the pair has a latency twin: the
        twin (the primary's build on the replay upstream) and the mirror, sent the request
        at the same moment by the same client, each answered with the primary's provider
        answers at the primary's pace (:mod:`harness.shadow.engine` says why the primary's
        own timing cannot be compared with the mirror's). Without one (live mode, a
        legacy primary, stores from before the twin), the primary's in-server timing is
        used, and the pair is counted as timed "as served"."""
        request = pair.request
        key = (request.endpoint, request.stream)
        alike = pair.latency_twin is not None and pair.shadow is not None
        sides = (pair.latency_twin if alike else pair.primary, pair.shadow)
        timed = [o for o in sides if o is not None and _ok(o) and o.total_ms is not None]
        if not timed:
            return
        latency = self.evidence.latency.get(key)
        if latency is None:
            latency = self.evidence.latency[key] = LatencySlice(*key)
        for observation in timed:
            assert observation.total_ms is not None
            _kept(latency.total, observation.target).add(observation.total_ms)
            if request.stream and observation.ttft_ms is not None:
                _kept(latency.ttft, observation.target).add(observation.ttft_ms)
        self.evidence.latency_timing["alike" if alike else "as served"] += 1
        if alike and len(timed) == 2:
            # Timed at the same moment: load common to both cancels in the difference.
            sdk, legacy = sorted(timed, key=lambda o: o.target != "sdk")
            assert sdk.total_ms is not None and legacy.total_ms is not None
            latency.paired_total.add(sdk.total_ms - legacy.total_ms)
            latency.paired_sides.add((sdk.total_ms, legacy.total_ms))
            if request.stream and sdk.ttft_ms is not None and legacy.ttft_ms is not None:
                latency.paired_ttft.add(sdk.ttft_ms - legacy.ttft_ms)

    def _stream_ending(self, pair: CapturedPair) -> None:
        sdk = pair.sdk
        if sdk is None or not sdk.is_stream or not _ok(sdk) or sdk.truncated:
            return
        endings = self.evidence.stream_endings
        endings.streams += 1
        if not _terminated(sdk):
            endings.unterminated += 1
            if len(endings.examples) < MAX_EXAMPLES:
                endings.examples.append(pair.request.request_id)

    def _upstream(self, pair: CapturedPair, judged: _Judged) -> None:
        for target, found in judged.upstream.items():
            cookies = self.evidence.upstream_calls.get(target)
            if cookies is None:
                cookies = self.evidence.upstream_calls[target] = CookieTally()
            for call in found:
                cookies.add(call)
        calls = self.evidence.provider_calls
        if judged.call_count is not None:
            calls.counted += 1
            differs, example = judged.call_count
            if differs:
                calls.count_mismatched += 1
                if example is not None and len(calls.count_examples) < MAX_EXAMPLES:
                    calls.count_examples.append(example)
        if judged.parity is not None:
            calls.parity_compared += 1
            if judged.parity:
                calls.parity_differing += 1
            calls.parity_fields.update(judged.parity.keys())
            for key, example in judged.parity.items():
                kept = calls.parity_examples.setdefault(key, [])
                if len(kept) < MAX_EXAMPLES:
                    kept.append(example)
        if judged.routing is None:
            return
        routing = self.evidence.routing.setdefault(pair.request.client_family, RoutingTally())
        routing.compared += 1
        difference, missing_user = judged.routing
        routing.missing_user += missing_user
        if difference is not None:
            routing.mismatched += 1
            if len(routing.examples) < MAX_EXAMPLES:
                routing.examples.append(difference)
