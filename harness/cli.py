"""``harness``: the migration harness's commands (sandbox provider, demo, ...)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from memory_proxy.errors import ConfigError  # noqa: E402

__all__ = ["main"]


def _sandbox(args: argparse.Namespace) -> int:
    import uvicorn

    from harness.sandbox import create_app, settings_from_args

    settings = settings_from_args(args)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
    return 0


def _shadow(args: argparse.Namespace) -> int:
    from harness.settings import load_harness_settings
    from harness.shadow.server import serve_shadow
    from memory_proxy.cli import configure_logging
    from memory_proxy.config import load_config

    configure_logging()
    config = load_config(args.config)
    settings = load_harness_settings(args.harness_config)
    settings = settings.with_overrides(
        "shadow",
        primary=args.primary,
        mirror_to=args.mirror_to,
        sample_rate=args.sample_rate,
        max_rate=args.max_rate,
    )
    if args.store:
        settings = settings.with_overrides("capture", store=Path(args.store))
    return serve_shadow(config, settings, host=args.host, port=args.port)


def _demo(args: argparse.Namespace) -> int:
    from harness.demo import run_demo

    return run_demo(Path(args.reports))


def build_parser() -> argparse.ArgumentParser:
    from harness.sandbox import add_cli_arguments

    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sandbox = sub.add_parser("sandbox", help="run the sandbox provider (offline fake upstream)")
    add_cli_arguments(sandbox)
    sandbox.set_defaults(func=_sandbox)
    shadow = sub.add_parser(
        "shadow", help="serve the primary proxy and mirror each request to the other"
    )
    shadow.add_argument("--config", default="config/config.yaml")
    shadow.add_argument("--harness-config", default="config/harness.yaml")
    shadow.add_argument("--host", default="127.0.0.1")
    shadow.add_argument("--port", type=int, default=8764)
    shadow.add_argument("--mirror-to", help="URL of the other proxy (default: harness.yaml)")
    shadow.add_argument("--primary", choices=["sdk", "legacy"], help="who answers clients")
    shadow.add_argument("--sample-rate", type=float, help="percent of users mirrored")
    shadow.add_argument(
        "--max-rate", type=float, help="mirrored requests per second at most (0: no cap)"
    )
    shadow.add_argument("--store", help="SQLite file for captured pairs")
    shadow.set_defaults(func=_shadow)
    from harness.bench.cli import add_bench_arguments, bench_command
    from harness.cutover.cli import add_switch_arguments, cutover_command, rollback_command
    from harness.load.driver import add_load_arguments, load_command
    from harness.replay.sender import (
        add_record_arguments,
        add_replay_arguments,
        record_command,
        replay_command,
    )
    from harness.report.cli import add_report_arguments, report_command

    # name, help, how its arguments are added, what runs it
    commands: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Any]] = [
        ("replay", "send the request corpus to a proxy", add_replay_arguments, replay_command),
        (
            "record",
            "export shadow-captured traffic as a corpus",
            add_record_arguments,
            record_command,
        ),
        ("load", "Locust load against each target, side by side", add_load_arguments, load_command),
        (
            "report",
            "decide GO / NO-GO / INCONCLUSIVE, write the report",
            add_report_arguments,
            report_command,
        ),
        ("bench", "side-by-side benchmark of every path", add_bench_arguments, bench_command),
        (
            "cutover",
            "switch to the SDK proxy (needs a GO report)",
            lambda p: add_switch_arguments(p, with_report=True),
            cutover_command,
        ),
        (
            "rollback",
            "switch back to the legacy proxy",
            lambda p: add_switch_arguments(p, with_report=False),
            rollback_command,
        ),
    ]
    for name, help_text, add_arguments, run in commands:
        command = sub.add_parser(name, help=help_text)
        add_arguments(command)
        command.set_defaults(func=run)
    demo = sub.add_parser("demo", help="a guided tour, offline, no keys")
    demo.add_argument("--reports", default="reports")
    demo.set_defaults(func=_demo)
    return parser


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: every command's finally blocks stop the processes it
    # started (the default action would leave them running) and flush what it recorded.
    # uvicorn swaps this out while it serves and re-raises the signal once it is done.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"harness: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
