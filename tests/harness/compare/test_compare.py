"""Normalize, diff, verdicts, ignore rules, noise thresholds and upstream parity."""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.compare import (
    CATEGORIES,
    DEFAULT_IGNORE_RULES,
    MISSING,
    Comparator,
    IgnoreRules,
    Thresholds,
    Verdict,
    canonical_model,
    classify,
    comparable,
    diff,
    normalize,
    upstream_parity,
)
from harness.compare.rules import format_path
from harness.compare.upstream import AS_CLIENT_SENT, ONLY_SDK
from harness.observation import Observation, SseEvent
from memory_proxy.app import create_app
from memory_proxy.config import load_config
from memory_proxy.legacy_proxy import create_legacy_app
from tests.harness.builders import (
    UPSTREAM_ID,
    chat_observation,
    make_pair,
    messages_observation,
    reply,
)

COMPARATOR = Comparator()
TOOL = ("get_weather", {"city": "Paris", "days": 3, "units": {"temp": "C"}})


def _body(observation: Observation) -> Any:
    return copy.deepcopy(observation.body)


def _with_body(observation: Observation, body: Any, **changes: Any) -> Observation:
    return replace(observation, body=body, target="legacy", **changes)


def _verdict(primary: Observation, shadow: Observation, endpoint: str = "chat") -> Verdict:
    return COMPARATOR.compare(make_pair(primary, shadow, endpoint=endpoint))


def _categories(verdict: Verdict) -> set[str]:
    return {d.category for d in verdict.differences}


# -- the default ignore rules ----------------------------------------------------------


def test_same_answer_from_both_sides_matches() -> None:
    verdict = _verdict(chat_observation(), chat_observation(target="legacy"))
    assert verdict.match and verdict.differences == () and verdict.ignored == ()


def _chat_ids_changed() -> tuple[Observation, Observation]:
    primary = chat_observation(reply(tool=TOOL, token="AAAA"))
    shadow = chat_observation(reply(tool=TOOL, token="BBBB"), target="legacy")
    body = _body(shadow)
    body["created"] += 7
    body["system_fingerprint"] = "fp_other"
    return primary, _with_body(shadow, body)


@pytest.mark.parametrize(
    "path",
    [
        "body.id",
        "body.choices[0].message.tool_calls[0].id",
        "body.created",
        "body.system_fingerprint",
    ],
)
def test_default_rules_chat(path: str) -> None:
    verdict = _verdict(*_chat_ids_changed())
    assert verdict.match
    assert path in {d.path for d in verdict.ignored}


def test_default_rules_tool_use_and_message_ids() -> None:
    primary = messages_observation(reply(tool=TOOL, token="AAAA"))
    shadow = messages_observation(reply(tool=TOOL, token="BBBB"), target="legacy")
    verdict = _verdict(primary, shadow, "messages")
    assert verdict.match
    assert {d.path for d in verdict.ignored} == {"body.id", "body.content[0].id"}
    assert all(d.category == "tool_calls" for d in verdict.ignored if "content" in d.path)


def test_default_rule_model_alias_against_upstream_id() -> None:
    for endpoint, build in (("chat", chat_observation), ("messages", messages_observation)):
        for stream in (False, True):
            primary = build(stream=stream, model=UPSTREAM_ID)  # type: ignore[operator]
            shadow = build(stream=stream, model="claude-sonnet-4.5", target="legacy")  # type: ignore[operator]
            verdict = _verdict(primary, shadow, endpoint)
            assert verdict.match, (endpoint, stream, verdict.differences)
            [model] = [d for d in verdict.ignored if d.path == "body.model"]
            assert (model.category, model.primary, model.candidate) == (
                "model",
                UPSTREAM_ID,
                "claude-sonnet-4.5",
            )


def test_model_rule_still_catches_a_different_model() -> None:
    verdict = _verdict(chat_observation(), chat_observation(model="gpt-4o", target="legacy"))
    assert [(d.category, d.path) for d in verdict.differences] == [("model", "body.model")]


