"""``python -m harness.sandbox --port 9100``: serve the sandbox provider with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from harness.loopback import PROVIDER_KEEP_ALIVE_SECONDS
from harness.sandbox.app import create_app
from harness.sandbox.cli import add_arguments, settings_from_args


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m harness.sandbox",
        description="Offline stand-in for Anthropic, OpenAI and Supermemory's memory router.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValueError as error:
        parser.error(str(error))
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_keep_alive=PROVIDER_KEEP_ALIVE_SECONDS,
    )


if __name__ == "__main__":
    main()
