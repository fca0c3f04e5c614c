"""``harness load``: the command line of the load driver (:mod:`harness.load.driver`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.corpus import CORPUS_PATH, dump_corpus, load_corpus
from harness.corpus.models import fit_models, parse_model_map
from harness.load.driver import PROFILE_DURATIONS, LoadPlan, run_load
from harness.load.targets import (
    LoadTarget,
    RemoteTargetRefused,
    check_loopback,
    parse_duration,
    parse_target,
)
from harness.replay.target_key import add_key_arguments, resolve_key
from harness.settings import load_harness_settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        action="append",
        required=True,
        metavar="NAME=URL",
        help="a proxy to load (repeatable; run in turn, in the order given)",
    )
    parser.add_argument("--profile", choices=sorted(PROFILE_DURATIONS), default="criterion")
    parser.add_argument("--users", type=int, default=50, help="concurrent users (ramp: peak)")
    parser.add_argument(
        "--duration", help="e.g. 60s, 5m (default: criterion 60s, ramp 2m, soak 30m)"
    )
    parser.add_argument("--spawn-rate", type=float, help="users started a second")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        metavar="K",
        help="send the corpus's successful requests K times before measuring (0: none)",
    )
    parser.add_argument("--store", help="capture store for the results (default: harness.yaml's)")
    parser.add_argument("--no-store", action="store_true", help="do not store the results")
    parser.add_argument("--out", default="reports/load", help="where CSV and HTML files go")
    parser.add_argument("--corpus", help="JSONL corpus the bodies come from (default: built-in)")
    parser.add_argument(
        "--model-map",
        metavar="CORPUS=TARGET,...",
        help="send the corpus's model CORPUS as TARGET (default: models the --config does "
        "not serve are mapped to one of the same provider it does, and the mapping printed)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow targets (and a --master-bind) that are not loopback",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="Locust's distributed mode: a master and N worker processes here (default: one "
        "process)",
    )
    parser.add_argument(
        "--remote-workers",
        type=int,
        default=0,
        metavar="M",
        help="the master also waits for M workers started on other machines with "
        "`locust -f loadtests/locustfile.py --worker --master-host HOST`",
    )
    parser.add_argument(
        "--master-bind",
        default="127.0.0.1",
        metavar="HOST",
        help="where the master listens for workers (beyond loopback: needs --allow-remote)",
    )
    parser.add_argument(
        "--master-port", type=int, default=0, help="the master's port (default: a free one)"
    )
    parser.add_argument("--harness-config", default="config/harness.yaml")
    parser.add_argument("--max-failure-ratio", type=float, help="SLO override")
    parser.add_argument("--p95-ms", type=float, help="SLO override")
    parser.add_argument(
        "--pid",
        action="append",
        default=[],
        metavar="NAME=PID",
        help="the process to sample for a target (default: the one listening on its port)",
    )
    add_key_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """``harness load``; see the module docstring for the exit status."""
    try:
        targets = [parse_target(t) for t in args.target]
        pids = _parse_pids(args.pid, {t.name for t in targets})
        duration = (
            parse_duration(args.duration) if args.duration else PROFILE_DURATIONS[args.profile]
        )
    except ValueError as exc:
        print(f"harness load: {exc}", file=sys.stderr)
        return 2
    targets = [LoadTarget(t.name, t.url, pids.get(t.name)) for t in targets]
    try:
        check_loopback(targets, args.allow_remote)
        _check_workers(args)
    except (RemoteTargetRefused, ValueError) as exc:
        print(f"harness load: {exc}", file=sys.stderr)
        return 2
    config_path = Path(args.harness_config) if args.harness_config else None
    settings = load_harness_settings(config_path if config_path and config_path.is_file() else None)
    settings = settings.with_overrides(
        "load", max_failure_ratio=args.max_failure_ratio, p95_ms=args.p95_ms
    )
    store = None if args.no_store else (args.store or settings.capture.store)
    corpus = _fitted_corpus(args)
    plan = LoadPlan(
        targets=tuple(targets),
        key=resolve_key(args.key, args.config),
        profile=args.profile,
        users=args.users,
        duration_s=duration,
        spawn_rate=args.spawn_rate,
        seed=args.seed,
        out_dir=Path(args.out),
        store=store,
        max_failure_ratio=settings.load.max_failure_ratio,
        p95_ms=settings.load.p95_ms,
        allow_remote=args.allow_remote,
        corpus=corpus,
        warmup_loops=args.warmup,
        workers=args.workers,
        remote_workers=args.remote_workers,
        master_bind=args.master_bind,
        master_port=args.master_port,
    )
    return run_load(plan).exit_code


def _fitted_corpus(args: argparse.Namespace) -> Path | None:
    """The corpus with its models fitted to the proxy (:mod:`harness.corpus.models`),
    written beside the load's output when a model had to be mapped; the mapping printed."""
    given = Path(args.corpus) if args.corpus else None
    entries = load_corpus(given or CORPUS_PATH)
    fitted, lines = fit_models(entries, parse_model_map(args.model_map), args.config)
    for line in lines:
        print(line, file=sys.stdout)
    if fitted == entries:
        return given
    path = Path(args.out) / "corpus-fitted.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    dump_corpus(fitted, path)
    return path


def _check_workers(args: argparse.Namespace) -> None:
    if args.workers < 0 or args.remote_workers < 0:
        raise ValueError("--workers and --remote-workers: expected >= 0")
    if args.remote_workers and not args.master_port:
        raise ValueError("--remote-workers: give --master-port, the port they join")
    loopback = args.master_bind in ("127.0.0.1", "localhost", "::1")
    if not loopback and not args.allow_remote:
        raise RemoteTargetRefused(
            f"--master-bind {args.master_bind}: the master would listen beyond loopback; "
            "add --allow-remote to let workers on other machines join"
        )


def _parse_pids(values: Sequence[str], names: set[str]) -> dict[str, int]:
    pids = {}
    for value in values:
        name, sep, pid = value.partition("=")
        if not sep or not pid.isdigit():
            raise ValueError(f"--pid {value!r}: expected NAME=PID")
        if name not in names:
            raise ValueError(f"--pid {value!r}: no target named {name}")
        pids[name] = int(pid)
    return pids
