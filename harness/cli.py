"""``harness``: the migration harness's commands, as one table.

Each command lives in its package's ``cli.py`` as ``add_arguments(parser)`` and
``run(args) -> int``; a package's second command is the pair ``add_<command>_arguments``
and ``run_<command>`` beside them (``record`` beside ``replay``, ``rollback`` beside
``cutover``), marked so in the table. This module only lists them, installs the SIGTERM
handler and turns the errors a user can fix into a message and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

from memory_proxy.litellm_env import keep_litellm_offline  # noqa: E402

keep_litellm_offline()

from harness.errors import HarnessError  # noqa: E402
from memory_proxy.errors import ConfigError  # noqa: E402

__all__ = ["COMMANDS", "build_parser", "main"]

# name, help, module; a name ending in "*" is the module's second command
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("sandbox", "run the sandbox provider (offline fake upstream)", "harness.sandbox.cli"),
    (
        "shadow",
        "serve the primary proxy and mirror each request to the other",
        "harness.shadow.cli",
    ),
    ("replay", "send the request corpus to a proxy", "harness.replay.cli"),
    ("record*", "export shadow-captured traffic as a corpus", "harness.replay.cli"),
    ("load", "Locust load against each target, side by side", "harness.load.cli"),
    ("report", "decide GO / NO-GO / INCONCLUSIVE, write the report", "harness.report.cli"),
    ("accept", "write an accepted-difference rule into harness.yaml", "harness.triage.cli"),
    ("show*", "one captured pair in full: request, answers, diff, upstream", "harness.triage.cli"),
    ("runs", "list the store's runs (one per `harness shadow` start)", "harness.runs.cli"),
    ("reset*", "archive the store (kept, renamed) and start empty", "harness.runs.cli"),
    ("bench", "side-by-side benchmark of every path", "harness.bench.cli"),
    ("cutover", "switch to the SDK proxy (needs a GO report)", "harness.cutover.cli"),
    ("rollback*", "switch back to the legacy proxy", "harness.cutover.cli"),
    ("demo", "a guided tour, offline, no keys", "harness.demo.cli"),
    (
        "selftest",
        "seed each defect of the catalogue, check its gate catches it",
        "harness.selftest.cli",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for entry, help_text, module_name in COMMANDS:
        module = importlib.import_module(module_name)
        name = entry.rstrip("*")
        second = entry.endswith("*")
        add_arguments = getattr(module, f"add_{name}_arguments" if second else "add_arguments")
        run = getattr(module, f"run_{name}" if second else "run")
        command = sub.add_parser(name, help=help_text)
        add_arguments(command)
        command.set_defaults(func=run)
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
    except HarnessError as exc:
        print(f"harness {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
