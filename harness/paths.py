"""Where the repository's own files are: one root, found once.

The harness runs from a checkout (``uv sync`` installs it editable), so the shipped
configs, the Locust files and the default report folder sit at fixed places under the
repository root. Every module that needs one of them imports it from here.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ACCEPTED_DIFFERENCES",
    "CONFIG_DIR",
    "HARNESS_CONFIG",
    "LOADTESTS_DIR",
    "REPO_ROOT",
    "SANDBOX_CONFIG",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "config"
HARNESS_CONFIG = CONFIG_DIR / "harness.yaml"
# The SDK proxy's deliberate differences from the legacy stack (harness report --accept).
ACCEPTED_DIFFERENCES = CONFIG_DIR / "accepted-differences.yaml"
SANDBOX_CONFIG = CONFIG_DIR / "sandbox.yaml"
LOADTESTS_DIR = REPO_ROOT / "loadtests"
