"""Who plays which part in a mirrored exchange: the roles and where the mirror sends.

A role (``"sdk"``, ``"legacy"``) is what an observation is labelled with and what the
report compares by. It is decided once, where shadow mode is assembled
(:func:`harness.shadow.server.build_shadow`), and travels with the URL it names; the
engine only copies it onto what it observes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SHADOW_HEADER", "MirrorTarget", "MirrorTargets"]

# The harness's own id of a mirrored request, on the mirror request: the legacy stack
# passes it on to its provider calls, where the replay upstream finds the primary's.
SHADOW_HEADER = "x-shadow-request"


@dataclass(frozen=True)
class MirrorTarget:
    """A proxy the mirror sends requests to, and the role its answers are stored under."""

    role: str
    url: str

    def __post_init__(self) -> None:
        # Paths are appended as the client sent them ("/v1/..."): no double slash.
        object.__setattr__(self, "url", self.url.rstrip("/"))


@dataclass(frozen=True)
class MirrorTargets:
    """The primary answers the client (the tap records it, nobody calls it); the shadow
    gets every mirrored request; the repeat, when there is one, gets the A/A noise probes
    a second time; the twin, when there is one (replay mode, SDK primary), is the
    primary's build on the replay upstream, sent each mirrored request at the same moment
    as the shadow, only to be timed the way the shadow is."""

    primary: str
    shadow: MirrorTarget
    repeat: MirrorTarget | None = None
    twin: MirrorTarget | None = None
