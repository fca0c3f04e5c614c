from __future__ import annotations

import pytest

from harness.sandbox.directives import Directives, parse_directives, strip_directives


def test_no_directive_is_empty() -> None:
    assert parse_directives("What is the weather in Paris?") == Directives()
    assert not parse_directives("").any


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[sandbox:status=429]", Directives(status=429)),
        ("[sandbox:status=503]", Directives(status=503)),
        ("[sandbox:status=500]", Directives(status=500)),
        ("[sandbox:cloudflare=1200]", Directives(cloudflare=1200)),
        ("[sandbox:malformed]", Directives(malformed=True)),
        ("[sandbox:cut_after=3]", Directives(cut_after=3)),
        ("[sandbox:delay_ms=250]", Directives(delay_ms=250)),
        ("[sandbox:stream_delay_ms=40]", Directives(stream_delay_ms=40)),
        ("[sandbox:ttft_ms=75]", Directives(ttft_ms=75)),
        ("[sandbox:stream_error=2]", Directives(stream_error_after=2)),
        ("[sandbox:stall_after=4]", Directives(stall_after=4)),
    ],
)
def test_each_directive(text: str, expected: Directives) -> None:
    assert parse_directives(f"Please answer. {text} Thanks") == expected


def test_directives_combine_in_one_bracket_and_across_brackets() -> None:
    found = parse_directives("hi [sandbox:status=429, delay_ms=10] and [sandbox:cut_after=2]")
    assert found == Directives(status=429, delay_ms=10, cut_after=2)


def test_later_directive_wins() -> None:
    assert parse_directives("[sandbox:status=429] [sandbox:status=500]").status == 500


@pytest.mark.parametrize(
    "text",
    ["[sandbox:status=200]", "[sandbox:status=abc]", "[sandbox:delay_ms=-5]", "[sandbox:bogus=1]"],
)
def test_bad_or_unknown_directives_are_ignored(text: str) -> None:
    assert parse_directives(text) == Directives()


def test_strip_directives_leaves_the_words() -> None:
    assert strip_directives("Hello [sandbox:status=429]  world") == "Hello world"


def test_silence_directive() -> None:
    from harness.sandbox.directives import parse_directives

    parsed = parse_directives("[sandbox:silence_ms=3000,silence_after=4]")
    assert (parsed.silence_ms, parsed.silence_after) == (3000, 4)
