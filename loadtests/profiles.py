"""Load profiles (``LOAD_PROFILE``).

* ``criterion``: every user at once (``-u N -r N``) for a fixed time (``-t``): the
  acceptance criterion, "50 concurrent users, no failure".
* ``soak``: a steady load for a long time (``-u N -r <gentle> -t 30m``): leaks and drift.
* ``ramp``: :class:`RampShape`, four equal steps up to ``LOAD_PEAK`` users over
  ``LOAD_DURATION_S``, to see where latency bends.

Criterion and soak are Locust's own ``-u/-r/-t``; only the ramp needs a shape class,
and the locustfile exposes it only when ``LOAD_PROFILE=ramp`` (Locust uses any shape
class it finds in the locustfile).
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtests.options import LoadOptions

__all__ = ["RAMP_STEPS", "RampShape", "ramp_stages"]

RAMP_STEPS = 4


def ramp_stages(peak: int, duration_s: float, steps: int = RAMP_STEPS) -> list[tuple[float, int]]:
    """``(end time in s, users)`` per step: 1/steps of the peak more at every step."""
    step_s = duration_s / steps
    return [(step_s * (i + 1), max(1, round(peak * (i + 1) / steps))) for i in range(steps)]


class RampShape(LoadTestShape):
    """Steps up to the peak; each step's users start within about a second."""

    def __init__(self) -> None:
        super().__init__()
        options = LoadOptions.from_env()
        self.stages = ramp_stages(options.peak, options.duration_s)

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        for end, users in self.stages:
            if elapsed < end:
                return users, max(1.0, users / RAMP_STEPS)
        return None
