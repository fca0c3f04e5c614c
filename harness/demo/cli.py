"""``harness demo``: the command line of the guided tour (:mod:`harness.demo.tour`)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reports", default="reports")


def run(args: argparse.Namespace) -> int:
    from harness.demo.tour import run_demo

    return run_demo(Path(args.reports))
