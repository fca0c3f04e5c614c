"""Property: the comparator's diff finds a difference whenever DeepDiff finds one.

DeepDiff is the oracle. Both see the same two normalized answers (the comparator's own
normalization and ignore rules first), and wherever DeepDiff reports anything, ``diff``
must report at least one difference (an ignored one counts: it was found). The second
answer is the first with a small edit, so most pairs differ in one place only, the way
two proxies' answers do: a value, a key, a list item, or the type alone (``true`` for
``1``, ``"1"`` for ``1``).

JSON has one number type, and ``diff`` treats ``1`` and ``1.0`` as the same number on
purpose, so the oracle sees integral floats as integers. The converse is not a property:
DeepDiff itself takes ``[true]`` and ``[1]`` for equal lists.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from deepdiff import DeepDiff
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.compare import diff, normalize
from harness.compare.normalize import ENDPOINTS
from harness.observation import Observation
from tests.harness.builders import chat_observation, messages_observation, reply

Path = tuple[str | int, ...]

# Keys the categorizer and the ignore rules give a meaning to, and a few others.
_KEYS = st.sampled_from(
    [
        "id",
        "model",
        "choices",
        "message",
        "content",
        "tool_calls",
        "function",
        "arguments",
        "name",
        "input",
        "text",
        "type",
        "finish_reason",
        "stop_reason",
        "usage",
        "input_tokens",
        "error",
        "created",
        "data",
        "index",
    ]
) | st.text(max_size=5)
# Small integers and integral floats, so that true / 1 / 1.0 / "1" meet.
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-2, 3)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=8)
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=16,
)
_TOOL = ("get_weather", {"city": "Paris", "days": 3, "metric": True})


@st.composite
def _sandbox_body(draw: st.DrawFn) -> Any:
    """A real answer body, as the sandbox renders it (chat completion or message)."""
    text = draw(st.text(min_size=1, max_size=30))
    planned = reply(text, tool=_TOOL if draw(st.booleans()) else None)
    build = chat_observation if draw(st.booleans()) else messages_observation
    return build(planned).body


_BODIES = _sandbox_body() | _JSON


def _paths(value: Any, path: Path = ()) -> Iterator[Path]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _at(value: Any, path: Path) -> Any:
    for part in path:
        value = value[part]
    return value


def _lookalikes(value: Any) -> list[Any]:
    """Values equal or close to ``value`` in Python, not in JSON, or only in wording."""
    if isinstance(value, bool):
        return [int(value), float(value), str(value).lower(), not value]
    if isinstance(value, int | float):
        out: list[Any] = [str(value), value + 1, float(value) + 0.5]
        if value in (0, 1):
            out.append(bool(value))
        return out
    if isinstance(value, str):
        return [f" {value}", value.upper(), value + "!", value.replace(" ", "  ")]
    if value is None:
        return [False, 0, "", [], {}]
    return [[], {}, None]


@st.composite
def _edited(draw: st.DrawFn, value: Any, *, keep_root: bool = False) -> Any:
    """``value`` with one small edit somewhere (or none)."""
    paths = [p for p in _paths(value) if p or not keep_root]
    edit = draw(st.sampled_from(["none", "replace", "lookalike", "drop", "add"]))
    if edit == "none" or not paths:
        return copy.deepcopy(value)
    path = draw(st.sampled_from(paths))
    old = _at(value, path)
    if edit == "add" and isinstance(old, list | dict):
        new = copy.deepcopy(old)
        item = draw(_JSON)
        if isinstance(new, list):
            new.insert(draw(st.integers(0, len(new))), item)
        else:
            new[draw(_KEYS)] = item
    elif edit == "drop" and path:
        parent = copy.deepcopy(_at(value, path[:-1]))
        del parent[path[-1]]
        path, new = path[:-1], parent
    elif edit == "lookalike":
        new = draw(st.sampled_from(_lookalikes(old)))
    else:
        new = draw(_JSON)
    if not path:
        return new
    out = copy.deepcopy(value)
    _at(out, path[:-1])[path[-1]] = new
    return out


def _one_number_type(value: Any) -> Any:
    """JSON's view of numbers for the oracle: ``1.0`` is ``1`` (booleans stay booleans)."""
    if isinstance(value, dict):
        return {k: _one_number_type(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_one_number_type(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _assert_found_whenever_deepdiff_finds(a: dict[str, Any], b: dict[str, Any]) -> None:
    oracle = DeepDiff(_one_number_type(a), _one_number_type(b))
    if oracle:
        assert diff(a, b), f"DeepDiff found {oracle.to_dict()}, diff found nothing"


@settings(max_examples=200, deadline=None)
@given(
    endpoint=st.sampled_from(sorted(ENDPOINTS)),
    status=st.sampled_from([200, 400, 429, 500, None]),
    body=_BODIES,
    data=st.data(),
)
def test_diff_of_normalized_answers_finds_what_deepdiff_finds(
    endpoint: str, status: int | None, body: Any, data: st.DataObject
) -> None:
    other = data.draw(_edited(body))
    other_status = data.draw(st.sampled_from([status, status, 200, 503]))
    headers = {"content-type": "application/json"}
    a = normalize(Observation("sdk", status, headers, body=body), endpoint)
    b = normalize(Observation("legacy", other_status, headers, body=other), endpoint)
    _assert_found_whenever_deepdiff_finds(a.value, b.value)


_NORMALIZED = st.fixed_dictionaries(
    {
        "status": st.sampled_from([200, 500, None]),
        "error_type": st.none() | st.sampled_from(["api_error", "transport:timeout"]),
        "headers": st.dictionaries(st.just("content-type"), st.text(max_size=6)),
        "body": _BODIES,
    },
    optional={
        "stream": st.fixed_dictionaries(
            {"complete": st.booleans(), "sequence": st.lists(st.text(max_size=6), max_size=4)}
        )
    },
)


@settings(max_examples=150, deadline=None)
@given(value=_NORMALIZED, data=st.data())
def test_diff_of_any_normalized_shape_finds_what_deepdiff_finds(
    value: dict[str, Any], data: st.DataObject
) -> None:
    # Every section, the stream's included; the top level keeps its shape (a dict of
    # the normalized sections), as normalize always gives it.
    other = data.draw(_edited(value, keep_root=True))
    headers = other.get("headers", {})
    # normalize always gives status, error_type, headers (strings) and body; stream for
    # a stream only.
    assume(isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values()))
    assume(set(other) - {"stream"} == set(value) - {"stream"})
    _assert_found_whenever_deepdiff_finds(value, other)