def test_model_alias_map_from_config() -> None:
    comparator = Comparator(model_aliases={"sonnet": "anthropic/claude-sonnet-4-5-20250929"})
    pair = make_pair(chat_observation(), chat_observation(model="sonnet", target="legacy"))
    assert comparator.compare(pair).match
    assert not COMPARATOR.compare(pair).match


@pytest.mark.parametrize(
    ("alias", "upstream"),
    [
        ("claude-sonnet-4.5", "claude-sonnet-4-5-20250929"),
        ("claude-sonnet-4.5", "anthropic/claude-sonnet-4-5-20250929"),
        ("gpt-4o", "gpt-4o-2024-08-06"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku-20241022"),
        ("GPT-4.1", "openai/gpt-4.1"),
    ],
)
def test_canonical_model(alias: str, upstream: str) -> None:
    assert canonical_model(alias) == canonical_model(upstream)


def test_default_rules_request_id_in_error_envelopes_and_model_lists() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    primary = Observation("sdk", 529, body={**error, "request_id": "req_1"})
    shadow = Observation("legacy", 529, body={**error, "request_id": "req_2"})
    assert _verdict(primary, shadow, "messages").match
    models = [{"id": m, "object": "model", "created": 1, "owned_by": "sandbox"} for m in "ab"]
    listed = [{"id": m, "object": "model", "created": 2, "owned_by": "openai"} for m in "ba"]
    verdict = _verdict(
        Observation("sdk", 200, body={"object": "list", "data": models}),
        Observation("legacy", 200, body={"object": "list", "data": listed}),
        "models",
    )
    assert verdict.match and len(verdict.ignored) == 4  # sorted by id, then created/owned_by


def test_headers_outside_the_compared_set_never_count() -> None:
    primary = replace(chat_observation(), headers={"content-type": "application/json",
                                                   "x-request-id": "a", "date": "Mon"})  # fmt: skip
    shadow = replace(
        chat_observation(target="legacy"),
        headers={"Content-Type": "application/json; charset=utf-8", "x-litellm-call-id": "b"},
    )
    assert _verdict(primary, shadow).match


# -- rule syntax --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "removed"),
    [
        ("root['id']", ["body.id"]),
        ("id", ["body.id"]),
        ("*.id", ["body.id", "body.choices[0].id", "body.choices[0].message.tool_calls[0].id"]),
        ("choices[*].message.tool_calls[*].id", ["body.choices[0].message.tool_calls[0].id"]),
        ("root['choices'][0]['id']", ["body.choices[0].id"]),
        ("choices.*.id", []),  # one key level, choices[0] is an index
        ("headers.x-litellm-*", ["headers.x-litellm-a", "headers.x-litellm-b"]),
        ('root["a.b"]', ["body.a.b"]),
        ("status", ["status"]),
        ("usage.*_tokens", ["body.usage.prompt_tokens"]),
    ],
)
def test_rule_paths_and_globs(rule: str, removed: list[str]) -> None:
    value = {
        "status": 200,
        "headers": {"x-litellm-a": "1", "x-litellm-b": "2", "x-other": "3"},
        "body": {
            "id": "x",
            "a.b": 1,
            "usage": {"prompt_tokens": 1, "details": {"prompt_tokens": 2}},
            "choices": [{"id": "c", "message": {"tool_calls": [{"id": "t", "name": "n"}]}}],
        },
    }
    normalized = IgnoreRules([rule]).apply(value)
    assert sorted(format_path(p) for p in normalized.ignored) == sorted(removed)


def test_ignored_list_item_keeps_later_indices() -> None:
    normalized = IgnoreRules(["items[0]"]).apply({"body": {"items": [1, 2]}})
    assert normalized.value == {"body": {"items": ["<ignored>", 2]}}


def test_unparsable_rule_is_refused() -> None:
    with pytest.raises(ValueError):
        IgnoreRules(["choices[x"])


def test_custom_rules_replace_the_defaults() -> None:
    primary, shadow = _chat_ids_changed()
    comparator = Comparator(rules=["created"])
    paths = {d.path for d in comparator.compare(make_pair(primary, shadow)).differences}
    assert "body.id" in paths and "body.created" not in paths


# -- one case per category ----------------------------------------------------------------


