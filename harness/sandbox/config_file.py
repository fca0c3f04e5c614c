"""Point ``config/sandbox.yaml`` at a sandbox provider running on another port."""

from __future__ import annotations

from pathlib import Path

from harness.paths import SANDBOX_CONFIG

__all__ = ["SANDBOX_CONFIG", "SANDBOX_DEFAULT_URL", "write_sandbox_config"]

SANDBOX_DEFAULT_URL = "http://127.0.0.1:9100"


def write_sandbox_config(
    sandbox_url: str, dest: Path, *, source: Path = SANDBOX_CONFIG, extra: str = ""
) -> Path:
    """Write ``source`` with every sandbox URL replaced by ``sandbox_url``, plus ``extra``.

    ``extra`` is YAML appended at the end; a top-level section given there replaces the
    file's own (YAML keeps the last of duplicate keys).
    """
    text = source.read_text(encoding="utf-8").replace(SANDBOX_DEFAULT_URL, sandbox_url.rstrip("/"))
    dest.write_text(text + ("\n" + extra if extra else ""), encoding="utf-8")
    return dest
