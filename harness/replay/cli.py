"""``harness replay`` and ``harness record``: a corpus sent to a proxy, and captures as one.

``harness replay`` sends each corpus entry and checks its answer (:mod:`harness.replay.sender`);
``harness record`` goes the other way: the shadow store's captured client requests become a
corpus (:mod:`harness.replay.record`).
"""

from __future__ import annotations

import argparse
import sys

from harness.corpus import CORPUS_PATH, load_corpus
from harness.corpus.models import fit_models, parse_model_map
from harness.replay.record import record
from harness.replay.sender import ReplayPlan, replay
from harness.replay.target_key import add_key_arguments, resolve_key
from harness.store.capture_store import DEFAULT_PATH

__all__ = ["add_arguments", "add_record_arguments", "run", "run_record"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "corpus", nargs="?", default=str(CORPUS_PATH), help="JSONL corpus (default: built-in)"
    )
    parser.add_argument("--target", required=True, help="base URL of the proxy to replay to")
    parser.add_argument("--rate", type=float, help="at most this many requests a second")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--loop", type=int, default=1, help="send the corpus this many times")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--model-map",
        metavar="CORPUS=TARGET,...",
        help="send the corpus's model CORPUS as TARGET (default: models the --config does "
        "not serve are mapped to one of the same provider it does, and the mapping printed)",
    )
    add_key_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """``harness replay``: 0 when every answer met its expectation, 1 otherwise."""
    key = resolve_key(args.key, args.config)
    entries, lines = fit_models(
        load_corpus(args.corpus), parse_model_map(args.model_map), args.config
    )
    for line in lines:
        print(line, file=sys.stderr)
    summary = replay(
        ReplayPlan(
            entries,
            args.target,
            key,
            rate=args.rate,
            concurrency=args.concurrency,
            loop=args.loop,
            progress=not args.no_progress,
            timeout=args.timeout,
        )
    )
    print(summary.format())
    return 0 if summary.ok else 1


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=str(DEFAULT_PATH), help="the shadow capture store")
    parser.add_argument("--out", required=True, help="JSONL corpus to write")


def run_record(args: argparse.Namespace) -> int:
    """``harness record``: 0 when written, 1 when the store is missing."""
    try:
        summary = record(args.store, args.out)
    except FileNotFoundError as exc:
        print(f"harness record: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {summary.written} requests to {args.out} (skipped {summary.skipped} unanswered)")
    if summary.unreadable:
        print(
            f"note: {summary.unreadable} rows of the store could not be read (not JSON or "
            "malformed): not recorded",
            file=sys.stderr,
        )
    if summary.hashed:
        print(
            f"note: {summary.hashed} requests have hashed prompts (capture.store_prompts is "
            "not 'full'): they replay with the hashes as text",
            file=sys.stderr,
        )
    return 0