def _changed(
    mutate: Any, build: Any = chat_observation, endpoint: str = "chat", **kw: Any
) -> Verdict:
    primary = build(**kw)
    shadow = build(target="legacy", **kw)
    body = _body(shadow)
    result = mutate(body)
    shadow = result if isinstance(result, Observation) else _with_body(shadow, body)
    return _verdict(primary, shadow, endpoint)


def _set(path: list[Any], value: Any) -> Any:
    def mutate(body: Any) -> None:
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: list[Any]) -> Any:
    def mutate(body: Any) -> None:
        target = body
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


CHOICE: list[Any] = ["choices", 0]
MSG = [*CHOICE, "message"]
MSG_PATH = "body.choices[0].message"
CASES: list[tuple[str, Any, str]] = [
    ("finish_reason", _set([*CHOICE, "finish_reason"], "length"), "body.choices[0].finish_reason"),
    ("usage", _set(["usage", "completion_tokens"], 99), "body.usage.completion_tokens"),
    ("schema", _delete(["service_tier"]), "body.service_tier"),
    ("schema", _set(["usage", "cache_tokens"], 0), "body.usage.cache_tokens"),
    ("type_change", _set(["usage", "prompt_tokens"], "21"), "body.usage.prompt_tokens"),
    ("content", _set([*MSG, "content"], "something else entirely"), f"{MSG_PATH}.content"),
    ("content", _set([*MSG, "content"], None), f"{MSG_PATH}.content"),
    ("other", _set([*MSG, "role"], "user"), f"{MSG_PATH}.role"),
    ("model", _set(["model"], "gpt-4o-mini"), "body.model"),
]


@pytest.mark.parametrize(("category", "mutate", "path"), CASES)
def test_each_category_chat_body(category: str, mutate: Any, path: str) -> None:
    verdict = _changed(mutate)
    assert [(d.category, d.path) for d in verdict.differences] == [(category, path)]
    assert verdict.categories[category] and not verdict.match
    assert sum(verdict.categories.values()) == 1


def test_status_and_transport_error() -> None:
    verdict = _verdict(chat_observation(), Observation("legacy", None, error="timeout"))
    assert {"status", "error_type"} <= _categories(verdict)
    [error_type] = [d for d in verdict.differences if d.category == "error_type"]
    assert error_type.candidate == "transport:timeout"


