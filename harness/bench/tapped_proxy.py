"""The SDK proxy with shadow mode's upstream tap recording every request: the bench's
``tap`` path, run as ``python -m harness.bench.tapped_proxy --config C --port P``.

In replay mode the primary SDK proxy is built with an
:class:`~harness.shadow.upstream_tap.UpstreamTap` as its upstream observer, and every
mirrored request opens a record of its provider calls (``upstream_tap.begin`` /
``finish``, around the app, as :class:`~harness.shadow.mirror.ShadowMirror` does). This
process does exactly that for every request and drops the records, and is otherwise
``memory-proxy serve`` (same app, same server, same logging): set beside the ``sdk`` path
in one bench run, the difference in CPU per request is what the tap adds to the primary.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from memory_proxy.litellm_env import keep_litellm_offline

keep_litellm_offline()

from starlette.types import ASGIApp, Receive, Scope, Send  # noqa: E402

from harness.settings import CaptureSettings  # noqa: E402
from harness.shadow import upstream_tap  # noqa: E402
from harness.shadow.upstream_tap import UpstreamTap  # noqa: E402
from memory_proxy.cli import configure_logging  # noqa: E402
from memory_proxy.config import load_config  # noqa: E402

__all__ = ["RecordEveryRequest", "main"]


class RecordEveryRequest:
    """Records the provider calls of every HTTP request ``app`` serves, then drops them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = upstream_tap.begin()
        try:
            await self.app(scope, receive, send)
        finally:
            upstream_tap.finish(token)


def main(argv: Sequence[str] | None = None) -> int:
    from memory_proxy.app import create_app
    from memory_proxy.connection_limits import serve_with_limits

    parser = argparse.ArgumentParser(prog="python -m harness.bench.tapped_proxy")
    parser.add_argument("--config", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    config = load_config(args.config)
    tap = UpstreamTap(CaptureSettings().max_body_bytes)
    serve_with_limits(
        RecordEveryRequest(create_app(config, upstream_observer=tap)),
        config.options,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
