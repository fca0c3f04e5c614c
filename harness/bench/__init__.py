"""``harness bench``: throughput, latency, CPU and memory of every path, side by side.

See :mod:`harness.bench.runner` for what one run does, :mod:`harness.bench.targets` for
what it is gated on.
"""

from __future__ import annotations

from harness.bench.runner import BenchPlan, run_bench

__all__ = ["BenchPlan", "run_bench"]