def test_error_type_and_error_message() -> None:
    def error(kind: str, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    base = Observation("sdk", 429, body=error("rate_limit_error", "slow down"))
    verdict = _verdict(
        base,
        Observation(
            "legacy", 429, body=error("rate_limit_error", "litellm.RateLimitError: slow down")
        ),
    )
    assert _categories(verdict) == {"error_message"}
    verdict = _verdict(base, Observation("legacy", 429, body=error("api_error", "slow down")))
    assert _categories(verdict) == {"error_type"}


@pytest.mark.parametrize("build", [chat_observation, messages_observation])
def test_tool_calls_names_and_arguments(build: Any) -> None:
    endpoint = "chat" if build is chat_observation else "messages"
    primary = build(reply(tool=TOOL))
    for other_tool, expected in [
        (("get_time", TOOL[1]), {"tool_calls"}),
        (("get_weather", {**TOOL[1], "days": 4}), {"tool_calls"}),
        (("get_weather", {"city": "Paris"}), {"tool_calls"}),
    ]:
        verdict = _verdict(primary, build(reply(tool=other_tool), target="legacy"), endpoint)
        assert _categories(verdict) == expected, verdict.differences


def test_tool_arguments_compare_as_parsed_json() -> None:
    primary = chat_observation(reply(tool=TOOL))
    body = _body(primary)
    call = body["choices"][0]["message"]["tool_calls"][0]["function"]
    reordered = dict(reversed(list(json.loads(call["arguments"]).items())))
    call["arguments"] = json.dumps(reordered, indent=1)
    assert _verdict(primary, _with_body(primary, body)).match
    call["arguments"] = '{"city": "Paris"'  # truncated: compared as the string
    verdict = _verdict(primary, _with_body(primary, body))
    assert _categories(verdict) == {"tool_calls"}


@pytest.mark.parametrize(
    ("text", "threshold", "flagged"),
    [
        (
            "the  sandbox answers\nevery request with a short reply built from plain words",
            0.95,
            False,
        ),
        ("the sandbox answers every request with a short reply built from plain word", 0.95, False),
        ("the sandbox answers every request with a short reply built from plain word", 1.0, True),
        ("a completely different answer", 0.95, True),
    ],
)
def test_content_whitespace_and_similarity(text: str, threshold: float, flagged: bool) -> None:
    comparator = Comparator(thresholds=Thresholds(content_similarity=threshold))
    pair = make_pair(chat_observation(), chat_observation(reply(text), target="legacy"))
    verdict = comparator.compare(pair)
    assert verdict.categories["content"] is flagged
    content = [d for d in (*verdict.differences, *verdict.ignored) if d.category == "content"]
    assert len(content) == 1 and content[0].ignored is not flagged and content[0].detail


def test_anthropic_text_block_content_and_extra_block() -> None:
    primary = messages_observation()
    verdict = _verdict(
        primary, messages_observation(reply("other words entirely"), target="legacy"), "messages"
    )
    assert [(d.category, d.path) for d in verdict.differences] == [
        ("content", "body.content[0].text")
    ]
    body = _body(primary)
    body["content"].append({"type": "tool_use", "id": "toolu_x", "name": "n", "input": {}})
    verdict = _verdict(primary, _with_body(primary, body), "messages")
    assert [(d.category, d.path, d.primary) for d in verdict.differences] == [
        ("tool_calls", "body.content[1]", MISSING)
    ]


def test_lists_align_on_equal_items() -> None:
    text = [{"type": "text", "text": word} for word in ("one", "two")]
    tool = {"type": "tool_use", "name": "n", "input": {}}
    blocks = [text[0], tool, text[1]]
    with_tool = {"status": 200, "body": {"content": blocks}}
    without = {"status": 200, "body": {"content": text}}
    # One block taken out of the middle is one difference, in the block's own category.
    assert [(d.category, d.path, d.candidate) for d in diff(with_tool, without)] == [
        ("tool_calls", "body.content[1]", MISSING)
    ]
    assert [(d.category, d.path, d.primary) for d in diff(without, with_tool)] == [
        ("tool_calls", "body.content[1]", MISSING)
    ]
    shifted = diff({"body": {"x": ["A", "T", "B"]}}, {"body": {"x": ["A", "B", "Q", "R"]}})
    assert [(d.path, d.primary, d.candidate) for d in shifted] == [
        ("body.x[1]", "T", MISSING),
        ("body.x[2]", MISSING, "Q"),
        ("body.x[3]", MISSING, "R"),
    ]


def test_headers_category() -> None:
    shadow = replace(chat_observation(target="legacy"), headers={"content-type": "text/html"})
    verdict = _verdict(chat_observation(), shadow)
    assert [(d.category, d.path) for d in verdict.differences] == [
        ("headers", "headers.content-type")
    ]


def _drop_events(observation: Observation, predicate: Any) -> Observation:
    assert observation.events is not None
    return replace(
        observation,
        target="legacy",
        events=tuple(e for e in observation.events if not predicate(e)),
    )


def test_stream_ending_missing_done_and_message_stop() -> None:
    primary = chat_observation(stream=True)
    verdict = _verdict(primary, _drop_events(primary, lambda e: e.data == "[DONE]"))
    assert _categories(verdict) == {"stream_ending", "stream_sequence"}
    primary = messages_observation(stream=True)
    verdict = _verdict(
        primary, _drop_events(primary, lambda e: e.event == "message_stop"), "messages"
    )
    assert _categories(verdict) == {"stream_ending", "stream_sequence"}
    [ending] = [d for d in verdict.differences if d.category == "stream_ending"]
    assert (ending.path, ending.primary, ending.candidate) == ("stream.complete", True, False)


def test_stream_sequence_only() -> None:
    primary = messages_observation(stream=True)
    verdict = _verdict(primary, _drop_events(primary, lambda e: e.event == "ping"), "messages")
    assert [(d.category, d.path) for d in verdict.differences] == [
        ("stream_sequence", "stream.sequence")
    ]


def test_same_stream_in_different_chunking_matches() -> None:
    primary = chat_observation(stream=True)
    assert primary.events is not None
    text = "".join(
        json.loads(e.data)["choices"][0]["delta"].get("content") or "" for e in primary.events[:-2]
    )
    chunk = dict(json.loads(primary.events[1].data))
    chunk["choices"] = [
        {"index": 0, "delta": {"content": text}, "finish_reason": None, "logprobs": None}
    ]
    events = (primary.events[0], SseEvent(json.dumps(chunk)), *primary.events[-3:])
    assert _verdict(primary, replace(primary, target="legacy", events=events)).match


def test_error_mid_stream_is_an_error_type_difference() -> None:
    primary = messages_observation(stream=True)
    assert primary.events is not None
    error = SseEvent(
        json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "x"}}),
        "error",
    )
    shadow = replace(primary, target="legacy", events=(*primary.events[:4], error))
    assert {"error_type", "stream_ending", "stream_sequence"} <= _categories(
        _verdict(primary, shadow, "messages")
    )


