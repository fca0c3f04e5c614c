"""``memory-proxy``: run the SDK proxy (``serve``), the legacy proxy, or the whole stack."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from memory_proxy.litellm_env import keep_litellm_offline  # noqa: E402

keep_litellm_offline()

from memory_proxy.config import load_config  # noqa: E402
from memory_proxy.errors import ConfigError  # noqa: E402

__all__ = ["main"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # litellm logs at INFO per call; the access line says what matters.
    for noisy in ("LiteLLM", "LiteLLM Proxy", "LiteLLM Router", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _require_key_off_loopback(args: argparse.Namespace, master_key: str | None) -> None:
    if args.host not in LOOPBACK and not master_key:
        raise ConfigError(
            f"{args.config}: general_settings.master_key: expected a key when binding "
            f"{args.host} (only loopback may be served without auth)"
        )


def _serve(args: argparse.Namespace) -> int:
    from memory_proxy.app import create_app
    from memory_proxy.connection_limits import serve_with_limits
    from memory_proxy.tracing import console_tracer_provider

    config = load_config(args.config)
    _require_key_off_loopback(args, config.general.master_key)
    # Spans to stdout (the log lines go to stderr).
    provider = console_tracer_provider() if config.options.tracing else None
    serve_with_limits(
        create_app(config, tracer_provider=provider),
        config.options,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
    )
    return 0


def _legacy(args: argparse.Namespace) -> int:
    from memory_proxy.connection_limits import serve_with_limits
    from memory_proxy.legacy_proxy import create_legacy_app

    config = load_config(args.config)
    _require_key_off_loopback(args, config.general.master_key)
    serve_with_limits(
        create_legacy_app(config, args.litellm_url),
        config.options,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
    )
    return 0


def _up(args: argparse.Namespace) -> int:
    from pathlib import Path

    from memory_proxy.stack_plan import PlanError, Ports, default_run_dir, plan_stack
    from memory_proxy.supervisor import Supervisor

    # Absolute: the children are told this path and may not share our working directory.
    config = load_config(Path(args.config).absolute())
    try:
        plan = plan_stack(
            config,
            args.mode,
            ports=Ports(main=args.sdk_port, legacy=args.legacy_port, litellm=args.litellm_port),
            host=args.host,
            log_level=args.log_level,
        )
    except PlanError as exc:
        print(f"memory-proxy up: {exc}", file=sys.stderr)
        return 2
    supervisor = Supervisor(
        plan,
        Path(args.run_dir) if args.run_dir else default_run_dir(),
        allow_weak_master_key=args.allow_weak_master_key,
        # A proxy drains in-flight requests for up to shutdown_grace_seconds after SIGTERM.
        grace=config.options.shutdown_grace_seconds + 5.0,
    )
    return supervisor.run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memory-proxy", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the SDK memory proxy (litellm in-process)")
    serve.add_argument("--config", default="config/config.yaml")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8764)
    serve.set_defaults(func=_serve)
    legacy = sub.add_parser("legacy", help="run the legacy proxy (forwards to a LiteLLM server)")
    legacy.add_argument("--config", default="config/config.yaml")
    legacy.add_argument("--host", default="127.0.0.1")
    legacy.add_argument("--port", type=int, default=8765)
    legacy.add_argument("--litellm-url", default="http://127.0.0.1:4000")
    legacy.set_defaults(func=_legacy)
    up = sub.add_parser(
        "up",
        help="start what general_settings.use_sdk asks for (LiteLLM server included), "
        "watch it, stop it all on Ctrl-C or SIGTERM",
    )
    up.add_argument("--config", default="config/config.yaml")
    up.add_argument(
        "--mode",
        choices=["sdk", "legacy", "both"],
        default=None,
        help="override general_settings.use_sdk (false: legacy, true: sdk); both: SDK proxy "
        "on the main port and the legacy proxy next to it",
    )
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument(
        "--sdk-port",
        type=int,
        default=8764,
        help="the main port: the SDK proxy's, or the legacy proxy's in legacy mode",
    )
    up.add_argument(
        "--legacy-port",
        type=int,
        default=None,
        help="the legacy proxy's port (default: 8765 in both mode, the main port in legacy mode)",
    )
    up.add_argument("--litellm-port", type=int, default=4000)
    up.add_argument("--run-dir", default=None, help="where the logs go (default: runs/<UTC time>)")
    up.add_argument(
        "--allow-weak-master-key",
        action="store_true",
        help="let the LiteLLM server start with no master key or sk-1234 (local development)",
    )
    up.set_defaults(func=_up)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"memory-proxy: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
