"""``harness demo`` (``make demo``): the whole migration, offline and with no keys."""

from __future__ import annotations

from harness.demo.tour import run_demo

__all__ = ["run_demo"]
