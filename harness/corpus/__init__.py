"""The replay corpus: real client requests as JSON lines, for ``harness replay`` and Locust.

Each line of ``requests.jsonl`` is one request::

    {"id": "cc-turn", "description": "...", "method": "POST",
     "path": "/v1/messages?beta=true", "headers": {"x-api-key": "$KEY", ...},
     "body": {...}, "stream": true, "expect": {"status": 200}}

* ``headers`` never hold a real secret: ``$KEY`` stands for the target's key and is
  replaced when the request is sent (:meth:`CorpusEntry.send_headers`); bad-auth cases
  carry a literal wrong key instead.
* ``body`` is sent as JSON, except a JSON *string*, which is sent as raw text (how the
  corpus spells a body that is not valid JSON); ``null`` means no body.
* ``expect.status`` is a status or a list of acceptable ones: what the SDK proxy answers.

The module is stdlib-only (plus the pure ``client_family``) because the Locust process
imports it, and nothing there may pull in litellm.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from memory_proxy.api_formats import FormatName
from memory_proxy.memory_router import client_family

__all__ = [
    "CORPUS_PATH",
    "KEY_PLACEHOLDER",
    "CorpusEntry",
    "CorpusError",
    "dump_corpus",
    "entry_from_dict",
    "entry_to_dict",
    "load_corpus",
]

CORPUS_PATH = Path(__file__).with_name("requests.jsonl")
KEY_PLACEHOLDER = "$KEY"
_FIELDS = ("id", "description", "method", "path", "headers", "body", "stream", "expect")
# Path suffixes (query removed) -> endpoint names, as the shadow capture names them.
_ENDPOINT_SUFFIXES = (
    ("/messages/count_tokens", "count_tokens"),
    ("/messages", "messages"),
    ("/chat/completions", "chat"),
    ("/models", "models"),
)


class CorpusError(HarnessError, ValueError):
    """A corpus line that does not follow the format; the message names file and line."""


@dataclass(frozen=True)
class CorpusEntry:
    """One request of the corpus and the status the SDK proxy answers it with."""

    id: str
    description: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    stream: bool
    expect_status: tuple[int, ...]

    @property
    def endpoint(self) -> str:
        """``chat``, ``messages``, ``count_tokens``, ``models`` or ``other``."""
        route = self.path.split("?", 1)[0].rstrip("/")
        for suffix, name in _ENDPOINT_SUFFIXES:
            if route.endswith(suffix):
                return name
        return "other"

    @property
    def api_format(self) -> FormatName:
        return "anthropic" if self.endpoint in ("messages", "count_tokens") else "openai"

    @property
    def expects_success(self) -> bool:
        return all(200 <= status < 300 for status in self.expect_status)

    @property
    def user_agent(self) -> str | None:
        return self.header("user-agent")

    @property
    def client_family(self) -> str:
        return client_family(self.user_agent)

    @property
    def model(self) -> str | None:
        model = self.body.get("model") if isinstance(self.body, dict) else None
        return model if isinstance(model, str) else None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def send_headers(self, key: str) -> dict[str, str]:
        """The headers with ``$KEY`` replaced by ``key``."""
        return {k: v.replace(KEY_PLACEHOLDER, key) for k, v in self.headers.items()}

    def content(self) -> bytes | None:
        """The bytes to send: raw text for a string body, JSON otherwise."""
        if self.body is None:
            return None
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")

    def content_size(self) -> int:
        content = self.content()
        return 0 if content is None else len(content)


def entry_from_dict(data: Mapping[str, Any], where: str = "<entry>") -> CorpusEntry:
    """Check one parsed line and build its entry; :class:`CorpusError` names ``where``."""
    if not isinstance(data, Mapping):
        raise CorpusError(f"{where}: expected a JSON object")
    missing = [name for name in _FIELDS if name not in data]
    unknown = sorted(set(data) - set(_FIELDS))
    if missing or unknown:
        raise CorpusError(f"{where}: missing fields {missing}, unknown fields {unknown}")
    for name in ("id", "description", "method", "path"):
        if not isinstance(data[name], str) or not data[name]:
            raise CorpusError(f"{where}: {name}: expected a non-empty string")
    if not data["path"].startswith("/"):
        raise CorpusError(f"{where}: path: expected an absolute path, got {data['path']!r}")
    headers = data["headers"]
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise CorpusError(f"{where}: headers: expected an object of strings")
    if not isinstance(data["stream"], bool):
        raise CorpusError(f"{where}: stream: expected a boolean")
    expect = data["expect"]
    if not isinstance(expect, dict) or "status" not in expect:
        raise CorpusError(f"{where}: expect: expected an object with a status")
    return CorpusEntry(
        id=data["id"],
        description=data["description"],
        method=data["method"].upper(),
        path=data["path"],
        headers=dict(headers),
        body=data["body"],
        stream=data["stream"],
        expect_status=_statuses(expect["status"], where),
    )


def entry_to_dict(entry: CorpusEntry) -> dict[str, Any]:
    statuses = entry.expect_status
    return {
        "id": entry.id,
        "description": entry.description,
        "method": entry.method,
        "path": entry.path,
        "headers": entry.headers,
        "body": entry.body,
        "stream": entry.stream,
        "expect": {"status": statuses[0] if len(statuses) == 1 else list(statuses)},
    }


def load_corpus(path: str | Path = CORPUS_PATH) -> list[CorpusEntry]:
    """Every entry of a JSONL corpus, in file order; ids must be unique."""
    path = Path(path)
    entries: list[CorpusEntry] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{where}: not JSON: {exc.msg}") from None
            entry = entry_from_dict(data, where)
            if entry.id in seen:
                raise CorpusError(f"{where}: duplicate id {entry.id!r}")
            seen.add(entry.id)
            entries.append(entry)
    return entries


def dump_corpus(entries: Iterable[CorpusEntry], path: str | Path) -> int:
    """Write entries as JSONL (one compact line each); the count."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for entry in entries:
            line = json.dumps(entry_to_dict(entry), ensure_ascii=False, separators=(",", ":"))
            out.write(line + "\n")
            count += 1
    return count


def _statuses(value: Any, where: str) -> tuple[int, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(
        isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in values
    ):
        raise CorpusError(f"{where}: expect.status: expected an HTTP status or a list of them")
    return tuple(values)
