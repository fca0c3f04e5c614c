"""``harness demo``: the command line of the guided tour (:mod:`harness.demo.tour`)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reports", default="reports")
    parser.add_argument(
        "--no-canary",
        action="store_true",
        help="leave out the gradual cutover shown after the report",
    )


def run(args: argparse.Namespace) -> int:
    from harness.demo.tour import run_demo

    return run_demo(Path(args.reports), canary=not args.no_canary)
