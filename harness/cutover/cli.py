"""Command-line wiring for ``harness cutover`` and ``harness rollback``."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cutover.canary.command import (
    add_canary_arguments,
    roll_back_canary,
    run_canary,
    show_status,
)
from harness.cutover.switch import SwitchOptions, cutover, rollback

__all__ = ["add_arguments", "add_rollback_arguments", "run", "run_rollback"]


def _add_switch_arguments(parser: argparse.ArgumentParser, *, with_report: bool) -> None:
    parser.add_argument("--config", default="config/config.yaml", type=Path)
    parser.add_argument(
        "--run-root", default="runs", type=Path, help="where `memory-proxy up` run folders live"
    )
    parser.add_argument("--records", default="reports/cutover", type=Path)
    parser.add_argument("--sdk-port", type=int, default=8764, help="the main port")
    parser.add_argument("--legacy-port", type=int)
    parser.add_argument("--litellm-port", type=int)
    parser.add_argument(
        "--no-restart",
        action="store_true",
        help="only change the config; restart the stack yourself",
    )
    if with_report:
        parser.add_argument("--report", default="reports/latest", type=Path)
        parser.add_argument(
            "--force", action="store_true", help="cut over without a GO report (needs --reason)"
        )
        parser.add_argument("--reason", help="why the cutover is forced (recorded)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_switch_arguments(parser, with_report=True)
    add_canary_arguments(parser)


def add_rollback_arguments(parser: argparse.ArgumentParser) -> None:
    _add_switch_arguments(parser, with_report=False)
    parser.add_argument(
        "--store",
        default="reports/shadow.db",
        type=Path,
        help="where a running canary's state is (harness cutover --canary)",
    )


def _options(args: argparse.Namespace) -> SwitchOptions:
    ports = {"sdk": args.sdk_port}
    if args.legacy_port:
        ports["legacy"] = args.legacy_port
    if args.litellm_port:
        ports["litellm"] = args.litellm_port
    return SwitchOptions(
        config=args.config,
        run_root=args.run_root,
        records=args.records,
        ports=ports,
        restart=not args.no_restart,
    )


def run(args: argparse.Namespace) -> int:
    if args.status:
        return show_status(args.store)
    if args.canary:
        return run_canary(args, _options(args))
    if args.force and not args.reason:
        print("cutover: --force needs --reason '...' (it is recorded)")
        return 2
    return cutover(_options(args), args.report, args.reason if args.force else None)


def run_rollback(args: argparse.Namespace) -> int:
    canary = roll_back_canary(args.store)
    if canary is not None and canary.active and canary.percent < 100:
        # Before its last step a canary never touched the config: the front door's
        # switch back to legacy is the whole rollback.
        return 0
    return rollback(_options(args))
