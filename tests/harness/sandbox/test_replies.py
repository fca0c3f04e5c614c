from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.sandbox import SandboxSettings
from harness.sandbox.chunking import piece_chunks, word_chunks
from harness.sandbox.prompt import (
    Prompt,
    ToolChoice,
    ToolResult,
    ToolSpec,
    content_pieces,
    count_input_tokens,
    estimate_tokens,
    request_digest,
)
from harness.sandbox.replies import choose_tool, plan_reply, reply_text
from harness.sandbox.state import SandboxState
from tests.harness.sandbox.bodies import WEATHER_SCHEMA

WEATHER = ToolSpec("get_weather", WEATHER_SCHEMA)
SEARCH = ToolSpec(
    "search_docs", {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
)


def _prompt(text: str = "Tell me about the sandbox please", **fields: object) -> Prompt:
    digest = request_digest({"model": "m", "messages": [{"role": "user", "content": text}]})
    return Prompt(model="m", digest=digest, last_user_text=text, input_tokens=12, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "tokens"), [("", 0), ("abc", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)]
)
def test_estimate_tokens_is_about_four_chars_per_token(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_input_tokens_count_text_and_message_framing() -> None:
    assert count_input_tokens(["abcd", "efgh"], messages=2) == estimate_tokens("abcd\nefgh") + 6
    assert count_input_tokens([], messages=0) == 1


def test_content_pieces_reads_text_tool_results_and_other_blocks() -> None:
    content = [
        {"type": "text", "text": "hello"},
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "42"}]},
        {"type": "image", "source": {"type": "base64", "data": "AA"}},
    ]
    pieces = content_pieces(content)
    assert pieces[:2] == ["hello", "42"]
    assert '"image"' in pieces[2]


def test_digest_ignores_fields_that_must_not_change_the_words() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert request_digest(body) == request_digest({**body, "stream": True, "temperature": 0.2})
    assert request_digest(body) != request_digest({**body, "model": "other"})


def test_same_prompt_same_reply() -> None:
    assert plan_reply(_prompt()) == plan_reply(_prompt())


def test_different_prompt_different_reply() -> None:
    first, second = plan_reply(_prompt("one thing")), plan_reply(_prompt("another thing"))
    assert first.text != second.text
    assert first.token != second.token


def test_reply_echoes_the_last_user_words_without_directives() -> None:
    reply = plan_reply(_prompt("What is the capital of France [sandbox:delay_ms=5]"))
    assert reply.text.startswith('You said: "What is the capital of France".')
    assert "sandbox:" not in reply.text
    assert reply.stop_reason == "end_turn"
    assert reply.output_tokens == estimate_tokens(reply.text)
    assert reply.input_tokens == 12


def test_long_input_echo_is_shortened() -> None:
    reply = plan_reply(_prompt("one two three four five six seven eight nine ten"))
    assert 'You said: "one two three four five six seven eight ...".' in reply.text


def test_reply_length_stays_in_range() -> None:
    for seed in range(50):
        sentences = reply_text(_prompt(""), random.Random(seed)).count(".")
        assert 2 <= sentences <= 4


def test_max_tokens_truncates_on_a_word_boundary() -> None:
    reply = plan_reply(_prompt(max_tokens=5))
    assert reply.stop_reason == "max_tokens"
    assert reply.output_tokens == 5
    assert len(reply.text) <= 20
    assert plan_reply(_prompt()).text.startswith(reply.text)


def test_tool_result_reply_mentions_the_result() -> None:
    prompt = _prompt(tools=(WEATHER,), tool_result=ToolResult("get_weather", "Sunny, 21 degrees"))
    reply = plan_reply(prompt)
    assert reply.tool_call is None
    assert reply.text.startswith('The get_weather tool returned: "Sunny, 21 degrees".')


@pytest.mark.parametrize(
    ("text", "choice", "expected"),
    [
        ("What's the weather?", ToolChoice(), None),
        ("Use get_weather for Paris", ToolChoice(), "get_weather"),
        ("search_docs then get_weather", ToolChoice(), "get_weather"),  # first offered wins
        ("Use GET_WEATHER", ToolChoice(), None),  # case-sensitive
        ("Use get_weather_v2", ToolChoice(), None),  # whole names only
        ("Use get_weather", ToolChoice("none"), None),
        ("anything", ToolChoice("any"), "get_weather"),
        ("anything", ToolChoice("tool", "search_docs"), "search_docs"),
        ("anything", ToolChoice("tool", "missing"), None),
        ("mention search_docs", ToolChoice("any"), "search_docs"),
    ],
)
def test_choose_tool(text: str, choice: ToolChoice, expected: str | None) -> None:
    chosen = choose_tool(_prompt(text, tools=(WEATHER, SEARCH), tool_choice=choice))
    assert (chosen.name if chosen else None) == expected


def test_no_tool_call_after_a_tool_result_even_when_forced() -> None:
    prompt = _prompt(
        "get_weather",
        tools=(WEATHER,),
        tool_choice=ToolChoice("any"),
        tool_result=ToolResult(None, "x"),
    )
    assert choose_tool(prompt) is None


def test_tool_call_reply_has_schema_arguments() -> None:
    reply = plan_reply(_prompt("call get_weather", tools=(WEATHER,)))
    assert reply.stop_reason == "tool_use"
    assert reply.text == ""
    assert reply.tool_call is not None
    assert reply.tool_call.arguments == {"city": "sandbox city", "unit": "celsius", "days": 1}
    assert reply.tool_call.token != reply.token


def test_nondeterministic_entropy_varies_per_request_but_follows_the_seed() -> None:
    settings = SandboxSettings(nondeterministic=True, seed=7)
    first, second = SandboxState(settings), SandboxState(settings)
    sequence = [first.reply_entropy()[0] for _ in range(3)]
    assert len(set(sequence)) == 3
    assert [second.reply_entropy()[0] for _ in range(3)] == sequence
    replies = [plan_reply(_prompt(), entropy) for entropy in sequence]
    assert len({r.text for r in replies}) == 3
    assert SandboxState(SandboxSettings()).reply_entropy() == (None, None)


@given(st.text(alphabet=st.sampled_from("ab \n"), max_size=60))
def test_word_chunks_rejoin_exactly(text: str) -> None:
    assert "".join(word_chunks(text)) == text
    assert "".join(piece_chunks(text)) == text


def test_word_chunks_hold_several_words() -> None:
    assert word_chunks("one two three four five") == ["one two three ", "four five"]
