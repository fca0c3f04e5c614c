"""Comparator throughput: normalize + diff per pair (target >= 2,000 pairs/s).

Runs once per test in the normal suite (``--benchmark-disable``); measure with
``pytest tests/harness/compare/test_compare_benchmark.py --benchmark-enable``.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from harness.compare import Comparator
from harness.observation import CapturedPair
from tests.harness.builders import chat_observation, make_pair, messages_observation, reply

COMPARATOR = Comparator()


def _typical_chat_pair() -> CapturedPair:
    """Same answer, benign differences only: ids, created, fingerprint, model alias."""
    primary = chat_observation(reply(token="PrimaryTok1"))
    shadow = chat_observation(
        reply(token="ShadowTok22"), target="legacy", model="claude-sonnet-4.5"
    )
    body = copy.deepcopy(shadow.body)
    body["created"] += 1
    body["system_fingerprint"] = "fp_litellm"
    return make_pair(primary, replace(shadow, body=body))


def _mismatching_chat_pair() -> CapturedPair:
    primary = chat_observation()
    shadow = chat_observation(reply("a rather different answer", output_tokens=5), target="legacy")
    return make_pair(primary, shadow)


def _typical_stream_pair() -> CapturedPair:
    primary = messages_observation(reply(token="PrimaryTok1"), stream=True)
    shadow = messages_observation(reply(token="ShadowTok22"), target="legacy", stream=True)
    return make_pair(primary, shadow, endpoint="messages", stream=True)


@pytest.mark.benchmark(group="compare")
@pytest.mark.parametrize(
    ("build", "match"),
    [(_typical_chat_pair, True), (_typical_stream_pair, True), (_mismatching_chat_pair, False)],
    ids=["chat-typical", "messages-stream", "chat-mismatch"],
)
def test_compare_throughput(benchmark: Any, build: Any, match: bool) -> None:
    pair = build()
    verdict = benchmark(COMPARATOR.compare, pair)
    assert verdict.match is match
    if match:
        assert verdict.ignored  # the benign differences were seen, and ignored
