"""``harness runs`` lists the store's runs; ``harness reset`` archives the store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "add_reset_arguments", "run", "run_reset"]


def _store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="capture store (default: capture.store in harness.yaml)")
    parser.add_argument("--harness-config", default="config/harness.yaml")


def _store_path(args: argparse.Namespace) -> str | Path:
    """The store: a SQLite file's path, or a team's PostgreSQL URL (``os.environ/VAR``
    resolved)."""
    from harness.settings import load_harness_settings
    from harness.store.dialect import resolve_store

    if args.store:
        return resolve_store(args.store, "--store")
    config = Path(args.harness_config)
    store = load_harness_settings(config if config.is_file() else None).capture.store
    return resolve_store(store)


def _is_file(store: str | Path) -> bool:
    return isinstance(store, Path) and store.is_file()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _store_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Print one line per run, oldest first, and the pairs of no run."""
    from harness.runs.listing import run_lines
    from harness.store.capture_store import CaptureStore
    from harness.store.dialect import is_postgres_url
    from memory_proxy.errors import ConfigError

    path = _store_path(args)
    if not is_postgres_url(path) and not _is_file(path):
        raise ConfigError(f"{path}: no capture store (run `harness shadow` first)")
    with CaptureStore(path, spill=False, setting="--store") as store:
        lines = run_lines(store.runs(), store.legacy_pairs())
    for line in lines:
        print(line, file=sys.stdout)
    return 0


def add_reset_arguments(parser: argparse.ArgumentParser) -> None:
    _store_arguments(parser)
    parser.add_argument(
        "--force", action="store_true", help="archive even while a run is still open"
    )


def run_reset(args: argparse.Namespace) -> int:
    """Move the store aside (kept, renamed with the time); the next run starts empty."""
    from harness.runs.listing import ResetRefused
    from harness.store.capture_store import CaptureStore, archive_store
    from harness.store.dialect import is_postgres_url, safe_url

    path = _store_path(args)
    if is_postgres_url(path):
        # Archiving moves a file aside; a team's database is shared by every proxy.
        raise ResetRefused(
            f"harness reset: {safe_url(str(path))} is a PostgreSQL store (shared by a team); "
            "reset archives a SQLite file only: start a new database and point "
            "capture.store at it"
        )
    assert isinstance(path, Path)
    if not path.is_file():
        print(f"harness reset: {path}: no store, nothing to archive", file=sys.stdout)
        return 0
    with CaptureStore(path, spill=False) as store:
        still_open = [r.id for r in store.runs() if r.open]
    if still_open and not args.force:
        # A shadow process writing to it would go on writing into the archive.
        raise ResetRefused(
            f"{path}: run {', '.join(map(str, still_open))} is still open (a shadow process "
            "may be writing to it); stop it first, or pass --force if it crashed"
        )
    archive = archive_store(path)
    print(f"archived {path} as {archive}; the next run starts an empty store", file=sys.stdout)
    return 0
