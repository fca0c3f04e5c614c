"""``harness accept`` (write an accepted-difference rule) and ``harness show`` (one pair).

``accept`` drafts a rule from a gate and a path, or from a pair id, adds it to
``compare.accept`` in ``harness.yaml`` with the comment-keeping editor ``harness cutover``
uses, and keeps the file only if it still passes the config check.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "add_show_arguments", "run", "run_show"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pair", help="a pair id from the report: accept what differs in it")
    source.add_argument("--gate", help="a gate's name from the report, e.g. 'parity: models'")
    parser.add_argument("--path", help="with --gate: the field, e.g. 'body.data[*]'")
    parser.add_argument("--category", help="with --gate: only this category at the path")
    parser.add_argument("--reason", required=True, help="why the difference is deliberate")
    parser.add_argument("--name", help="the rule's name (default: from the gate or pair)")
    parser.add_argument("--owner", help="who answers for it")
    parser.add_argument("--expires", help="YYYY-MM-DD: after this day it is not applied")
    parser.add_argument("--harness-config", default="config/harness.yaml", type=Path)
    parser.add_argument("--store", help="with --pair (default: capture.store in harness.yaml)")
    parser.add_argument(
        "--config", default="config/config.yaml", help="the proxy config (model aliases)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the rule, write nothing")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "rule"


def _draft(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    from harness.errors import HarnessError
    from harness.triage.draft import rule_from_gate, rule_from_pair

    if args.gate is not None:
        if not args.path:
            raise HarnessError("--gate needs --path (the field the rule accepts)")
        name = args.name or _slug(f"{args.gate} {args.path}")
        return rule_from_gate(
            name,
            args.gate,
            args.path,
            args.reason,
            category=args.category,
            owner=args.owner,
            expires=args.expires,
        )
    from harness.report.collect import sdk_failed
    from harness.report.evidence import comparator_for
    from harness.report.outcomes import direction
    from harness.store.capture_store import CaptureStore, UnreadableRow
    from harness.store.dialect import is_postgres_url, resolve_store

    store = resolve_store(args.store or settings.capture.store, "--store")
    if not is_postgres_url(store) and not Path(store).is_file():
        raise HarnessError(f"{store}: no capture store")
    with CaptureStore(store, spill=False) as opened:
        row = opened.find_row(args.pair)
    if row is None:
        raise HarnessError(f"{store}: no pair {args.pair}")
    if isinstance(row, UnreadableRow):
        raise HarnessError(f"{store}: pair {args.pair} cannot be read: {row.reason}")
    comparator, _ = comparator_for(settings, args.config)
    pair = row.pair
    return rule_from_pair(
        args.name or _slug(f"accept {args.pair}"),
        pair,
        comparator.compare(pair),
        args.reason,
        sdk_failed=sdk_failed(pair, direction(pair)),
        owner=args.owner,
        expires=args.expires,
    )


def run(args: argparse.Namespace) -> int:
    import yaml

    from harness.cutover.config_edit import append_list_item
    from harness.errors import HarnessError
    from harness.settings import load_harness_settings
    from memory_proxy.errors import ConfigError

    path: Path = args.harness_config
    settings = load_harness_settings(path)
    rule = _draft(args, settings)
    if rule["name"] in {r.name for r in settings.compare.accept}:
        raise HarnessError(f"{path}: a rule named {rule['name']!r} exists; pass --name")
    text = yaml.safe_dump([rule], sort_keys=False, allow_unicode=True, width=88)
    if args.dry_run:
        print(text, end="")
        return 0
    new = append_list_item(path.read_text(encoding="utf-8"), "compare", "accept", rule)
    # Checked as the harness will read it before it replaces the file.
    draft = path.with_name(f".{path.name}.accept-{os.getpid()}")
    draft.write_text(new, encoding="utf-8")
    try:
        try:
            load_harness_settings(draft)
        except ConfigError as exc:
            message = str(exc).replace(str(draft), str(path))
            raise HarnessError(
                f"not written, the result fails the config check: {message}"
            ) from None
        os.replace(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    print(f"accepted: rule {rule['name']!r} added to compare.accept in {path}")
    print(text, end="")
    return 0


def add_show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pair_id", help="a pair id from the report (e.g. shd_3f2a...)")
    parser.add_argument("--store", help="capture store (default: capture.store in harness.yaml)")
    parser.add_argument("--harness-config", default="config/harness.yaml")
    parser.add_argument(
        "--config", default="config/config.yaml", help="the proxy config (aliases, secrets)"
    )
    parser.add_argument(
        "--accept", action="append", default=[], metavar="FILE", help="as for harness report"
    )
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")


def run_show(args: argparse.Namespace) -> int:
    """One pair, drilled down: the client's request (redacted), both answers, the
    field-level diff highlighted, each side's provider calls."""
    import sys

    from harness.errors import HarnessError
    from harness.report.evidence import load_pair_view, run_info
    from harness.report.sections import pair_parts
    from harness.settings import load_accept_file, load_harness_settings, with_accepted
    from harness.triage.terminal import render_parts

    settings = load_harness_settings(args.harness_config)
    for path in args.accept:
        settings = with_accepted(settings, load_accept_file(path))
    from harness.store.dialect import is_postgres_url, resolve_store

    store = resolve_store(args.store or settings.capture.store, "--store")
    if not is_postgres_url(store) and not Path(store).is_file():
        raise HarnessError(f"{store}: no capture store")
    run = run_info(args.config, store)
    view = load_pair_view(store, args.pair_id, settings, run, config_path=args.config)
    if view is None:
        raise HarnessError(f"{store}: no readable pair {args.pair_id}")
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    sys.stdout.write(render_parts(pair_parts(view), color=color))
    return 0
