"""Two normalized answers -> the list of their differences, each in one category (pure).

Taxonomy (:data:`CATEGORIES`), decided by where a difference is and what kind it is:

=================  ==============================================================
status             HTTP status (None: no answer)
error_type         the API error ``type`` / transport error; other ``error`` fields
error_message      ``error.message`` wording
schema             a key present on one side only (outside the areas below)
type_change        a value of a different JSON type (outside the areas below)
finish_reason      ``finish_reason``, ``stop_reason``, ``stop_sequence``
tool_calls         tool calls / ``tool_use`` blocks: names, ids, arguments as parsed JSON
content            message text, refusal, reasoning; text blocks; whole choices
usage              token counts (and ``count_tokens``' ``input_tokens``)
model              the answer's model id
headers            compared response headers
stream_sequence    the stream's event sequence (runs of deltas collapsed)
stream_ending      ``[DONE]`` / ``message_stop`` seen on one side only
upstream           what the targets sent upstream (``upstream.upstream_parity``)
other              any other value
=================  ==============================================================

Content strings that differ only in whitespace, or whose ``difflib`` similarity ratio
reaches the threshold, are returned as ignored differences, not dropped.

The walk is our own rather than DeepDiff's: equal answers cost one ``==`` and one pass
to tell ``true`` from ``1`` (which ``==`` does not), differing dicts are walked key by
key down to the values that differ, and lists of different lengths are aligned on equal
items (``difflib``), so one inserted content block is one addition rather than a change
at every later index. DeepDiff cost 0.3-0.5 ms per call on a small chat body and pairs
list items by index; it stays the oracle of this module's property test.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.compare.rules import PathKey, format_path

__all__ = [
    "CATEGORIES",
    "DEFAULT_CONTENT_SIMILARITY",
    "MISSING",
    "Difference",
    "categorize",
    "diff",
    "diff_ignored",
]

CATEGORIES: tuple[str, ...] = (
    "status",
    "error_type",
    "error_message",
    "schema",
    "type_change",
    "finish_reason",
    "tool_calls",
    "content",
    "usage",
    "model",
    "headers",
    "stream_sequence",
    "stream_ending",
    "upstream",
    "other",
)
MISSING = "<missing>"  # the value on the side that lacks the key or item
DEFAULT_CONTENT_SIMILARITY = 0.95

_TOOL_BLOCKS = frozenset({"tool_use", "server_tool_use"})
_FINISH_KEYS = frozenset({"finish_reason", "stop_reason", "stop_sequence"})
_CONTENT_KEYS = frozenset({"content", "refusal", "reasoning_content", "message"})
# A key missing on one side is its area's difference (not ``schema``) when it is one of
# these: the content, the tool calls, the finish reason, the model, the error itself.
_AREA_KEYS = frozenset(
    {
        "tool_calls",
        "function_call",
        "content",
        "refusal",
        "text",
        "thinking",
        "input",
        "arguments",
        "name",
        "finish_reason",
        "stop_reason",
        "stop_sequence",
        "model",
        "error",
    }
)
_TYPE_AREAS = frozenset(
    {"content", "tool_calls", "finish_reason", "model", "error_type", "error_message"}
)


@dataclass(frozen=True)
class Difference:
    """One difference: where, in which category, both values, and why it was ignored."""

    category: str
    path: str
    primary: Any
    candidate: Any
    ignored: bool = False
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diff(
    primary: Mapping[str, Any],
    candidate: Mapping[str, Any],
    *,
    content_similarity: float = DEFAULT_CONTENT_SIMILARITY,
) -> list[Difference]:
    """The differences between two normalized answers (empty when equal)."""
    if _same(primary, candidate):
        return []
    found = _Differ(primary, candidate, content_similarity)
    for key in ("status", "error_type"):
        if not _same(primary.get(key), candidate.get(key)):
            found.add((key,), "value", primary.get(key), candidate.get(key))
    found.mapping(("headers",), primary.get("headers") or {}, candidate.get("headers") or {})
    found.stream(primary.get("stream"), candidate.get("stream"))
    found.body(primary.get("body"), candidate.get("body"))
    return found.differences


def diff_ignored(
    primary: Mapping[PathKey, tuple[str, Any]],
    candidate: Mapping[PathKey, tuple[str, Any]],
    primary_root: Mapping[str, Any],
    candidate_root: Mapping[str, Any],
) -> list[Difference]:
    """What the ignore rules took out and that differed, as ignored differences."""
    out = []
    for path in sorted(primary.keys() | candidate.keys(), key=format_path):
        p_rule, c_rule = primary.get(path), candidate.get(path)
        a = p_rule[1] if p_rule else MISSING
        b = c_rule[1] if c_rule else MISSING
        if _same(a, b):
            continue
        change = "removed" if c_rule is None else "added" if p_rule is None else "value"
        rule = (p_rule or c_rule or ("", None))[0]
        category = categorize(path, change, primary_root, candidate_root)
        out.append(Difference(category, format_path(path), a, b, True, f"rule: {rule}"))
    return out


def categorize(
    path: PathKey, change: str, primary_root: Mapping[str, Any], candidate_root: Mapping[str, Any]
) -> str:
    """The category of a change (added, removed, type, value) at ``path``."""
    section = path[0] if path else ""
    if section in ("status", "error_type", "headers"):
        return str(section)
    if section == "stream":
        return "stream_ending" if "complete" in path else "stream_sequence"
    if section != "body":
        return "other"
    rest = path[1:]
    # An added item exists on the candidate's side only, a removed one on the primary's.
    primary_body = primary_root.get("body") if change != "added" else None
    candidate_body = candidate_root.get("body") if change != "removed" else None
    area = _area(rest, primary_body, candidate_body)
    if change in ("added", "removed"):
        # Inside a tool call everything is the call (arguments are the model's output).
        if area == "tool_calls" or (area and (isinstance(rest[-1], int) or rest[-1] in _AREA_KEYS)):
            return area
        return "schema"
    if change == "type":
        return area if area in _TYPE_AREAS else "type_change"
    return area or "other"


def _area(rest: PathKey, primary_body: Any, candidate_body: Any) -> str | None:
    if not rest:
        return None
    keys = [part for part in rest if isinstance(part, str)]
    head = rest[0]
    if "tool_calls" in keys or "function_call" in keys:
        return "tool_calls"
    if head == "error":
        return "error_message" if rest[-1] == "message" else "error_type"
    if head == "usage" or rest == ("input_tokens",):
        return "usage"
    if rest == ("model",):
        return "model"
    if keys and keys[-1] in _FINISH_KEYS:
        return "finish_reason"
    if head == "content":
        if len(rest) >= 2 and isinstance(rest[1], int):
            types = {_block_type(primary_body, rest[1]), _block_type(candidate_body, rest[1])}
            return "tool_calls" if types & _TOOL_BLOCKS else "content"
        return "content"
    if head == "choices" and (len(rest) <= 2 or keys[-1] in _CONTENT_KEYS):
        return "content"
    return None


def _block_type(body: Any, index: int) -> str | None:
    try:
        block_type = body["content"][index].get("type")
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    # A malformed answer's "type" may be a list or an object: not a block type, and not
    # something to put in a set.
    return block_type if isinstance(block_type, str) else None


class _Differ:
    """Collects differences, descending only into what differs."""

    def __init__(
        self, primary: Mapping[str, Any], candidate: Mapping[str, Any], similarity: float
    ) -> None:
        self.primary_root = primary
        self.candidate_root = candidate
        self.similarity = similarity
        self.differences: list[Difference] = []

    def add(self, path: PathKey, change: str, a: Any, b: Any) -> None:
        category = categorize(path, change, self.primary_root, self.candidate_root)
        ignored, detail = False, ""
        if category == "content" and isinstance(a, str) and isinstance(b, str):
            ignored, detail = _similar(a, b, self.similarity)
        self.differences.append(Difference(category, format_path(path), a, b, ignored, detail))

    def mapping(self, path: PathKey, a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
        for key in [*a, *(k for k in b if k not in a)]:
            if key not in b:
                self.add((*path, key), "removed", a[key], MISSING)
            elif key not in a:
                self.add((*path, key), "added", MISSING, b[key])
            elif not _same(a[key], b[key]):
                self.value((*path, key), a[key], b[key])

    def value(self, path: PathKey, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            self.mapping(path, a, b)
        elif isinstance(a, list) and isinstance(b, list):
            self.sequence(path, a, b)
        else:
            self.add(path, "type" if _json_type(a) != _json_type(b) else "value", a, b)

    def sequence(self, path: PathKey, a: list[Any], b: list[Any]) -> None:
        """Lists in order: aligned on equal items, so one inserted block is one addition."""
        opcodes: Sequence[tuple[str, int, int, int, int]] = [("replace", 0, len(a), 0, len(b))]
        if len(a) != len(b):
            matcher = difflib.SequenceMatcher(None, _fingerprints(a), _fingerprints(b), False)
            opcodes = matcher.get_opcodes()
        for tag, i1, i2, j1, j2 in opcodes:
            if tag == "equal":
                continue
            paired = min(i2 - i1, j2 - j1)
            for k in range(paired):
                if not _same(a[i1 + k], b[j1 + k]):
                    self.value((*path, i1 + k), a[i1 + k], b[j1 + k])
            for i in range(i1 + paired, i2):
                self.add((*path, i), "removed", a[i], MISSING)
            for j in range(j1 + paired, j2):
                self.add((*path, j), "added", MISSING, b[j])

    def stream(self, a: Any, b: Any) -> None:
        if _same(a, b):
            return
        if not isinstance(a, dict) or not isinstance(b, dict):
            change = "removed" if b is None else "added" if a is None else "type"
            self.add(("stream",), change, MISSING if a is None else a, MISSING if b is None else b)
            return
        for key in [*a, *(k for k in b if k not in a)]:
            if not _same(a.get(key, MISSING), b.get(key, MISSING)):
                self.add(("stream", key), "value", a.get(key, MISSING), b.get(key, MISSING))

    def body(self, a: Any, b: Any) -> None:
        if _same(a, b):
            return
        if isinstance(a, dict) and isinstance(b, dict):
            self.mapping(("body",), a, b)
        else:
            self.value(("body",), a, b)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: Python's ``==``, except that ``true`` is not ``1`` (Python's
    ``True == 1``). ``1`` and ``1.0`` stay equal: JSON has one number type."""
    return a == b and _no_boolean_for_number(a, b)


def _no_boolean_for_number(a: Any, b: Any) -> bool:
    """Whether two values that are ``==`` also agree on which of them are booleans.

    ``==`` has already run at C speed; this walk only looks for a boolean where the other
    side has a number, so equal answers cost one pass over them.
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b)
    if isinstance(a, dict):  # so is b, with the same keys: they are ==
        return all(_no_boolean_for_number(item, b[key]) for key, item in a.items())
    if isinstance(a, list):
        return all(_no_boolean_for_number(x, y) for x, y in zip(a, b, strict=True))
    return True


def _fingerprints(items: list[Any]) -> list[str]:
    return [json.dumps(item, sort_keys=True, default=str) for item in items]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _similar(a: str, b: str, threshold: float) -> tuple[bool, str]:
    """Whether two texts are the same content for the comparison, and why."""
    if a.split() == b.split():
        return True, "whitespace only"
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    # quick_ratio bounds ratio from above: below the threshold, ratio is too.
    quick = matcher.quick_ratio()
    if quick < threshold:
        return False, f"similarity <= {quick:.3f}"
    ratio = matcher.ratio()
    if ratio >= threshold:
        return True, f"similarity {ratio:.3f} >= {threshold}"
    return False, f"similarity {ratio:.3f}"