def test_not_mirrored_pair_is_skipped() -> None:
    verdict = COMPARATOR.compare(
        replace(make_pair(chat_observation(), None), mirror_outcome="skipped:sampled")
    )
    assert verdict.skipped == "not mirrored (skipped:sampled)"
    assert not verdict.match and not any(verdict.categories.values())


def test_verdict_round_trip() -> None:
    verdict = _verdict(*_chat_ids_changed())
    assert Verdict.from_dict(json.loads(json.dumps(verdict.to_dict()))) == verdict
    assert set(verdict.categories) == set(CATEGORIES)


# -- properties ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["id", "model", "content", "x", "created"]), children, max_size=3
        )
    ),
    max_leaves=12,
)
models = st.sampled_from(["claude-sonnet-4.5", UPSTREAM_ID, "gpt-4o"])
bodies = st.fixed_dictionaries(
    {"id": st.text(max_size=4), "model": models},
    optional={"choices": st.lists(st.fixed_dictionaries({"message": json_values}), max_size=2),
              "content": st.lists(json_values, max_size=2), "extra": json_values},
)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(body=bodies, endpoint=st.sampled_from(["chat", "messages", "models", "count_tokens"]))
def test_normalize_is_idempotent(body: dict[str, Any], endpoint: str) -> None:
    observation = Observation("sdk", 200, body=body)
    once = normalize(observation, endpoint)
    assert COMPARATOR.rules.apply(once.value).value == once.value
    twice = normalize(replace(observation, body=once.value["body"]), endpoint)
    assert twice.value == once.value


@settings(max_examples=80, deadline=None)
@given(body=bodies, endpoint=st.sampled_from(["chat", "messages"]))
def test_diff_of_itself_is_empty(body: dict[str, Any], endpoint: str) -> None:
    value = comparable(Observation("sdk", 200, body=body), endpoint)
    assert diff(value, copy.deepcopy(value)) == []
    assert _verdict(
        Observation("sdk", 200, body=body), Observation("legacy", 200, body=body), endpoint
    ).match


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=40), stream=st.booleans(), tool=st.booleans())
def test_any_sandbox_answer_matches_itself(text: str, stream: bool, tool: bool) -> None:
    planned = reply(text or "x", tool=TOOL if tool else None)
    for build, endpoint in ((chat_observation, "chat"), (messages_observation, "messages")):
        primary = build(planned, stream=stream)  # type: ignore[operator]
        assert _verdict(primary, replace(primary, target="legacy"), endpoint).match


