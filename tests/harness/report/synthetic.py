"""Synthetic capture stores for the report's tests: deterministic, any size, three moods.

``go``: every gate has enough clean evidence. ``nogo``: chat content and a messages tool
call regress, one client family is routed differently, chat streams are slower on the
SDK, the SDK proxy's memory grows; legacy fails outright now and then where the SDK
answers (set apart, not a regression), and the SDK fails outright a few times where
legacy answers (a regression, shown first). ``inconclusive``: a handful of clean pairs,
no load runs, no process samples.

Answers come from the sandbox's own renderers (:mod:`tests.harness.builders`) and are
built once per kind; each pair then only gets its own ids, timings and upstream calls.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from harness.observation import CapturedPair, CapturedRequest, Observation
from harness.redaction import Redactor
from harness.store.capture_store import CaptureStore, ProcessSample
from tests.harness.builders import chat_observation, messages_observation, reply

__all__ = ["BASE_TIME", "FAMILIES", "SLOTS", "build_store", "synthetic_pairs"]

BASE_TIME = 1_767_225_600.0  # 2026-01-01T00:00:00Z
FAMILIES = ("claude-code", "anthropic-sdk", "openai-sdk", "jetbrains", "curl")
# (endpoint, stream): every pair index falls in one slot, in turn
SLOTS = (
    ("chat", False),
    ("chat", True),
    ("messages", False),
    ("messages", True),
    ("count_tokens", False),
    ("models", False),
    ("health", False),
)
_PATHS = {
    "chat": "/v1/chat/completions",
    "messages": "/v1/messages",
    "count_tokens": "/v1/messages/count_tokens",
    "models": "/v1/models",
    "health": "/health",
}
_UPSTREAM = frozenset({"chat", "messages", "count_tokens"})
_ALIAS = "claude-sonnet-4.5"
_OTHER_TEXT = "a rather different answer about something else entirely, nothing alike at all"


@dataclass(frozen=True)
class _Answers:
    sdk: Observation
    legacy: Observation
    sdk_changed: Observation  # a content regression
    legacy_noisy: Observation  # legacy differing from itself (A/A noise)


def _json(target: str, body: Any, status: int = 200) -> Observation:
    return Observation(target, status, {"content-type": "application/json"}, body=body)


def _answers(endpoint: str, stream: bool) -> _Answers:
    if endpoint == "chat":
        sdk = chat_observation(reply(token="Sdk0001"), stream=stream)
        legacy = chat_observation(
            reply(token="Leg0001"), target="legacy", model=_ALIAS, stream=stream
        )
        changed = chat_observation(reply(_OTHER_TEXT, token="Sdk0001"), stream=stream)
        noisy = chat_observation(
            reply(_OTHER_TEXT, token="Leg0002"), target="legacy", model=_ALIAS, stream=stream
        )
        return _Answers(sdk, legacy, changed, noisy)
    if endpoint == "messages":
        sdk = messages_observation(reply(token="Sdk0001"), stream=stream)
        legacy = messages_observation(
            reply(token="Leg0001"), target="legacy", model=_ALIAS, stream=stream
        )
        changed = messages_observation(
            reply(token="Sdk0001", tool=("get_weather", {"city": "Paris"})), stream=stream
        )
        noisy = messages_observation(
            reply(_OTHER_TEXT, token="Leg0002"), target="legacy", model=_ALIAS, stream=stream
        )
        return _Answers(sdk, legacy, changed, noisy)
    if endpoint == "count_tokens":
        bodies: tuple[Any, Any] = ({"input_tokens": 21}, {"input_tokens": 22})
    elif endpoint == "models":
        model = {"id": _ALIAS, "object": "model", "created": 1, "owned_by": "openai"}
        bodies = (
            {"object": "list", "data": [model]},
            {"object": "list", "data": [{**model, "id": "gpt-4o"}]},
        )
    else:
        bodies = ({"status": "ok"}, {"status": "degraded"})
    return _Answers(
        _json("sdk", bodies[0]),
        _json("legacy", bodies[0]),
        _json("sdk", bodies[1]),
        _json("legacy", bodies[1]),
    )


def _error(target: str, endpoint: str) -> Observation:
    # The same fault on both sides; only the wording differs (LiteLLM prefixes its own).
    message = "Rate limit exceeded, retry later"
    if target == "legacy":
        message = f"litellm.RateLimitError: {message}"
    if endpoint in ("messages", "count_tokens"):
        body: dict[str, Any] = {
            "type": "error",
            "error": {"type": "rate_limit_error", "message": message},
        }
    else:
        body = {"error": {"message": message, "type": "rate_limit_error", "code": "429"}}
    return Observation(target, 429, {"content-type": "application/json"}, body=body)


def _outage(target: str, kind: int) -> Observation:
    """An outright failure: LiteLLM's router in cooldown (429), a gateway timeout, none."""
    if kind == 0:
        return Observation(target, None, error="ConnectTimeout")
    if kind == 1:
        message = (
            "No deployments available for selected model, Try again in 5 seconds. "
            f"Passed model={_ALIAS}. cooldown_list=['d1']"
        )
        body = {"error": {"message": message, "type": "None", "param": None, "code": "429"}}
        return Observation(target, 429, {"content-type": "application/json"}, body=body)
    status = 504 if kind == 2 else 503
    message = "Gateway Timeout" if status == 504 else "Service Unavailable"
    body = {"error": {"message": message, "type": "api_error", "code": str(status)}}
    return Observation(target, status, {"content-type": "application/json"}, body=body)


