"""`make demo` runs `harness demo`: the same code path, end to end, with a shorter load."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from harness.demo import run_demo
from harness.demo.tour import STEPS
from memory_proxy.config import load_config
from tests.conftest import MASTER_KEY


@pytest.mark.slow
@pytest.mark.longest
# A hang guard, not a time limit: the journey to the cutover drill starts three LiteLLM
# servers, and the suite runs it beside three other workers on two cores.
@pytest.mark.timeout(600)
def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The load as long as `make demo`'s: the memory gate decides from 2,000 requests
    # after warm-up, which a shorter one does not reach on a busy machine.
    assert run_demo(tmp_path, load_seconds=15, users=50) == 0
    out = capsys.readouterr().out
    total = len(STEPS)
    mark = {title: f"[{i}/{total}]" for i, title in enumerate(STEPS, 1)}
    # Every step up to the cutover runs; the canary's only after a GO.
    for title in STEPS[: STEPS.index("Cutover, rollback drill, and back") + 1]:
        assert f"{mark[title]} {title}" in out
    replay = out[out.index(mark["Replay the corpus"]) : out.index(mark["Load: the criterion"])]
    assert "mismatches: 0" in replay, replay  # the corpus replayed through shadow mode
    assert re.search(r"metrics: http://127\.0\.0\.1:\d+/metrics", out)
    evidence = out[
        out.index(mark["Upstream evidence"]) : out.index(
            mark["Stopping the shadow run's processes"]
        )
    ]
    for line in ("/metrics mirrored: ", "/metrics difference rate: ", "/metrics store: "):
        assert line in evidence, evidence
    assert re.search(r"Cutover readiness: (GO|NO-GO|INCONCLUSIVE)", out)
    (run_dir,) = (tmp_path / "demo").iterdir()
    # Two reports: the first without accepted differences, the second with the shipped ones.
    first_dir, second_dir = sorted(p.parent for p in tmp_path.glob("2*/report.json"))
    first = json.loads((first_dir / "report.json").read_text())
    latest = tmp_path / "latest"
    assert latest.resolve() == second_dir
    report = json.loads((latest / "report.json").read_text())
    # The first report is NO-GO, the deliberate differences among its regressions.
    assert first["decision"] == "NO-GO"
    assert first["accepted"]["rules"] == []
    regressions = {
        f"{t['endpoint']} {r['key']}"
        for t in first["differences"]
        for r in t["fields"]
        if r["verdict"] == "regression"
    }
    assert {"models body.data[*]", "count_tokens body.input_tokens"} <= regressions
    # The second applied every shipped rule, and names what they took since the first.
    rules = {r["name"]: r for r in report["accepted"]["rules"]}
    assert set(rules) == {
        "unknown-model-404",
        "client-credentials-refused",
        "model-list-from-config",
        "local-token-count",
        "request-checked-locally",
        "openai-error-code",
        "litellm-usage-cost",
        "invalid-json-error-shape",
    }
    assert all(r["state"] == "applied" and r["pairs"] > 0 for r in rules.values()), rules
    assert report["changes"]["against"] == str(first_dir)
    assert {
        "models body.data[*] (schema)",
        "count_tokens body.input_tokens (usage)",
    } <= set(report["changes"]["disappeared"])
    # With the shipped rules the honest verdict is GO: no gate failed, none short of
    # samples, and the journey goes on to the cutover, the rollback drill and back.
    assert report["decision"] == "GO", report["summary"]
    assert all(gate["status"] == "PASS" for gate in report["gates"]), [
        (gate["name"], gate["status"], gate["detail"])
        for gate in report["gates"]
        if gate["status"] != "PASS"
    ]
    records = sorted((run_dir / "cutover" / "records").glob("*.json"))
    results = [json.loads(p.read_text()) for p in records]
    assert [(r["action"], r["result"]) for r in results][-3:] == [
        ("cutover", "done"),
        ("rollback", "done"),
        ("cutover", "done"),
    ]
    assert "cutover drill done" in out
    # Upstream evidence from both sandboxes reached the gates that need it.
    gates = {gate["name"]: gate for gate in report["gates"]}
    assert gates["cookie persistence"]["samples"] > 0
    assert gates["memory routing"]["samples"] > 0
    # The health checks mirrored at the demo's --health-rate: the pairs its p95 needs.
    assert gates["latency: health non-stream"]["samples"] >= 3500
    # The client contract was judged on evidence from the sandbox, header by header.
    contract = gates["client contract"]
    assert contract["samples"] > 0
    assert any(point.startswith("header ") for point in contract["measured"]), contract
    # Every process it started is gone: their ports refuse connections.
    for url in set(re.findall(r"(http://127\.0\.0\.1:\d+)", out)):
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/health/liveliness", timeout=2)
    # No secret reached a log, the store, the load output (Locust's CSV and HTML), the
    # report or the terminal: every configured secret, in every file the demo wrote.
    secrets = sorted(load_config(run_dir / "sdk.yaml").secrets | {MASTER_KEY})
    assert len(secrets) >= 4
    credential = re.compile(
        rb"(?i)(authorization|x-api-key|api[_-]key)[\"']?\s*[:=]\s*[\"']?(bearer\s+)?"
        rb"(sk-[A-Za-z0-9_-]{8,}|sm-[A-Za-z0-9_-]{8,})"
    )
    # Only the configs the demo wrote for its proxies hold keys, as a user's config does.
    files = [
        p
        for p in [*run_dir.rglob("*"), *latest.resolve().rglob("*")]
        if p.is_file() and p.suffix not in {".yaml", ".yml"}
    ]
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"a configured secret in {path}"
        assert credential.search(data) is None, f"a credential value in {path}"
    for secret in secrets:
        assert secret not in out
    suffixes = {p.suffix for p in files}
    assert {".log", ".db", ".csv", ".html", ".json", ".md"} <= suffixes, suffixes
