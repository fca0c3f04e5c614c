"""Per-instance rows: which proxies wrote a team store's pairs, and how each one compares
with the rest of the team (pure: evidence in, rows out)."""

from __future__ import annotations

from harness.report.model import InstanceRow
from harness.report.tally import Evidence

__all__ = ["instance_rows"]


def instance_rows(evidence: Evidence) -> tuple[InstanceRow, ...]:
    """One row per instance, by name; none when the pairs carry no instance."""
    shares = evidence.instances
    compared = sum(s.compared for s in shares.values())
    differing = sum(s.differing for s in shares.values())
    return tuple(
        InstanceRow(
            instance=name,
            pairs=share.pairs,
            compared=share.compared,
            differing=share.differing,
            others_compared=compared - share.compared,
            others_differing=differing - share.differing,
            families=tuple(sorted(share.families.items(), key=lambda kv: (-kv[1], kv[0]))),
        )
        for name, share in sorted(shares.items())
    )
