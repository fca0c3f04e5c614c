"""config/grafana/memory-proxy.json: every panel queries metrics a running proxy exports.

The names come from a live scrape of `harness shadow` (the SDK proxy's ``memory_proxy_*``
metrics plus the mirror's ``shadow_*``; the legacy proxy exports the same
``memory_proxy_*`` names through the same code), not from a list kept by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness.loopback import LoopbackServer
from harness.settings import CaptureSettings, HarnessSettings, ShadowSettings
from harness.shadow.server import build_shadow
from memory_proxy.config import load_config
from tests.conftest import MASTER_KEY
from tests.metrics_scrape import wait_for_sample

DASHBOARD = Path(__file__).resolve().parents[2] / "config" / "grafana" / "memory-proxy.json"
# Our metrics' prefixes; anything else in a query is PromQL (functions, labels, keywords).
METRIC = re.compile(r"\b(?:memory_proxy|shadow)_[a-z0-9_]+\b")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def _exported(text: str) -> set[str]:
    """Every series name the scrape declares, also for families with no sample yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def test_every_panel_queries_an_exported_metric(
    sandbox_config_path: Path, sandbox: Any, sdk_proxy: LoopbackServer, tmp_path: Path
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = _queries(dashboard)
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels and all(p["targets"] for p in panels)

    settings = HarnessSettings(
        shadow=ShadowSettings(mirror_to=sdk_proxy.url, aa_rate=0.0),
        capture=CaptureSettings(store=tmp_path / "shadow.db"),
    )
    run = build_shadow(load_config(sandbox_config_path), settings)
    try:
        with LoopbackServer(run.app) as shadow:
            body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
            auth = {"x-api-key": MASTER_KEY}
            assert httpx.post(shadow.url + "/v1/chat/completions", json=body, headers=auth)
            # The store's metrics appear with the sidecar's first report of the pair.
            text = wait_for_sample(
                shadow.url,
                MASTER_KEY,
                lambda s: s.value("shadow_store_rows_total", state="written") == 1,
            ).text
    finally:
        run.close()
    exported = _exported(text)

    for title, expr in queries:
        used = METRIC.findall(expr)
        assert used, f"{title}: no metric of ours in {expr!r}"
        missing = [name for name in used if name not in exported]
        assert not missing, f"{title}: {missing} not exported"
