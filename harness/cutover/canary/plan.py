"""The canary's plan from the command line: the step list and durations (pure)."""

from __future__ import annotations

import re

from harness.errors import HarnessError

__all__ = ["CanaryPlanError", "parse_duration", "parse_steps"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class CanaryPlanError(HarnessError, ValueError):
    """A step list or a duration the canary cannot run."""


def parse_steps(text: str) -> tuple[float, ...]:
    """``"5,25,50,100"`` -> ``(5.0, 25.0, 50.0, 100.0)``.

    Percentages of users served by the SDK proxy, strictly increasing (a user moved to the
    SDK stays on it: slices only grow), each above 0 and at most 100, the last 100 (the
    last step is the cutover itself).
    """
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise CanaryPlanError(
            f"--steps {text!r}: give percentages separated by commas, e.g. 5,25,50,100"
        )
    steps: list[float] = []
    for part in parts:
        try:
            value = float(part.removesuffix("%"))
        except ValueError:
            raise CanaryPlanError(f"--steps: {part!r} is not a percentage") from None
        if not 0 < value <= 100:
            raise CanaryPlanError(f"--steps: {part} is outside (0, 100]")
        if steps and value <= steps[-1]:
            raise CanaryPlanError(
                f"--steps: {part} after {steps[-1]:g}: steps must increase (slices only grow)"
            )
        steps.append(value)
    if steps[-1] != 100:
        raise CanaryPlanError(
            f"--steps: the last step is {steps[-1]:g}, not 100 (the last step is the cutover)"
        )
    return tuple(steps)


def parse_duration(text: str, flag: str = "--interval") -> float:
    """``"10m"`` -> 600.0 seconds; ``ms``, ``s`` (the default), ``m``, ``h``."""
    match = _DURATION.match(text)
    if match is None:
        raise CanaryPlanError(f"{flag} {text!r}: expected a duration such as 30s, 10m or 1h")
    seconds = float(match[1]) * _UNITS[match[2]]
    if seconds <= 0:
        raise CanaryPlanError(f"{flag} {text!r}: must be longer than 0")
    return seconds