def test_a_boolean_is_not_a_number() -> None:
    # Python's True == 1 hid these: the property test's oracle (DeepDiff) found them.
    def answer(body: dict[str, Any]) -> dict[str, Any]:
        return {"status": 200, "error_type": None, "headers": {}, "body": body}

    cached = diff(
        answer({"usage": {"cached_tokens": 0}}), answer({"usage": {"cached_tokens": False}})
    )
    assert [(d.category, d.path) for d in cached] == [("type_change", "body.usage.cached_tokens")]
    listed = diff(answer({"flags": [True, 1.0]}), answer({"flags": [1, 1]}))
    assert [d.path for d in listed] == ["body.flags[0]"]  # 1.0 and 1: one JSON number
    assert diff(answer({"flags": [True]}), answer({"flags": [True]})) == []
    sdk = chat_observation(reply(tool=("get_weather", {"city": "Paris", "metric": True})))
    legacy = chat_observation(reply(tool=("get_weather", {"city": "Paris", "metric": 1})))
    verdict = _verdict(sdk, replace(legacy, target="legacy"))
    assert _categories(verdict) == {"tool_calls"}


def test_a_malformed_block_type_is_a_difference_not_a_crash() -> None:
    # Found by the property test: an unhashable "type" raised TypeError in categorize.
    def answer(block_type: Any) -> dict[str, Any]:
        body = {"content": [{"type": block_type, "text": "hi"}]}
        return {"status": 200, "error_type": None, "headers": {}, "body": body}

    found = diff(answer("text"), answer(["text"]))
    assert [(d.category, d.path) for d in found] == [("content", "body.content[0].type")]
    assert [d.category for d in diff(answer({"a": 1}), answer("tool_use"))] == ["tool_calls"]


# -- noise and thresholds -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "noise", "regression"),
    [
        (0.0, 0.0, False),
        (0.03, 0.0, False),  # absolute edge: exactly 3 points is not above
        (0.031, 0.0, True),
        (0.13, 0.10, False),  # 3 points over the noise: not above
        (0.131, 0.10, True),
        (0.60, 0.50, False),  # relative edge: 10 points is exactly 20 % of the noise
        (0.601, 0.50, True),
        (0.55, 0.50, False),  # above absolute, below relative
        (0.02, 0.01, False),  # above relative, below absolute
        (0.0, 0.2, False),  # fewer differences than noise
    ],
)
def test_classify_threshold_edges(rate: float, noise: float, regression: bool) -> None:
    [assessment] = classify(Thresholds(), {"content": rate}, {"content": noise}).values()
    assert assessment.regression is regression
    assert (assessment.rate, assessment.noise_rate) == (rate, noise)


def test_classify_thresholds_are_configurable() -> None:
    lenient = Thresholds(relative=1.0, absolute=0.10)
    assert not classify(lenient, {"usage": 0.15}, {"usage": 0.08})["usage"].regression
    assert classify(lenient, {"usage": 0.20}, {"usage": 0.08})["usage"].regression


def test_verdicts_read_sdk_against_legacy_whichever_side_answered() -> None:
    sdk = chat_observation(reply("the SDK's own answer", output_tokens=99))
    legacy = chat_observation(target="legacy")
    upstream = {"sdk": [_call()], "legacy": [_call(path="/v1/v1/messages")]}
    for primary, shadow in ((sdk, legacy), (legacy, sdk)):
        verdict = COMPARATOR.compare(make_pair(primary, shadow, upstream=upstream))
        values = {d.path: (d.primary, d.candidate) for d in verdict.differences}
        assert values["body.usage.completion_tokens"] == (99, 14)
        assert values["upstream[0].path"] == ("/v1/messages", "/v1/v1/messages")


def test_repeat_is_compared_with_legacy_whichever_side_legacy_was() -> None:
    legacy = chat_observation(target="legacy")
    sdk = chat_observation(reply("the SDK's own answer", output_tokens=99))
    repeat = chat_observation(target="legacy")
    for primary, shadow in ((sdk, legacy), (legacy, sdk)):
        verdict = COMPARATOR.compare_repeat(make_pair(primary, shadow, repeat=repeat))
        assert verdict is not None and verdict.match  # legacy vs legacy: nothing differs


def test_no_repeat_no_a_a_verdict() -> None:
    assert COMPARATOR.compare_repeat(make_pair(chat_observation(), None)) is None


# -- upstream parity ----------------------------------------------------------------------


