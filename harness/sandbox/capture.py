"""A bounded record of every request the sandbox received, secrets masked.

Tests read it through ``GET /_sandbox/requests`` to see what a proxy really forwarded:
path and query, headers, cookies, the parsed body, how the sandbox answered, and whether
a stream was completed, cut or abandoned by the client.

Secrets never enter the store: ``authorization``, ``proxy-authorization``, ``x-api-key``,
``api-key`` and ``x-supermemory-api-key`` are kept as ``sk-...abcd`` (short values as
``<masked>``) plus a sha256 fingerprint under ``credentials``, and cookie values are
masked while their names stay visible (``__cf_bm=<masked>``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from time import monotonic, time
from typing import Any

__all__ = ["SECRET_HEADERS", "CaptureRecord", "CaptureStore", "fingerprint", "mask_secret"]

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-supermemory-api-key"}
)
MASKED = "<masked>"
# Below this length even the last four characters would reveal too much of the secret.
_MIN_TAIL_LENGTH = 12


def mask_secret(value: str) -> str:
    """``Bearer sk-ant-...wxyz`` → ``Bearer sk-...wxyz``; short secrets → ``<masked>``."""
    scheme, token = _split_scheme(value)
    if len(token) < _MIN_TAIL_LENGTH:
        masked = MASKED
    else:
        masked = f"{token[:3]}...{token[-4:]}"
    return f"{scheme} {masked}" if scheme else masked


def fingerprint(secret: str) -> str:
    """The first 12 hex digits of sha256(secret): compare keys without storing them."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


@dataclass
class CaptureRecord:
    """One request, updated in place as the sandbox answers it."""

    seq: int
    time: float
    method: str
    path: str
    query: str
    headers: dict[str, str]
    credentials: dict[str, dict[str, Any]]
    cookies: list[str]
    body: Any
    body_is_json: bool
    endpoint: str | None = None
    stream: bool = False
    status: int | None = None
    request_id: str | None = None
    faults: list[str] = field(default_factory=list)
    cookie_issued: bool = False
    cookie_valid: bool = False
    completed: bool | None = None
    outcome: str | None = None
    duration_ms: float | None = None
    started: float = field(default_factory=monotonic, repr=False)

    def finish(self, outcome: str) -> None:
        """Mark the exchange over: ``completed``, ``cut`` or ``disconnected``."""
        self.outcome = outcome
        self.completed = outcome == "completed"
        self.duration_ms = round((monotonic() - self.started) * 1000, 3)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["started"]
        return data


class CaptureStore:
    """A ring buffer of ``CaptureRecord``; sequence numbers never restart."""

    def __init__(self, limit: int = 10_000) -> None:
        self._records: deque[CaptureRecord] = deque(maxlen=limit)
        self._seq = 0

    @property
    def latest_seq(self) -> int:
        return self._seq

    def record(
        self, *, method: str, path: str, query: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> CaptureRecord:
        self._seq += 1
        shown, credentials, cookies = _mask_headers(headers)
        parsed, is_json = _parse_body(body)
        record = CaptureRecord(
            seq=self._seq,
            time=time(),
            method=method,
            path=path,
            query=query,
            headers=shown,
            credentials=credentials,
            cookies=cookies,
            body=parsed,
            body_is_json=is_json,
        )
        self._records.append(record)
        return record

    def since(self, seq: int = 0, limit: int | None = None) -> list[CaptureRecord]:
        found = [r for r in self._records if r.seq > seq]
        return found[:limit] if limit is not None else found

    def clear(self) -> None:
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)


def _split_scheme(value: str) -> tuple[str, str]:
    scheme, sep, token = value.strip().partition(" ")
    return (scheme, token.strip()) if sep else ("", value.strip())


def _mask_headers(
    headers: Iterable[tuple[str, str]],
) -> tuple[dict[str, str], dict[str, dict[str, Any]], list[str]]:
    shown: dict[str, str] = {}
    credentials: dict[str, dict[str, Any]] = {}
    cookie_names: list[str] = []
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in SECRET_HEADERS:
            _, token = _split_scheme(value)
            value = mask_secret(value) if token else value
            # An empty header was sent but carries no credential: present is False.
            credentials[name] = {
                "present": bool(token),
                "masked": value,
                "sha256": fingerprint(token) if token else None,
            }
        elif name == "cookie":
            names = [p.strip().partition("=")[0] for p in value.split(";") if p.strip()]
            cookie_names.extend(names)
            value = "; ".join(f"{n}={MASKED}" for n in names)
        separator = "; " if name == "cookie" else ", "
        shown[name] = f"{shown[name]}{separator}{value}" if name in shown else value
    return shown, credentials, cookie_names


def _parse_body(body: bytes) -> tuple[Any, bool]:
    if not body:
        return None, False
    try:
        return json.loads(body), True
    except ValueError:
        return body.decode("utf-8", errors="replace"), False
