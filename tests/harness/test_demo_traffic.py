"""The demo sends enough traffic for every gate to decide: sizing from min_samples."""

from __future__ import annotations

from collections import Counter

from harness.corpus import CORPUS_PATH, load_corpus
from harness.demo.traffic import health_checks_needed, replay_loops, top_up


def test_the_thinnest_latency_slice_reaches_min_samples() -> None:
    entries = load_corpus(CORPUS_PATH)
    loops = replay_loops(entries, 20)
    # count_tokens has the fewest successful requests: each slice gets >= 20 samples.
    thinnest = sum(
        1 for e in entries if e.endpoint == "count_tokens" and not e.stream and e.expects_success
    )
    # ... with a 10 % margin, and not a loop more than that takes.
    assert thinnest * loops >= 22 > thinnest * (loops - 1)
    assert replay_loops(entries, 1) == 1


def test_enough_health_checks_for_the_mirrored_share_to_reach_min_samples() -> None:
    assert health_checks_needed(20, 10.0) * 10 // 100 >= 20
    assert health_checks_needed(20, 100.0) >= 20
    assert health_checks_needed(20, 0.0) == 0


def test_the_thin_slices_are_topped_up_to_the_p95_minimum_and_only_they() -> None:
    entries = load_corpus(CORPUS_PATH)
    loops = replay_loops(entries, 20)
    extra, more = top_up(entries, loops, 50)
    slices = Counter((e.endpoint, e.stream) for e in entries if e.expects_success)
    topped = {(e.endpoint, e.stream) for e in extra}
    assert extra and all(e.expects_success for e in extra)
    for key, count in slices.items():
        total = count * loops + (count * more if key in topped else 0)
        assert total >= 55, key  # every slice reaches 50 with the 10 % margin
        # ... and a slice is topped up only when the corpus loops left it short.
        assert (key in topped) == (count * loops < 55), key
    assert top_up(entries, loops, 20) == ([], 0)
