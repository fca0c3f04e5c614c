"""``harness load``: Locust load against each target, measured and stored."""

from __future__ import annotations

from harness.load.driver import (
    HEALTH_PATH,
    PROFILE_DURATIONS,
    LoadPlan,
    LoadReport,
    run_load,
)
from harness.load.locust_job import (
    LOCUSTFILE,
    LocustJob,
    LocustOutcome,
    run_locust,
)
from harness.load.process_sampler import (
    ProcessSampler,
    find_listening_pid,
    read_process,
)
from harness.load.results import (
    TargetResult,
    format_table,
)
from harness.load.targets import (
    LoadTarget,
    RemoteTargetRefused,
    check_loopback,
    parse_duration,
    parse_target,
)

__all__ = [
    "HEALTH_PATH",
    "LOCUSTFILE",
    "LoadPlan",
    "LoadReport",
    "LoadTarget",
    "LocustJob",
    "LocustOutcome",
    "PROFILE_DURATIONS",
    "ProcessSampler",
    "RemoteTargetRefused",
    "TargetResult",
    "check_loopback",
    "find_listening_pid",
    "format_table",
    "parse_duration",
    "parse_target",
    "read_process",
    "run_load",
    "run_locust",
]