def _call(
    path: str, user: str, conversation: str, seq: int, at: float, *, cookie: bool, issued: bool
) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": path,
        "headers": {"x-sm-user-id": user, "x-sm-conversation-id": conversation},
        "credentials": {"x-supermemory-api-key": {"present": True, "sha256": "0f3a9c1b2d4e"}},
        "cookies": ["__cf_bm"] if cookie else [],
        "cookie_valid": cookie,
        "cookie_issued": issued,
        "body": {"max_tokens": 256, "model": "claude-sonnet-4-5-20250929"},
        "seq": seq,
        "time": at,
        "duration_ms": 40.0,
    }


def _pair(i: int, mood: str, answers: dict[tuple[str, bool], _Answers]) -> CapturedPair:
    rng = random.Random(i)
    endpoint, stream = SLOTS[i % len(SLOTS)]
    family = FAMILIES[i % len(FAMILIES)]
    at = BASE_TIME + i * 0.5
    kind = answers[(endpoint, stream)]
    sdk, legacy = kind.sdk, kind.legacy
    nogo = mood == "nogo"
    if nogo and endpoint == "chat" and i % 5 == 0:
        sdk = kind.sdk_changed  # 20 % of chat pairs: different content
    if nogo and endpoint == "messages" and not stream and i % 49 == 2:
        sdk = kind.sdk_changed  # one tool call where legacy answered text
    error = i % 13 == 6
    if error:
        sdk, legacy = _error("sdk", endpoint), _error("legacy", endpoint)
    if nogo and not error and i % 37 == 11:
        legacy = _outage("legacy", i % 3)  # legacy failed where the SDK succeeded
    if nogo and not error and i % 140 == 72:
        sdk = _outage("sdk", 3)  # the SDK failed (503) where legacy succeeded
    base = 100.0 + 20.0 * rng.random()
    slow = 1.5 if nogo and endpoint == "chat" and stream else 1.0
    sdk = replace(
        sdk,
        total_ms=round(base * slow * (0.95 + 0.1 * rng.random()), 3),
        ttft_ms=round(30 * slow + 5 * rng.random(), 3) if stream and not error else None,
    )
    legacy = replace(
        legacy,
        total_ms=round(base * (1.0 + 0.1 * rng.random()), 3),
        ttft_ms=round(31 + 5 * rng.random(), 3) if stream and not error else None,
    )
    repeat = None
    if i % 4 == 0:
        repeat = kind.legacy_noisy if i % 40 == 0 and not error else legacy
        repeat = replace(repeat, total_ms=legacy.total_ms, ttft_ms=legacy.ttft_ms)
    user = f"user-{family}"
    conversation = f"conv-{i // 35}"
    upstream: dict[str, list[dict[str, Any]]] = {}
    if endpoint in _UPSTREAM:
        path = "/v1/messages" if endpoint != "count_tokens" else _PATHS[endpoint]
        legacy_user = "default-dev" if nogo and family == "jetbrains" else user
        upstream = {
            "sdk": [_call(path, user, conversation, 2 * i, at, cookie=i > 0, issued=i == 0)],
            "legacy": [
                _call(path, legacy_user, conversation, 2 * i + 1, at, cookie=False, issued=True)
            ],
        }
    request = CapturedRequest(
        request_id=f"req-{i:06d}",
        received_at=at,
        method="GET" if endpoint in ("models", "health") else "POST",
        path=_PATHS[endpoint],
        endpoint=endpoint,
        model=None if endpoint in ("models", "health") else _ALIAS,
        stream=stream,
        user_id=user,
        conversation_id=conversation,
        client_family=family,
        headers={"user-agent": f"{family}/1.0"},
        body=None,
    )
    # One pair in ten was answered by the legacy proxy (shadow mode run the other way).
    if i % 10 == 3:
        return CapturedPair(request, legacy, sdk, repeat, upstream=upstream)
    return CapturedPair(request, sdk, legacy, repeat, upstream=upstream)


