"""``harness replay`` against the real SDK proxy (sandbox upstream), and ``harness record``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import pytest

from harness.corpus import KEY_PLACEHOLDER, CorpusEntry, load_corpus
from harness.loopback import LoopbackServer
from harness.observation import CapturedPair, CapturedRequest, Observation
from harness.redaction import Redactor
from harness.replay.cli import add_arguments as add_replay_arguments
from harness.replay.cli import add_record_arguments
from harness.replay.cli import run as replay_command
from harness.replay.cli import run_record as record_command
from harness.replay.record import WRONG_KEY, record
from harness.replay.sender import ReplayPlan, replay
from harness.sandbox.client import SandboxControl
from harness.store.capture_store import CaptureStore
from tests.conftest import MASTER_KEY

CORPUS = load_corpus()


def _by_id(*ids: str) -> list[CorpusEntry]:
    wanted = {e.id: e for e in CORPUS if e.id in ids}
    return [wanted[i] for i in ids]


def test_corpus_replays_with_no_mismatch(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    summary = replay(ReplayPlan(CORPUS, sdk_proxy.url, MASTER_KEY, concurrency=8, progress=False))

    assert summary.mismatches == ()
    assert summary.ok and summary.total == len(CORPUS)
    statuses = {o.entry_id: o.status for o in summary.outcomes}
    for entry in CORPUS:
        if entry.expects_success:
            assert statuses[entry.id] == 200, entry.id
        else:
            assert statuses[entry.id] in entry.expect_status, entry.id
    assert set(summary.status_counts) >= {"200", "400", "401", "404"}
    assert summary.endpoint_counts.keys() == {"chat", "messages", "count_tokens", "models"}
    assert summary.latency_p50_ms is not None and summary.latency_p95_ms is not None
    assert summary.latency_p50_ms <= summary.latency_p95_ms
    # Requests that must fail are refused by the proxy, never sent upstream.
    sent = {r["endpoint"] for r in sandbox.api_requests()}
    assert sent and len(sandbox.api_requests()) < len(CORPUS)


def test_a_wrong_answer_is_a_mismatch(sdk_proxy: LoopbackServer, sandbox: SandboxControl) -> None:
    (basic, stream, unknown) = _by_id("chat-basic", "msg-basic-stream", "fail-unknown-model-chat")
    # A 200 stream that carries an error event is not a success.
    broken_stream = dataclasses.replace(
        stream,
        id="broken-stream",
        body={
            **stream.body,
            "messages": [{"role": "user", "content": "hi [sandbox:stream_error=3]"}],
        },
    )
    wrong_expectation = dataclasses.replace(unknown, id="wrong-expectation", expect_status=(200,))
    summary = replay(
        ReplayPlan(
            [basic, broken_stream, wrong_expectation], sdk_proxy.url, MASTER_KEY, progress=False
        )
    )

    mismatches = {m.entry_id: m for m in summary.mismatches}
    assert mismatches.keys() == {"broken-stream", "wrong-expectation"}
    assert "stream error event" in mismatches["broken-stream"].detail
    assert mismatches["wrong-expectation"].got == 404
    assert "is not served here" in mismatches["wrong-expectation"].detail
    assert not summary.ok
    assert "wrong-expectation: expected 200, got 404" in summary.format()


def test_an_unreachable_target_is_reported_not_raised() -> None:
    summary = replay(
        ReplayPlan(_by_id("chat-basic"), "http://127.0.0.1:1", MASTER_KEY, progress=False)
    )
    assert summary.status_counts == {"error": 1}
    assert summary.mismatches[0].got is None
    assert "ConnectError" in summary.mismatches[0].detail


def test_rate_loop_and_progress(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _by_id("chat-basic", "models-curl-nov1", "fail-bad-auth-chat")
    started = time.perf_counter()
    summary = replay(ReplayPlan(entries, sdk_proxy.url, MASTER_KEY, rate=20, concurrency=4, loop=2))
    elapsed = time.perf_counter() - started

    assert summary.total == 6 and summary.ok
    assert summary.status_counts == {"200": 4, "401": 2}
    assert elapsed >= 5 / 20  # the sixth request leaves 0.25 s after the first
    err = capsys.readouterr().err
    assert "replay [" in err and "6/6" in err and "mismatches 0" in err


def test_replay_command(
    sdk_proxy: LoopbackServer,
    sandbox: SandboxControl,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    corpus = tmp_path / "small.jsonl"
    corpus.write_text(
        "\n".join(
            line
            for line in Path("harness/corpus/requests.jsonl").read_text().splitlines()
            if json.loads(line)["id"] in ("chat-basic", "cc-turn", "fail-no-max-tokens")
        )
        + "\n"
    )
    parser = argparse.ArgumentParser()
    add_replay_arguments(parser)
    args = parser.parse_args(
        [str(corpus), "--target", sdk_proxy.url, "--key", MASTER_KEY, "--no-progress"]
    )
    assert replay_command(args) == 0
    out = capsys.readouterr().out
    assert "replayed 3 requests" in out and "mismatches: 0" in out
    assert MASTER_KEY not in out


def _captured(entry: CorpusEntry, status: int | None, row: int) -> CapturedPair:
    """A pair as the shadow captures it, credential headers included (the store redacts)."""
    headers = entry.send_headers(MASTER_KEY)
    request = CapturedRequest(
        request_id=f"req-{row}",
        received_at=1_780_000_000.0 + row,
        method=entry.method,
        path=entry.path,
        endpoint=entry.endpoint,
        model=entry.model,
        stream=entry.stream,
        user_id=None,
        conversation_id=None,
        client_family=entry.client_family,
        headers=headers,
        body=entry.body,
    )
    return CapturedPair(request, Observation("sdk", status))


def test_record_round_trip(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl, tmp_path: Path
) -> None:
    sources = [e for e in CORPUS if isinstance(e.body, dict | None)][:40]
    store_path = tmp_path / "shadow.db"
    with CaptureStore(store_path) as store:
        for i, entry in enumerate(sources):
            store.put(_captured(entry, entry.expect_status[0], i))
        store.put(_captured(sources[0], None, 99))  # no answer: nothing to expect
    out = tmp_path / "recorded.jsonl"

    summary = record(store_path, out)

    assert (summary.written, summary.skipped, summary.hashed) == (len(sources), 1, 0)
    text = out.read_text(encoding="utf-8")
    assert MASTER_KEY not in text and "[REDACTED]" not in text
    recorded = load_corpus(out)
    for entry, source in zip(recorded, sources, strict=True):
        assert entry.body == source.body and entry.path == source.path
        assert entry.expect_status == source.expect_status
        auth = entry.header("x-api-key") or entry.header("authorization") or ""
        assert (WRONG_KEY if 401 in source.expect_status else KEY_PLACEHOLDER) in auth
        assert entry.user_agent == source.user_agent
    replayed = replay(
        ReplayPlan(recorded, sdk_proxy.url, MASTER_KEY, concurrency=8, progress=False)
    )
    assert replayed.mismatches == ()


def test_record_counts_hashed_prompts(tmp_path: Path) -> None:
    store_path = tmp_path / "hashed.db"
    (entry,) = _by_id("chat-basic")
    with CaptureStore(store_path, redactor=Redactor(store_prompts="hash")) as store:
        store.put(_captured(entry, 200, 1))
    summary = record(store_path, tmp_path / "out.jsonl")
    assert (summary.written, summary.hashed) == (1, 1)


def test_record_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_record_arguments(parser)
    missing = parser.parse_args(["--store", str(tmp_path / "none.db"), "--out", "x.jsonl"])
    assert record_command(missing) == 1
    assert "no capture store" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
