from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from harness.sandbox import SandboxSettings
from harness.sandbox.capture import CaptureStore, fingerprint, mask_secret
from tests.harness.sandbox.bodies import API_KEY, anthropic_body, openai_body

SUPERMEMORY_KEY = "sm_live_SUPERMEMORYSECRET_9876"
BEARER = "sk-proj-BEARERSECRETVALUE-5555"
COOKIE_SECRET = "sessionSECRETcookieVALUE"


async def _captures(client: httpx.AsyncClient, since: int = 0) -> dict[str, Any]:
    response = await client.get("/_sandbox/requests", params={"since": since})
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("sk-ant-api03-abcdefghijkl-wxyz", "sk-...wxyz"),
        ("Bearer sk-ant-api03-abcdefghijkl-wxyz", "Bearer sk-...wxyz"),
        ("short", "<masked>"),
        ("Bearer short", "Bearer <masked>"),
    ],
)
def test_mask_secret(value: str, masked: str) -> None:
    assert mask_secret(value) == masked


def test_store_is_a_bounded_ring_with_monotonic_sequence() -> None:
    store = CaptureStore(limit=3)
    for _ in range(5):
        store.record(method="GET", path="/", query="", headers=[], body=b"")
    assert [r.seq for r in store.since()] == [3, 4, 5]
    assert [r.seq for r in store.since(3)] == [4, 5]
    assert [r.seq for r in store.since(0, limit=1)] == [3]
    store.clear()
    store.record(method="GET", path="/", query="", headers=[], body=b"")
    assert [r.seq for r in store.since()] == [6]


async def test_secrets_are_masked_but_visible_as_present(client: httpx.AsyncClient) -> None:
    headers = {
        "authorization": f"Bearer {BEARER}",
        "x-supermemory-api-key": SUPERMEMORY_KEY,
        "cookie": f"__cf_bm=abc.def; session={COOKIE_SECRET}",
    }
    await client.post(
        "/v3/api.anthropic.com/v1/messages?beta=true", json=anthropic_body(), headers=headers
    )
    [record] = (await _captures(client))["requests"]
    dumped = json.dumps(record)
    for secret in (API_KEY, BEARER, SUPERMEMORY_KEY, COOKIE_SECRET):
        assert secret not in dumped
    assert record["headers"]["x-api-key"] == "sk-...wxyz"
    assert record["headers"]["authorization"] == "Bearer sk-...5555"
    assert record["headers"]["cookie"] == "__cf_bm=<masked>; session=<masked>"
    assert record["cookies"] == ["__cf_bm", "session"]
    credentials = record["credentials"]
    assert set(credentials) == {"x-api-key", "authorization", "x-supermemory-api-key"}
    assert credentials["x-api-key"]["sha256"] == fingerprint(API_KEY)
    assert credentials["authorization"]["sha256"] == fingerprint(BEARER)
    assert all(c["present"] for c in credentials.values())
    assert (record["path"], record["query"]) == ("/v3/api.anthropic.com/v1/messages", "beta=true")
    assert record["endpoint"] == "anthropic.messages"


async def test_record_describes_the_exchange(client: httpx.AsyncClient) -> None:
    await client.post("/v1/chat/completions", json=openai_body("hi [sandbox:delay_ms=1]"))
    [record] = (await _captures(client))["requests"]
    assert record["seq"] == 1 and record["method"] == "POST"
    assert record["body"] == openai_body("hi [sandbox:delay_ms=1]") and record["body_is_json"]
    assert record["status"] == 200 and record["stream"] is False
    assert record["completed"] is True and record["outcome"] == "completed"
    assert record["faults"] == ["delay_ms=1 (directive)"]
    assert record["request_id"].startswith("req_")
    assert record["cookie_issued"] is True and record["cookie_valid"] is False
    assert record["duration_ms"] >= 1


async def test_streamed_exchange_is_recorded_complete(client: httpx.AsyncClient) -> None:
    await client.post("/v1/messages", json=anthropic_body(stream=True))
    [record] = (await _captures(client))["requests"]
    assert (record["stream"], record["completed"], record["outcome"]) == (True, True, "completed")


async def test_rejected_and_unparsable_requests_are_captured(client: httpx.AsyncClient) -> None:
    await client.post("/v1/messages", content=b"not json at all", headers={"x-api-key": ""})
    await client.post("/v1/messages", content=b"\xff\xfe{")
    await client.get("/nowhere")
    first, second, third = (await _captures(client))["requests"]
    assert (first["status"], first["body"], first["body_is_json"]) == (
        401,
        "not json at all",
        False,
    )
    assert first["credentials"] == {"x-api-key": {"present": False, "masked": "", "sha256": None}}
    assert second["status"] == 400 and second["body_is_json"] is False
    assert (third["status"], third["endpoint"], third["body"]) == (404, None, None)


async def test_since_next_and_clear(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.get("/v1/models")
    page = await _captures(client)
    assert [r["seq"] for r in page["requests"]] == [1, 2, 3] and page["next"] == 3
    await client.get("/v1/models")
    page = await _captures(client, since=page["next"])
    assert [r["seq"] for r in page["requests"]] == [4] and page["next"] == 4
    assert (await _captures(client, since=4)) == {"requests": [], "next": 4}
    limited = (await client.get("/_sandbox/requests", params={"limit": 2})).json()
    assert [r["seq"] for r in limited["requests"]] == [1, 2] and limited["next"] == 2
    assert (await client.get("/_sandbox/requests", params={"since": "x"})).status_code == 400
    cleared = await client.delete("/_sandbox/requests")
    assert cleared.json() == {"cleared": 4, "next": 4}
    assert (await _captures(client))["requests"] == []


async def test_control_requests_are_not_captured(client: httpx.AsyncClient) -> None:
    assert (await client.get("/_sandbox/health")).json() == {"status": "ok"}
    assert (await client.get("/_sandbox/unknown")).status_code == 404
    await client.get("/_sandbox/settings")
    assert (await _captures(client))["requests"] == []


@pytest.mark.parametrize("settings", [SandboxSettings(capture_limit=2, seed=4)])
async def test_capture_limit_and_settings_endpoint(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.get("/v1/models")
    assert [r["seq"] for r in (await _captures(client))["requests"]] == [2, 3]
    shown = (await client.get("/_sandbox/settings")).json()
    assert (shown["capture_limit"], shown["seed"]) == (2, 4)


async def test_reset_clears_captures_and_restores_faults(client: httpx.AsyncClient) -> None:
    await client.put("/_sandbox/faults", json={"error_rate_500": 1})
    assert (await client.post("/v1/messages", json=anthropic_body())).status_code == 500
    assert (await client.post("/_sandbox/reset")).json() == {"status": "reset"}
    assert (await _captures(client))["requests"] == []
    assert (await client.get("/_sandbox/faults")).json()["error_rate_500"] == 0
    assert (await client.post("/v1/messages", json=anthropic_body())).status_code == 200
