"""Load targets: ``NAME=URL`` parsing, the loopback-only rule, durations. Pure."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness.errors import HarnessError

__all__ = ["LoadTarget", "RemoteTargetRefused", "check_loopback", "parse_duration", "parse_target"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class RemoteTargetRefused(HarnessError, ValueError):
    """A target off this machine without ``--allow-remote``: nothing was sent."""


@dataclass(frozen=True)
class LoadTarget:
    name: str
    url: str
    pid: int | None = None

    @property
    def port(self) -> int | None:
        parts = urlsplit(self.url)
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def parse_target(text: str) -> LoadTarget:
    """``NAME=URL`` (or a bare URL, named ``host-port``)."""
    name, sep, url = text.partition("=")
    if not sep:
        url = text
        parts = urlsplit(url)
        name = f"{parts.hostname}-{parts.port}" if parts.port else str(parts.hostname)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"target {text!r}: expected NAME=http://host:port")
    if not _NAME.match(name):
        raise ValueError(f"target {text!r}: the name may hold letters, digits, '.', '_', '-'")
    return LoadTarget(name, url.rstrip("/"))


def check_loopback(targets: Sequence[LoadTarget], allow_remote: bool) -> None:
    """Refuse any target not on this machine, before anything is sent anywhere."""
    if allow_remote:
        return
    for target in targets:
        host = urlsplit(target.url).hostname or ""
        if host == "localhost":
            continue
        try:
            if ipaddress.ip_address(host).is_loopback:
                continue
        except ValueError:
            pass  # a name: resolving it would already be traffic; only localhost is known
        raise RemoteTargetRefused(
            f"target {target.name} ({target.url}) is not a loopback address: load is only "
            "sent to this machine unless --allow-remote is given"
        )


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h``, ``1h30m`` -> seconds."""
    match = re.fullmatch(r"\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or match is None:
        raise ValueError(f"duration {text!r}: expected e.g. 60s, 5m, 1h")
    hours, minutes, seconds = match.groups()
    total = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
    if total <= 0:
        raise ValueError(f"duration {text!r}: must be positive")
    return total
