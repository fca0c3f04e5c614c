"""What a gateway owes its clients, read off one pair: a fact per contract point. Pure.

Each point is checked on both proxies' answers to the same request:

- ``header <name>``: the provider's response header reached the client (rate-limit
  state, request id, ``x-should-retry``...). Only the headers of the provider family that
  served the request (known from the sandbox's captured upstream call) are asked for.
- ``provider error verbatim``: when the provider answered an error, the client got its
  status and the provider's request id (in Anthropic's body or a request-id header), not
  a re-wrapped envelope.
- ``keep-alive in silent gaps``: an Anthropic-format stream had no silence between two
  events longer than the keep-alive bound (its ``ping`` events count). OpenAI's
  keep-alive is an SSE comment, which captures do not keep: not judged.
- ``models: no wildcard ids``: ``/v1/models`` lists no route pattern (``claude-*``) as a
  model id.

A fact is True (kept), False (missed) or absent (the point does not apply to that pair).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from harness.observation import CapturedPair, Observation

__all__ = [
    "CONTRACT_HEADERS",
    "ERROR_VERBATIM",
    "KEEPALIVE",
    "MODELS_NO_WILDCARDS",
    "contract_facts",
]

# Provider family (the sandbox endpoint's prefix) -> the headers its clients read.
CONTRACT_HEADERS: Mapping[str, tuple[str, ...]] = {
    "anthropic": (
        "anthropic-ratelimit-unified-status",
        "anthropic-ratelimit-unified-reset",
        "request-id",
    ),
    "openai": ("x-ratelimit-remaining-requests", "openai-processing-ms", "x-request-id"),
}
ERROR_VERBATIM = "provider error verbatim"
KEEPALIVE = "keep-alive in silent gaps"
MODELS_NO_WILDCARDS = "models: no wildcard ids"
# Claude Code's stall banner shows well before it drops a stream; the proxy's default
# keep-alive interval is 10 s, so a gap past this means no keep-alive was sent.
KEEPALIVE_BOUND_MS = 15_000.0


def contract_facts(pair: CapturedPair) -> dict[str, tuple[bool | None, bool | None]]:
    """Point -> (SDK kept it, legacy kept it); a side is None where the point does not
    apply to its answer. Only points that apply to at least one side are returned."""
    sdk, legacy = pair.sdk, pair.legacy
    if sdk is None or legacy is None:
        return {}
    facts: dict[str, tuple[bool | None, bool | None]] = {}
    family = _provider_family(pair.upstream.get("sdk") or pair.upstream.get("legacy") or [])
    if family is not None and _answered(sdk) and _answered(legacy):
        for name in CONTRACT_HEADERS[family]:
            facts[f"header {name}"] = (name in sdk.headers, name in legacy.headers)
    verbatim = (
        _verbatim_error(sdk, pair.upstream.get("sdk")),
        _verbatim_error(legacy, pair.upstream.get("legacy")),
    )
    if verbatim != (None, None):
        facts[ERROR_VERBATIM] = verbatim
    if pair.request.endpoint == "messages" and sdk.is_stream and legacy.is_stream:
        facts[KEEPALIVE] = (_no_long_gap(sdk), _no_long_gap(legacy))
    if pair.request.endpoint == "models" and sdk.status == 200 and legacy.status == 200:
        facts[MODELS_NO_WILDCARDS] = (_no_wildcards(sdk.body), _no_wildcards(legacy.body))
    return facts


def _answered(observation: Observation) -> bool:
    return observation.status is not None


def _provider_family(calls: Sequence[Any]) -> str | None:
    for call in calls:
        endpoint = call.get("endpoint") if isinstance(call, Mapping) else None
        if isinstance(endpoint, str):
            family = endpoint.split(".", 1)[0]
            if family in CONTRACT_HEADERS:
                return family
    return None


def _verbatim_error(observation: Observation, calls: Sequence[Any] | None) -> bool | None:
    """None unless the provider's last answer here was an error."""
    last = calls[-1] if calls else None
    if not isinstance(last, Mapping):
        return None
    status = last.get("status")
    if not isinstance(status, int) or status < 400:
        return None
    if observation.status != status:
        return False
    provider_id = last.get("request_id")
    if not isinstance(provider_id, str):
        return True
    headers = observation.headers
    if provider_id in (headers.get("request-id"), headers.get("x-request-id")):
        return True
    body = observation.body
    text = body if isinstance(body, str) else json.dumps(body)
    return provider_id in text


def _no_long_gap(observation: Observation) -> bool:
    offsets = [event.offset_ms for event in observation.events or ()]
    return all(b - a <= KEEPALIVE_BOUND_MS for a, b in zip(offsets, offsets[1:], strict=False))


def _no_wildcards(body: Any) -> bool:
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, list):
        return True
    return not any("*" in str(entry.get("id", "")) for entry in data if isinstance(entry, Mapping))