def _load(store: CaptureStore, mood: str) -> None:
    results = {
        target: {
            "users": 50,
            "requests": 3000,
            "failures": 0,
            "rps": 10.0,
            "p50_ms": 120.0 if target == "sdk" else 130.0,
            "p95_ms": 400.0,
            "p99_ms": 800.0,
            "ttft_p50_ms": 30.0,
            "ttft_p95_ms": 60.0,
            "slo_passed": True,
        }
        for target in ("sdk", "legacy")
    }
    run_id = store.add_load_run(
        "locust-50-users",
        started_at=BASE_TIME + 7200,
        finished_at=BASE_TIME + 7800,
        params={"users": 50, "spawn_rate": 10, "run_time_s": 600},
        results=results,
    )
    leak = 120.0 if mood == "nogo" else 5.0  # MB per hour
    samples = []
    for step in range(61):
        t = step * 10.0
        for target, start in (("sdk", 150.0), ("legacy", 420.0)):
            mb = start + (leak if target == "sdk" else 8.0) * t / 3600 + (step % 3) * 0.1
            samples.append(ProcessSample(target, t, int(mb * 1024 * 1024), t * 0.01))
    store.add_process_samples(run_id, samples)


class _Verbatim(Redactor):
    """Synthetic pairs hold no secrets: skipping the walk makes 100,000 pairs affordable."""

    def redact_pair(self, pair: CapturedPair) -> CapturedPair:
        return pair


def synthetic_pairs(pairs: int, mood: str = "go", *, first: int = 0) -> Iterator[CapturedPair]:
    """The pairs ``first`` to ``first + pairs - 1`` in the given mood, as stored."""
    answers = {slot: _answers(*slot) for slot in SLOTS}
    for i in range(first, first + pairs):
        yield _pair(i, mood, answers)


_Where = TypeVar("_Where", Path, str)


def build_store(
    path: _Where,
    pairs: int,
    mood: str = "go",
    *,
    first: int = 0,
    instance: str | None = None,
    load: bool = True,
) -> _Where:
    """A store at ``path`` (a file or a PostgreSQL URL) with the pairs ``first`` to
    ``first + pairs - 1`` in the given mood, captured by ``instance``; returns ``path``."""
    queue = max(1000, pairs + 1)
    with CaptureStore(
        path, redactor=_Verbatim(), queue_size=queue, spill=False, instance=instance
    ) as store:
        for pair in synthetic_pairs(pairs, mood, first=first):
            store.put(pair)
        store.flush()
        if load and mood != "inconclusive":
            _load(store, mood)
    return path
