"""Command-line options for the sandbox, shared by ``python -m harness.sandbox`` and
whichever top-level CLI mounts a ``sandbox`` subcommand."""

from __future__ import annotations

import argparse

from harness.loopback import PROVIDER_KEEP_ALIVE_SECONDS
from harness.sandbox.settings import DEFAULT_MODELS, FaultSettings, SandboxSettings

__all__ = ["add_arguments", "run", "serve", "settings_from_args"]

_FAULT_FLAGS = (
    ("latency_ms", "base latency before the response headers (ms)"),
    ("latency_jitter_ms", "extra uniform random latency, 0..N ms"),
    ("ttft_ms", "delay before a stream's first content delta (ms)"),
    ("chunk_delay_ms", "delay between stream events (ms)"),
    ("error_rate_429", "fraction of requests answered 429 rate-limited"),
    ("error_rate_503", "fraction of requests answered 503 overloaded"),
    ("error_rate_500", "fraction of requests answered 500"),
    ("malformed_json_rate", "fraction of replies with truncated JSON"),
    ("stream_cut_rate", "fraction of streams cut half-way"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox's options (``--port``, ``--host``, fault flags, ...) to ``parser``."""
    defaults = SandboxSettings()
    parser.add_argument("--host", default=defaults.host, help="interface to bind")
    parser.add_argument("--port", type=int, default=defaults.port, help="port to listen on")
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        metavar="ID",
        help=f"model id listed by /v1/models (repeatable; default: {', '.join(DEFAULT_MODELS)})",
    )
    parser.add_argument(
        "--require-cookie",
        action="store_true",
        help="answer 503 'error code: 1200' once a __cf_bm cookie was issued but not sent",
    )
    parser.add_argument(
        "--nondeterministic",
        action="store_true",
        help="vary reply text and ids per request (seeded), instead of per request body",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed for every RNG")
    parser.add_argument(
        "--capture-limit",
        type=int,
        default=defaults.capture_limit,
        help="how many requests /_sandbox/requests keeps",
    )
    group = parser.add_argument_group("faults")
    for name, help_text in _FAULT_FLAGS:
        group.add_argument(
            f"--{name.replace('_', '-')}", dest=name, type=float, default=0.0, help=help_text
        )


def settings_from_args(args: argparse.Namespace) -> SandboxSettings:
    """The settings the parsed options describe (``ValueError`` on out-of-range values)."""
    faults = FaultSettings(**{name: getattr(args, name) for name, _ in _FAULT_FLAGS})
    return SandboxSettings(
        host=args.host,
        port=args.port,
        models=tuple(args.models) if args.models else DEFAULT_MODELS,
        require_cookie=args.require_cookie,
        nondeterministic=args.nondeterministic,
        seed=args.seed,
        capture_limit=args.capture_limit,
        faults=faults,
    )


def run(args: argparse.Namespace) -> int:
    """Serve the sandbox provider until interrupted."""
    serve(settings_from_args(args), log_level="warning")
    return 0


def serve(settings: SandboxSettings, *, log_level: str) -> None:
    """Serve the sandbox provider ``settings`` describe with uvicorn until interrupted."""
    import uvicorn

    from harness.sandbox.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_keep_alive=PROVIDER_KEEP_ALIVE_SECONDS,
    )
