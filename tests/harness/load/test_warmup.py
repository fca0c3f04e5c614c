"""The warm-up stops a run that cannot measure anything: a setup failure (unknown model,
a refused key) or a target failing from the start, with one clear message, no load."""

from __future__ import annotations

import io
from pathlib import Path

from harness.corpus import CORPUS_PATH, dump_corpus, load_corpus
from harness.corpus.models import apply_model_map
from harness.load.driver import LoadPlan, run_load
from harness.load.targets import LoadTarget
from harness.load.warmup import warmup_verdict
from harness.loopback import LoopbackServer
from harness.replay.sender import ReplayOutcome, ReplayPlan, replay
from tests.conftest import MASTER_KEY
from tests.harness.shadow.test_mirror import FakeShadow


def _outcome(status: int | None, problem: str | None = "failed") -> ReplayOutcome:
    return ReplayOutcome("chat-basic", "chat", status, 5.0, problem)


def test_setup_failures_stop_at_once() -> None:
    unknown = _outcome(404, 'status 404: {"error": {"message": "model \'gpt-4o\' is not served"}}')
    verdict = warmup_verdict([_outcome(200, None), unknown])
    assert verdict is not None and verdict.startswith("setup: chat request 'chat-basic'")
    assert "--model-map" in verdict
    refused = warmup_verdict([_outcome(401, "status 401: invalid key")])
    assert refused is not None and "the key" in refused


def test_a_target_failing_from_the_start_is_unhealthy_and_a_stray_failure_is_not() -> None:
    cascade = [_outcome(429), _outcome(429), _outcome(None, "ReadTimeout: "), _outcome(504)]
    verdict = warmup_verdict(cascade)
    assert verdict == (
        "unhealthy: the first 4 warm-up requests all failed: 429 x2, no answer (ReadTimeout) x1, "
        "504 x1"
    )
    assert warmup_verdict([_outcome(200, None), *cascade[:3]]) is None


def test_the_replay_deadline_cuts_a_hung_target() -> None:
    entries = [e for e in load_corpus(CORPUS_PATH) if e.expects_success][:8]
    hung = FakeShadow("hang")
    with LoopbackServer(hung.app) as server:
        try:
            summary = replay(
                ReplayPlan(entries, server.url, MASTER_KEY, progress=False, deadline_s=0.5)
            )
        finally:
            hung.released.set()
    assert summary.stopped is not None and summary.stopped.startswith("deadline: 0 of 8")


def test_load_against_a_proxy_that_serves_other_models_stops_before_the_load(
    sdk_proxy: LoopbackServer, sandbox: object, tmp_path: Path
) -> None:
    # The corpus asks for a model this proxy does not serve, as the bundled one did for a
    # user whose config names gpt-4o-mini.
    corpus = tmp_path / "corpus.jsonl"
    dump_corpus(apply_model_map(load_corpus(CORPUS_PATH), {"gpt-4o": "gpt-4o-mini"}), corpus)
    out = io.StringIO()
    plan = LoadPlan(
        targets=(LoadTarget("sdk", sdk_proxy.url),),
        key=MASTER_KEY,
        duration_s=5,
        out_dir=tmp_path / "load",
        store=None,
        corpus=corpus,
    )
    report = run_load(plan, out=out)
    (result,) = report.results
    assert result.status == "misconfigured" and report.exit_code == 1
    assert "gpt-4o-mini" in result.reason and "--model-map" in result.reason
    assert "misconfigured:" in out.getvalue() and "no load sent" in out.getvalue()
    assert "warm-up: " in out.getvalue()
    assert not (tmp_path / "load").exists() or not any((tmp_path / "load").rglob("locust*"))
