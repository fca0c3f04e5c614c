"""The shadow store's captured client requests as a replay corpus.

The store holds requests already redacted (credential headers are ``[REDACTED]`` or not
kept at all). A recorded entry gets the corpus's ``$KEY`` placeholder in the header its
API format authenticates with (``x-api-key`` for Anthropic paths, ``Authorization:
Bearer`` otherwise), or a literal wrong key when the client's own request was refused
with 401, so a replay fails it again. Other secret headers are dropped. The status the
client got from the primary becomes the expectation.

With ``capture.store_prompts`` set to ``hash`` or ``none`` the prompt text is not in the
store: such entries keep the hashes (the shape, sizes and headers still replay) and are
counted as ``hashed``; their replies will differ from the original ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.corpus import KEY_PLACEHOLDER, CorpusEntry, dump_corpus
from harness.observation import CapturedRequest
from harness.redaction import SECRET_HEADERS
from harness.store.capture_store import CaptureStore, UnreadableRow
from harness.store.dialect import store_exists

__all__ = ["RecordSummary", "entry_for", "record"]

WRONG_KEY = "sk-recorded-wrong-key-000000000000"
_HASH_PREFIX = "sha256:"


@dataclass(frozen=True)
class RecordSummary:
    written: int
    skipped: int  # pairs whose client got no HTTP answer: nothing to expect
    hashed: int  # entries whose prompt text the store did not keep
    unreadable: int = 0  # rows that do not read back as a pair (not JSON, malformed)


def record(store_path: str | Path, out_path: str | Path) -> RecordSummary:
    """Export every captured request of the store at ``store_path`` to ``out_path``."""
    if not store_exists(store_path, "--store"):
        raise FileNotFoundError(f"{store_path}: no capture store here")
    skipped = hashed = unreadable = 0

    def entries(store: CaptureStore) -> Iterator[CorpusEntry]:
        nonlocal skipped, hashed, unreadable
        for stored in store.iter_rows():
            if isinstance(stored, UnreadableRow):
                unreadable += 1
                continue
            status = stored.pair.primary.status
            if status is None:
                skipped += 1
                continue
            entry = entry_for(stored.id, stored.pair.request, status)
            hashed += int(_has_hashes(entry.body))
            yield entry

    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    with CaptureStore(store_path, spill=False) as store:
        written = dump_corpus(entries(store), out_path)
    return RecordSummary(written, skipped, hashed, unreadable)


def entry_for(row_id: int, request: CapturedRequest, status: int) -> CorpusEntry:
    """One captured request as a corpus entry expecting ``status``."""
    when = datetime.fromtimestamp(request.received_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return CorpusEntry(
        id=f"pair-{row_id}",
        description=(
            f"recorded {when}: {request.client_family} {request.endpoint}"
            f"{' stream' if request.stream else ''} {request.model or ''}".rstrip()
            + f" (request {request.request_id})"
        ),
        method=request.method,
        path=request.path,
        headers=_placeholder_auth(request.headers, request.endpoint, status),
        body=request.body,
        stream=request.stream,
        expect_status=(status,),
    )


def _placeholder_auth(headers: dict[str, str], endpoint: str, status: int) -> dict[str, str]:
    kept = {k: v for k, v in headers.items() if k.lower() not in SECRET_HEADERS}
    key = WRONG_KEY if status == 401 else KEY_PLACEHOLDER
    if endpoint in ("messages", "count_tokens"):
        kept["x-api-key"] = key
    else:
        kept["authorization"] = f"Bearer {key}"
    return kept


def _has_hashes(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith(_HASH_PREFIX)
    if isinstance(value, dict):
        return any(_has_hashes(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_hashes(v) for v in value)
    return False
