"""Redaction: no credential or configured secret reaches the store, prompts per policy."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from harness.observation import Observation, SseEvent
from harness.redaction import REDACTED, Redactor, prompt_hash
from harness.store.capture_store import CaptureStore
from tests.harness.builders import chat_observation, make_pair, messages_observation

ANTHROPIC_KEY = "sk-ant-api03-Zq8vTestSecret0123456789abcdef"
SUPERMEMORY_KEY = "sm_live_SuperSecretMemoryKey_42424242"
MASTER_KEY = "sk-proxy-sandbox-master-7f3a9c"
SECRETS = (ANTHROPIC_KEY, SUPERMEMORY_KEY, MASTER_KEY)
PROMPT = {
    "model": "claude-sonnet-4.5",
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "my key is " + ANTHROPIC_KEY},
        {"role": "assistant", "content": [{"type": "text", "text": "noted"}]},
    ],
    "max_tokens": 64,
}


def _leaky_pair(request_id: str = "req-1"):  # type: ignore[no-untyped-def]
    """A pair with secrets in headers, bodies, SSE data, errors and upstream captures."""
    primary = messages_observation(stream=True)
    events = (
        *primary.events,  # type: ignore[misc]
        SseEvent(
            json.dumps({"type": "error", "error": {"message": f"bad key {MASTER_KEY}"}}), "error"
        ),
    )
    primary = replace(
        primary,
        headers={"content-type": "text/event-stream", "Set-Cookie": "__cf_bm=abc; Path=/"},
        events=events,
    )
    shadow = Observation(
        "legacy",
        401,
        {"content-type": "application/json", "x-echo": SUPERMEMORY_KEY},
        body={
            "error": {
                "type": "authentication_error",
                "message": f"invalid x-api-key {ANTHROPIC_KEY}",
            }
        },
        error=f"HTTPStatusError: key={ANTHROPIC_KEY}",
    )
    upstream = {
        "sdk": [
            {
                "path": f"/v1/messages?key={SUPERMEMORY_KEY}",
                "headers": {"X-Api-Key": ANTHROPIC_KEY, "x-supermemory-api-key": SUPERMEMORY_KEY},
                "credentials": {"x-api-key": {"present": True, "sha256": "0f0f0f0f0f0f"}},
                "body": {**PROMPT, "metadata": {"note": json.dumps({"k": MASTER_KEY})}},
            }
        ],
        "legacy": [],
    }
    return make_pair(
        primary,
        shadow,
        endpoint="messages",
        stream=True,
        request_id=request_id,
        request_body=PROMPT,
        upstream=upstream,
        headers={
            "Authorization": f"Bearer {MASTER_KEY}",
            "x-api-key": ANTHROPIC_KEY,
            "cookie": "session=s3cr3t",
            "user-agent": "claude-cli/2.1.332",
        },
    )


def _dump(value: object) -> str:
    return json.dumps(value, default=lambda o: o.__dict__)


def test_credential_headers_masked_at_any_depth_case_insensitive() -> None:
    redacted = Redactor().redact_pair(_leaky_pair())
    assert redacted.request.headers["Authorization"] == REDACTED
    assert redacted.request.headers["x-api-key"] == REDACTED
    assert redacted.request.headers["cookie"] == REDACTED
    assert redacted.request.headers["user-agent"] == "claude-cli/2.1.332"
    assert redacted.primary.headers["Set-Cookie"] == REDACTED
    upstream = redacted.upstream["sdk"][0]
    assert upstream["headers"] == {"X-Api-Key": REDACTED, "x-supermemory-api-key": REDACTED}
    # A credentials summary keeps its shape: presence and fingerprint are not secrets.
    assert upstream["credentials"] == {"x-api-key": {"present": True, "sha256": "0f0f0f0f0f0f"}}


def test_a_key_a_client_put_in_the_body_is_masked() -> None:
    # Clients may send api_key in the body (the proxy refuses it, but it is captured).
    body = {"model": "gpt-4o", "api_key": "sk-client-0123456789", "extra": {"APIKey": "x1y2"}}
    assert Redactor().redact(body) == {
        "model": "gpt-4o",
        "api_key": REDACTED,
        "extra": {"APIKey": REDACTED},
    }


def test_empty_credential_header_stays_empty() -> None:
    assert Redactor().redact({"x-supermemory-api-key": ""}) == {"x-supermemory-api-key": ""}


def test_configured_secrets_replaced_everywhere() -> None:
    pair = _leaky_pair()
    text = _dump(Redactor(SECRETS).redact_pair(pair))
    for secret in SECRETS:
        assert secret not in text
    assert f"bad key {REDACTED}" in text
    assert "/v1/messages?key=" + REDACTED in text
    # Without configured secrets, only the credential headers go.
    assert ANTHROPIC_KEY in _dump(Redactor().redact_pair(pair))


def test_secret_in_dict_keys_and_json_escaped_forms() -> None:
    secret = 'quote"and\\slash-ünï'
    redactor = Redactor([secret])
    value = {secret: 1, "data": json.dumps({"v": secret}), "ascii": json.dumps({"v": secret})}
    text = json.dumps(redactor.redact(value), ensure_ascii=False)
    assert "slash" not in text
    assert "\\u00fc" not in json.dumps(redactor.redact(value))


def test_short_secrets_are_ignored_rather_than_mangling_text() -> None:
    assert Redactor(["ab", ""]).redact_text("abcab") == "abcab"


def test_longest_secret_wins() -> None:
    assert Redactor(["abcd", "abcdefgh"]).redact_text("xabcdefghx") == f"x{REDACTED}x"


def test_prompt_policy_hash() -> None:
    redacted = Redactor(store_prompts="hash").redact_pair(_leaky_pair())
    body = redacted.request.body
    assert body["model"] == "claude-sonnet-4.5" and body["max_tokens"] == 64
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
    hashed = [m["content"] for m in body["messages"]] + [body["system"]]
    assert all(re.fullmatch(r"sha256:[0-9a-f]{16}", h) for h in hashed)
    assert hashed[0] == prompt_hash(PROMPT["messages"][0]["content"])  # stable: slices join
    assert redacted.upstream["sdk"][0]["body"]["messages"][0]["content"].startswith("sha256:")
    # Hashing twice keeps the hash.
    again = Redactor(store_prompts="hash").apply_prompt_policy(body)
    assert again == body


def test_prompt_policy_none_drops_the_text() -> None:
    redacted = Redactor(store_prompts="none").redact_pair(_leaky_pair())
    body = redacted.request.body
    assert body["messages"] == [{"role": "user"}, {"role": "assistant"}]
    assert "system" not in body
    assert "You are terse" not in _dump(redacted)


def test_prompt_policy_full_keeps_the_text() -> None:
    redacted = Redactor(store_prompts="full").redact_pair(_leaky_pair())
    assert redacted.request.body["system"] == PROMPT["system"]


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        Redactor(store_prompts="some")  # type: ignore[arg-type]


def _scan(directory: Path, secrets: tuple[str, ...]) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for path in directory.iterdir():
        raw = path.read_bytes()
        found = [s for s in secrets if s.encode() in raw]
        if found:
            hits[path.name] = found
    return hits


def test_no_secret_bytes_in_database_or_wal(tmp_path: Path) -> None:
    store = CaptureStore(tmp_path / "shadow.db", redactor=Redactor(SECRETS, store_prompts="full"))
    for i in range(50):
        assert store.put(_leaky_pair(f"req-{i}"))
        assert store.put(make_pair(chat_observation(), chat_observation(target="legacy")))
    assert store.flush(10)
    files = {p.name for p in tmp_path.iterdir()}
    assert "shadow.db-wal" in files  # scanned while the WAL still holds the rows
    assert _scan(tmp_path, (*SECRETS, "s3cr3t")) == {}
    store.close()
    assert store.count() == 100
    assert _scan(tmp_path, (*SECRETS, "s3cr3t")) == {}
    # The export carries the redacted rows only.
    store.export_jsonl(tmp_path / "pairs.jsonl")
    assert _scan(tmp_path, (*SECRETS, "s3cr3t")) == {}