def _call(**changes: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "path": "/v1/messages",
        "headers": {
            "x-sm-user-id": "claude-code",
            "x-sm-conversation-id": "conv-1",
            "anthropic-beta": "a-1,b-2",
            "x-supermemory-api-key": "[REDACTED]",
        },
        "credentials": {"x-supermemory-api-key": {"present": True, "fingerprint": "abc"}},
        "body": {
            "model": UPSTREAM_ID,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
        },
    }
    for key, value in changes.items():
        if key in ("headers", "body"):
            call[key] = {**call[key], **value}
        else:
            call[key] = value
    return call


@pytest.mark.parametrize(
    ("legacy_calls", "paths"),
    [
        ([_call()], []),
        ([_call(body={"model": "anthropic/claude-sonnet-4.5"})], []),  # model id aside
        ([_call(headers={"anthropic-beta": "b-2, a-1"})], []),  # same flags, other order
        # How many calls each side made is the per-request count gate's, not parity's.
        ([_call(), _call()], []),
        ([], []),
        # A retry the recorded 429 explains: the answered call is compared.
        ([_call(status=429, body={"max_tokens": 1}), _call()], []),
        # Only legacy sent it, and the client did not: the SDK dropped nothing.
        ([_call(body={"system": [{"type": "text", "text": "s"}]})], []),
        ([_call(headers={"x-sm-user-id": "default-dev"})], ["upstream[0].headers.x-sm-user-id"]),
        (
            [_call(headers={"x-sm-conversation-id": None})],
            ["upstream[0].headers.x-sm-conversation-id"],
        ),
        ([_call(headers={"anthropic-beta": "a-1"})], ["upstream[0].headers.anthropic-beta"]),
        # Only the SDK sent the Supermemory key: no SDK regression.
        ([_call(credentials={"x-supermemory-api-key": {"present": False}})], []),
        ([_call(body={"max_tokens": 32})], ["upstream[0].body.max_tokens"]),
        ([_call(body={"temperature": 0})], []),  # legacy added it, the client did not
        ([_call(path="/v1/v1/messages")], ["upstream[0].path"]),
    ],
)
def test_upstream_parity(legacy_calls: list[dict[str, Any]], paths: list[str]) -> None:
    pair = make_pair(
        messages_observation(),
        messages_observation(target="legacy"),
        endpoint="messages",
        upstream={"sdk": [_call()], "legacy": legacy_calls},
    )
    found = upstream_parity(pair)
    assert [d.path for d in found if not d.ignored] == paths
    verdict = COMPARATOR.compare(pair)
    assert verdict.categories["upstream"] is bool(paths)


def test_upstream_key_from_headers_when_no_credentials_summary() -> None:
    bare = _call(credentials=None, headers={"x-supermemory-api-key": ""})
    pair = make_pair(
        chat_observation(),
        chat_observation(target="legacy"),
        upstream={"sdk": [_call()], "legacy": [bare]},
    )
    assert [d.path for d in upstream_parity(pair)] == [
        "upstream[0].credentials.x-supermemory-api-key.present"
    ]


def test_upstream_not_captured_is_not_compared() -> None:
    pair = make_pair(
        chat_observation(), chat_observation(target="legacy"), upstream={"sdk": [_call()]}
    )
    assert upstream_parity(pair) == []
    assert DEFAULT_IGNORE_RULES  # the defaults are a public, listed constant


def test_upstream_parity_names_a_dropped_field_by_its_path() -> None:
    """Claude Code's cache_control marks stripped by one side: named leaf by leaf."""
    system = [{"type": "text", "text": "you are", "cache_control": {"type": "ephemeral"}}]
    stripped = [{"type": "text", "text": "you are"}]
    pair = make_pair(
        messages_observation(),
        messages_observation(target="legacy"),
        endpoint="messages",
        request_body={"model": "claude-sonnet-4.5", "system": system, "messages": []},
        upstream={
            "sdk": [_call(body={"system": stripped})],
            "legacy": [_call(body={"system": system})],
        },
    )
    found = upstream_parity(pair)
    assert [(d.path, d.primary, d.candidate) for d in found] == [
        ("upstream[0].body.system[0].cache_control", MISSING, {"type": "ephemeral"})
    ]
    # A model id is compared as a model id: the alias spelling is no difference, another
    # model is.
    other = make_pair(
        messages_observation(),
        messages_observation(target="legacy"),
        endpoint="messages",
        upstream={"sdk": [_call(body={"model": "gpt-4o"})], "legacy": [_call()]},
    )
    assert [d.path for d in upstream_parity(other)] == ["upstream[0].body.model"]


