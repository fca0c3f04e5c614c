"""``GET /metrics`` on the legacy proxy: the same metrics as the SDK proxy's, under
``proxy="legacy"``, behind the same key. Slow: the legacy proxy forwards to the real
LiteLLM server. The session's proxy is shared, so counts are compared before and after."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from harness.loopback import LoopbackServer
from memory_proxy.config import load_config
from tests.conftest import MASTER_KEY
from tests.metrics_scrape import scrape

pytestmark = pytest.mark.slow

USER_ID = "user-bob-legacy-91ac"


def test_legacy_requests_are_counted_and_the_scrape_is_clean(
    legacy_proxy: LoopbackServer, sandbox_config_path: Path
) -> None:
    total = "memory_proxy_requests_total"
    labels = {"proxy": "legacy", "endpoint": "chat", "route": "gpt-4o", "status_class": "2xx"}
    before = scrape(legacy_proxy.url, MASTER_KEY)
    client = openai.OpenAI(
        base_url=legacy_proxy.url + "/v1",
        api_key=MASTER_KEY,
        max_retries=0,
        default_headers={"x-memory-user-id": USER_ID},
    )
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])

    after = scrape(legacy_proxy.url, MASTER_KEY)
    assert (
        after.value(total, **labels, client_family="openai-sdk")
        - before.value(total, **labels, client_family="openai-sdk")
        == 2
    )
    duration = "memory_proxy_request_duration_seconds_bucket"
    assert (
        after.value(duration, proxy="legacy", endpoint="chat", le="+Inf")
        - before.value(duration, proxy="legacy", endpoint="chat", le="+Inf")
        == 2
    )

    assert httpx.get(legacy_proxy.url + "/metrics", timeout=10).status_code == 401
    for needle in (*load_config(sandbox_config_path).secrets, USER_ID):
        assert needle not in after.text
