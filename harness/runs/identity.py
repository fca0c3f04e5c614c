"""What produced a run: package versions with the git commit, and config file hashes."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["config_identity", "file_sha256", "git_commit", "package_version", "proxy_versions"]


def package_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def git_commit(directory: str | None = None) -> str | None:
    """The short commit of the checkout ``directory`` (default: this package's) is in,
    ``+dirty`` when it has local changes; None outside a git checkout or without git."""
    where = directory or str(Path(__file__).resolve().parent)
    try:
        head = subprocess.run(
            ["git", "-C", where, "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head or None


def _with_commit(version: str) -> str:
    commit = git_commit()
    return f"{version} (git {commit})" if commit else version


def proxy_versions() -> dict[str, str]:
    """Both proxies as run from this installation: the SDK proxy is the memory_proxy
    package; the legacy stack is its legacy proxy in front of the LiteLLM server of the
    installed litellm package."""
    import memory_proxy

    project = _with_commit(f"memory_proxy {memory_proxy.__version__}")
    return {
        "sdk": f"{project}, litellm SDK {package_version('litellm')}",
        "legacy": f"{project} legacy proxy, LiteLLM server {package_version('litellm')}",
    }


def file_sha256(path: str | Path) -> str | None:
    """The file's sha256, None when it cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def config_identity(**paths: str | Path | None) -> dict[str, Any]:
    """name -> {path, sha256} for each config file given."""
    return {
        name: {"path": str(path), "sha256": file_sha256(path)}
        for name, path in paths.items()
        if path is not None
    }