def test_a_deliberate_upstream_difference_is_shown_ignored_with_its_reason() -> None:
    pair = make_pair(
        chat_observation(),
        chat_observation(target="legacy"),
        upstream={
            "sdk": [_call(body={"stream": True})],
            "legacy": [_call(body={"stream": True, "stream_options": {"include_usage": True}})],
        },
    )
    (found,) = upstream_parity(pair)
    assert found.ignored and "spend tracking" in found.detail
    assert found.path == "upstream[0].body.stream_options"
    # The same field with anything else in it is a difference like any other.
    pair.upstream["legacy"][0]["body"]["stream_options"] = {"include_usage": False}
    assert [d.ignored for d in upstream_parity(pair)] == [False]


def test_what_the_sdk_passes_through_as_the_client_sent_it_is_no_regression() -> None:
    """Legacy rewrote Claude Code's thinking budget and dropped output_config; the SDK
    sent both as the client did: shown, ignored with the reason."""
    sent = {"thinking": {"type": "enabled", "budget_tokens": 31999}, "output_config": {"e": 1}}
    pair = make_pair(
        messages_observation(),
        messages_observation(target="legacy"),
        endpoint="messages",
        request_body={"model": "claude-sonnet-4.5", "messages": [], **sent},
        upstream={
            "sdk": [_call(body=json.loads(json.dumps(sent)))],  # a copy: mutated below
            "legacy": [_call(body={"thinking": {"type": "enabled", "budget_tokens": 4096}})],
        },
    )
    found = upstream_parity(pair)
    assert {d.path: d.detail for d in found} == {
        "upstream[0].body.thinking.budget_tokens": AS_CLIENT_SENT,
        "upstream[0].body.output_config": ONLY_SDK,
    }
    assert all(d.ignored for d in found)
    # The other way round, the SDK is the one that changed the client's value.
    pair.upstream["sdk"][0]["body"]["thinking"]["budget_tokens"] = 4096
    pair.upstream["legacy"][0]["body"]["thinking"]["budget_tokens"] = 31999
    assert [d.path for d in upstream_parity(pair) if not d.ignored] == [
        "upstream[0].body.thinking.budget_tokens"
    ]


def test_the_sdk_losing_a_memory_header_or_the_supermemory_key_is_a_regression() -> None:
    lost = _call(headers={"x-sm-user-id": None}, credentials={"x-supermemory-api-key": {}})
    del lost["headers"]["x-sm-user-id"]
    pair = make_pair(
        messages_observation(),
        messages_observation(target="legacy"),
        endpoint="messages",
        upstream={"sdk": [lost], "legacy": [_call()]},
    )
    assert [d.path for d in upstream_parity(pair) if not d.ignored] == [
        "upstream[0].headers.x-sm-user-id",
        "upstream[0].credentials.x-supermemory-api-key.present",
    ]


def _health(app: Any) -> Any:
    async def get() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            reply = await client.get("/health")
            assert reply.status_code == 200
            return reply.json()

    return asyncio.run(get())


def test_health_answers_of_both_real_proxies_compare_equal(sandbox_config_path: Any) -> None:
    """Each proxy's own GET /health (the two real apps): the service name and the SDK's
    litellm version say who answered and are not compared; a model missing from one side
    still differs."""
    config = load_config(sandbox_config_path)
    sdk_body = _health(create_app(config))
    legacy_body = _health(create_legacy_app(config, "http://127.0.0.1:9"))
    assert sdk_body["service"] != legacy_body["service"]
    sdk, legacy = (
        Observation("sdk", 200, body=sdk_body),
        Observation("legacy", 200, body=legacy_body),
    )
    assert _verdict(sdk, legacy, "health").match
    fewer = replace(legacy, body={**legacy_body, "models": legacy_body["models"][1:]})
    assert not _verdict(sdk, fewer, "health").match
