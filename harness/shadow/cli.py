"""``harness shadow``: serve the primary proxy and mirror each request to the other."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--harness-config", default="config/harness.yaml")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8764)
    parser.add_argument(
        "--mirror-to",
        help="URL of the other proxy (default: harness.yaml's; none in replay mode: the "
        "legacy stack is started, its providers pointed at the replay upstream)",
    )
    parser.add_argument("--primary", choices=["sdk", "legacy"], help="who answers clients")
    parser.add_argument("--sample-rate", type=_percent, help="percent of users mirrored")
    parser.add_argument(
        "--health-rate", type=_percent, help="percent of GET /health checks mirrored"
    )
    parser.add_argument(
        "--max-rate", type=float, help="mirrored requests per second at most (0: no cap)"
    )
    parser.add_argument("--store", help="SQLite file for captured pairs")
    parser.add_argument(
        "--upstream",
        choices=["replay", "live"],
        help="replay (default): answer the mirror side with the primary's provider answers; "
        "live: the mirror side calls the provider too",
    )
    parser.add_argument(
        "--replay-listen", metavar="HOST:PORT", help="where the replay upstream listens"
    )
    parser.add_argument(
        "--relay-listen",
        metavar="HOST:PORT",
        help="replay with --primary legacy or --canary: where the recording relay in front "
        "of the provider listens (the serving legacy stack's LiteLLM server runs on the "
        "config printed at start, its providers through the relay)",
    )
    parser.add_argument(
        "--canary",
        action="store_true",
        help="gradual cutover front door: the SDK proxy answers the users of the slice "
        "`harness cutover --canary` sets in the store, --legacy-url everyone else",
    )
    parser.add_argument("--legacy-url", help="with --canary: the legacy proxy serving users")


def _percent(text: str) -> float:
    """A percentage argument, 0-100, as ``shadow.*_rate`` in harness.yaml must be."""
    from harness.settings import is_percentage

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not is_percentage(value):
        raise argparse.ArgumentTypeError(f"expected a percentage 0-100, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
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
        health_rate=args.health_rate,
        max_rate=args.max_rate,
        upstream=args.upstream,
        replay_listen=args.replay_listen,
        relay_listen=args.relay_listen,
    )
    if args.store:
        settings = settings.with_overrides("capture", store=args.store)
    canary = None
    if args.canary:
        from harness.shadow.canary_route import CanaryOptions

        if not args.legacy_url:
            print("shadow --canary: --legacy-url is required (the legacy proxy serving users)")
            return 2
        canary = CanaryOptions(args.legacy_url, settings.capture.store)
    return serve_shadow(config, settings, host=args.host, port=args.port, canary=canary)
