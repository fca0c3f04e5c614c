"""``python -m harness.sandbox --port 9100``: serve the sandbox provider with uvicorn."""

from __future__ import annotations

import argparse

from harness.sandbox.cli import add_arguments, serve, settings_from_args


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
    serve(settings, log_level="info")


if __name__ == "__main__":
    main()
