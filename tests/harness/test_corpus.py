"""The replay corpus: its format, and that it covers the traffic the proxies must carry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.corpus import (
    CORPUS_PATH,
    KEY_PLACEHOLDER,
    CorpusEntry,
    CorpusError,
    dump_corpus,
    load_corpus,
)
from harness.redaction import SECRET_HEADERS
from tests.conftest import MASTER_KEY

CORPUS = load_corpus()
FIELDS = {"id", "description", "method", "path", "headers", "body", "stream", "expect"}


def _succeeding(**where: Any) -> list[CorpusEntry]:
    return [
        e for e in CORPUS if e.expects_success and all(getattr(e, k) == v for k, v in where.items())
    ]


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def test_every_line_has_exactly_the_corpus_fields() -> None:
    lines = CORPUS_PATH.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(CORPUS) >= 60
    for line in lines:
        data = json.loads(line)
        assert set(data) == FIELDS
        assert set(data["expect"]) == {"status"}
    assert len({e.id for e in CORPUS}) == len(CORPUS)


def test_no_real_secret_only_placeholders_and_wrong_keys() -> None:
    text = CORPUS_PATH.read_text(encoding="utf-8")
    assert MASTER_KEY not in text
    assert "sandbox-0000" not in text  # the sandbox config's provider keys
    for entry in CORPUS:
        for name, value in entry.headers.items():
            if name.lower() not in SECRET_HEADERS:
                continue
            if entry.expects_success:
                assert KEY_PLACEHOLDER in value, entry.id
            else:
                assert KEY_PLACEHOLDER in value or 401 in entry.expect_status, entry.id


def test_stream_flag_matches_the_body() -> None:
    for entry in CORPUS:
        body_stream = entry.body.get("stream") if isinstance(entry.body, dict) else None
        assert entry.stream == (body_stream is True), entry.id


@pytest.mark.parametrize("endpoint", ["chat", "messages"])
def test_both_formats_stream_and_not(endpoint: str) -> None:
    assert len(_succeeding(endpoint=endpoint, stream=True)) >= 10
    assert len(_succeeding(endpoint=endpoint, stream=False)) >= 10


@pytest.mark.parametrize(
    "family", ["claude-code", "anthropic-sdk", "openai-sdk", "jetbrains", "curl"]
)
def test_every_client_family_is_present(family: str) -> None:
    assert len(_succeeding(client_family=family)) >= 3


def test_user_agents_are_the_real_clients() -> None:
    agents = {e.user_agent for e in CORPUS}
    assert {
        "claude-cli/2.1.332 (external, cli)",
        "claude-cli/2.1.332 (external, sdk-cli)",
        "Anthropic/Python 0.40.0",
        "OpenAI/Python 1.54.0",
        "OpenAIClientImpl/Java unknown",
        "curl/8.5.0",
    } <= agents


def test_claude_code_requests_look_like_claude_code() -> None:
    turns = _succeeding(client_family="claude-code", endpoint="messages")
    assert len(turns) >= 5
    for entry in turns:
        assert entry.path == "/v1/messages?beta=true"
        assert entry.stream
        assert entry.header("x-app") == "cli"
        assert entry.header("anthropic-beta")
        assert entry.header("x-claude-code-session-id")
        assert isinstance(entry.body["system"], list)
        assert isinstance(entry.body["metadata"]["user_id"], str)  # a JSON string
    assert any(e.body["messages"][-1]["role"] == "system" for e in turns)
    assert any(e.body.get("thinking") and e.body.get("context_management") for e in turns)
    assert any(e.header("authorization") for e in turns)  # ANTHROPIC_AUTH_TOKEN users


def test_system_prompt_variants() -> None:
    chat = _succeeding(endpoint="chat")
    messages = _succeeding(endpoint="messages")
    assert any(m["role"] == "system" for e in chat for m in e.body["messages"])
    assert any(isinstance(e.body.get("system"), str) for e in messages)
    assert any(
        isinstance(e.body.get("system"), list)
        and any("cache_control" in block for block in e.body["system"])
        for e in messages
    )


def test_tool_round_trips_in_both_formats() -> None:
    chat = _succeeding(endpoint="chat")
    messages = _succeeding(endpoint="messages")
    assert any(e.body.get("tools") and e.stream for e in chat)
    assert any(
        any(m.get("tool_calls") for m in e.body["messages"])
        and any(m["role"] == "tool" for m in e.body["messages"])
        for e in chat
    )

    def blocks(entry: CorpusEntry, kind: str) -> bool:
        return any(
            isinstance(m["content"], list) and any(b.get("type") == kind for b in m["content"])
            for m in entry.body["messages"]
        )

    round_trips = [e for e in messages if blocks(e, "tool_use") and blocks(e, "tool_result")]
    assert {e.stream for e in round_trips} == {True, False}


def test_unicode_and_long_prompts() -> None:
    ok = _succeeding()
    assert any(any(ord(c) > 0x3000 for t in _texts(e.body) for c in t) for e in ok)
    assert any("🚀" in t for e in ok for t in _texts(e.body))
    long_ones = [e for e in ok if e.content_size() >= 4096]
    assert {e.endpoint for e in long_ones} >= {"chat", "messages"}
    assert {e.stream for e in long_ones} == {True, False}


def test_models_count_tokens_and_memory_ids() -> None:
    assert {e.path for e in _succeeding(endpoint="models")} >= {"/v1/models", "/models"}
    assert all(e.method == "GET" and e.body is None for e in _succeeding(endpoint="models"))
    assert len(_succeeding(endpoint="count_tokens")) >= 3
    memory = [e for e in _succeeding() if e.header("x-memory-user-id")]
    assert {e.endpoint for e in memory} >= {"chat", "messages"}
    assert {e.stream for e in memory} == {True, False}


def test_requests_that_must_fail() -> None:
    failing = [e for e in CORPUS if not e.expects_success]
    assert len(failing) >= 15
    by_status = {s for e in failing for s in e.expect_status}
    assert by_status >= {400, 401, 404}
    assert any(isinstance(e.body, str) for e in failing if 400 in e.expect_status)
    assert any(isinstance(e.body, dict) and "api_base" in e.body for e in failing)
    assert any(
        e.endpoint == "messages" and "max_tokens" not in e.body
        for e in failing
        if isinstance(e.body, dict)
    )
    assert any(
        isinstance(e.body, dict) and not isinstance(e.body.get("messages"), list | None)
        for e in failing
    )
    assert {e.api_format for e in failing} == {"openai", "anthropic"}


def test_entry_helpers() -> None:
    (entry,) = [e for e in CORPUS if e.id == "fail-invalid-json-chat"]
    assert entry.content() == entry.body.encode()
    with pytest.raises(json.JSONDecodeError):
        json.loads(entry.content() or b"")
    (cc,) = [e for e in CORPUS if e.id == "cc-turn"]
    headers = cc.send_headers("sk-test")
    assert headers["x-api-key"] == "sk-test"
    assert cc.headers["x-api-key"] == KEY_PLACEHOLDER  # the entry itself is unchanged
    assert cc.endpoint == "messages" and cc.api_format == "anthropic"
    assert cc.model == "claude-sonnet-4-5-20250929"


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "copy.jsonl"
    assert dump_corpus(CORPUS, path) == len(CORPUS)
    assert load_corpus(path) == CORPUS


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "x"}', "missing fields"),
        ("not json", "not JSON"),
        (
            '{"id": "x", "description": "d", "method": "GET", "path": "/v1/models", '
            '"headers": {}, "body": null, "stream": false, "expect": {"status": 99}}',
            "expect.status",
        ),
        (
            '{"id": "x", "description": "d", "method": "GET", "path": "v1/models", '
            '"headers": {}, "body": null, "stream": false, "expect": {"status": 200}}',
            "absolute path",
        ),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=message) as info:
        load_corpus(path)
    assert f"{path}:1" in str(info.value)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    line = CORPUS_PATH.read_text(encoding="utf-8").splitlines()[0]
    path.write_text(line + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="duplicate id"):
        load_corpus(path)
