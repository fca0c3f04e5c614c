"""Tool-call arguments generated from a tool's JSON schema, deterministically.

The sandbox answers a tool-offering request with a call whose arguments validate against
the tool's schema: every ``required`` property gets a value of its type (honouring
``enum``, ``const``, ``default``, ``format``, numeric and length bounds, ``$ref``,
``anyOf``/``oneOf``/``allOf``). Optional properties are left out, like a terse model.
The values depend only on the schema and property names, never on a clock or RNG.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["arguments_from_schema", "value_from_schema"]

_MAX_DEPTH = 12

_FORMAT_EXAMPLES = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "12:00:00",
    "email": "sandbox@example.com",
    "uri": "https://example.com/sandbox",
    "url": "https://example.com/sandbox",
    "uri-reference": "/sandbox",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def arguments_from_schema(schema: Any) -> dict[str, Any]:
    """Arguments for a tool whose input schema is ``schema`` (always a JSON object)."""
    if not isinstance(schema, Mapping):
        return {}
    value = value_from_schema(schema, name="input", root=schema)
    return value if isinstance(value, dict) else {}


def value_from_schema(
    schema: Any, *, name: str = "value", root: Mapping[str, Any] | None = None, depth: int = 0
) -> Any:
    """A value valid for ``schema``; ``name`` (the property name) flavours strings."""
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return f"sandbox {name}"
    root = schema if root is None else root
    schema = _resolve(schema, root, depth)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return value_from_schema(
                _prefer_non_null(options), name=name, root=root, depth=depth + 1
            )
    kind = _type_of(schema)
    if kind == "object":
        return _object(schema, root, depth)
    if kind == "array":
        return _array(schema, name, root, depth)
    if kind == "integer":
        return _integer(schema)
    if kind == "number":
        return _number(schema)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, name)


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
    """Follow a local ``$ref`` and fold ``allOf`` into one schema."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#") and depth <= _MAX_DEPTH:
        target: Any = root
        for segment in ref.lstrip("#").strip("/").split("/"):
            if not segment:
                continue
            segment = segment.replace("~1", "/").replace("~0", "~")
            target = target.get(segment) if isinstance(target, Mapping) else None
        if isinstance(target, Mapping):
            merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            return _resolve(merged, root, depth + 1)
    parts = schema.get("allOf")
    if isinstance(parts, list) and parts:
        merged_schema: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        properties: dict[str, Any] = dict(merged_schema.get("properties") or {})
        required: list[str] = list(merged_schema.get("required") or [])
        for part in parts:
            if not isinstance(part, Mapping):
                continue
            part = _resolve(part, root, depth + 1)
            properties.update(part.get("properties") or {})
            required.extend(r for r in part.get("required") or [] if r not in required)
            for key, value in part.items():
                merged_schema.setdefault(key, value)
        if properties:
            merged_schema["properties"] = properties
        if required:
            merged_schema["required"] = required
        return merged_schema
    return schema


def _prefer_non_null(options: list[Any]) -> Any:
    for option in options:
        if not (isinstance(option, Mapping) and option.get("type") == "null"):
            return option
    return options[0]


def _type_of(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or kind
        kind = kinds[0] if kinds else None
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _object(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    required = schema.get("required")
    result: dict[str, Any] = {}
    for key in required if isinstance(required, list) else []:
        if isinstance(key, str):
            result[key] = value_from_schema(
                properties.get(key, {}), name=key, root=root, depth=depth + 1
            )
    return result


def _array(schema: Mapping[str, Any], name: str, root: Mapping[str, Any], depth: int) -> list[Any]:
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list) and prefix:
        return [value_from_schema(p, name=name, root=root, depth=depth + 1) for p in prefix]
    minimum = _int(schema.get("minItems"), 0)
    maximum = _int(schema.get("maxItems"), max(minimum, 1))
    count = min(max(minimum, 1), maximum)
    items = schema.get("items", {})
    item = value_from_schema(items, name=name, root=root, depth=depth + 1)
    if schema.get("uniqueItems") and count > 1 and isinstance(item, str):
        return [f"{item} {i + 1}" for i in range(count)]
    return [item] * count


def _integer(schema: Mapping[str, Any]) -> int:
    low, high = _bounds(schema)
    low_int = None if low is None else (math.floor(low[0]) + 1 if low[1] else math.ceil(low[0]))
    high_int = (
        None if high is None else (math.ceil(high[0]) - 1 if high[1] else math.floor(high[0]))
    )
    value = 1
    step = schema.get("multipleOf")
    if isinstance(step, int) and not isinstance(step, bool) and step > 0:
        value = step
        if low_int is not None:
            value = max(value, math.ceil(low_int / step) * step)
        return value
    if low_int is not None:
        value = max(value, low_int)
    if high_int is not None:
        value = min(value, high_int)
    return value


def _number(schema: Mapping[str, Any]) -> float:
    low, high = _bounds(schema)
    if low is not None and high is not None:
        inside = (low[0] < 1.5 or (low[0] == 1.5 and not low[1])) and (
            1.5 < high[0] or (high[0] == 1.5 and not high[1])
        )
        return 1.5 if inside else (low[0] + high[0]) / 2
    if low is not None:
        return max(1.5, float(low[0]) + 1)
    if high is not None:
        return min(1.5, float(high[0]) - 1)
    return 1.5


_Bound = tuple[float, bool]  # (limit, exclusive)


def _bounds(schema: Mapping[str, Any]) -> tuple[_Bound | None, _Bound | None]:
    """The tightest lower and upper bound, each with whether it is exclusive."""
    lows: list[_Bound] = []
    highs: list[_Bound] = []
    for key, target, exclusive in (
        ("minimum", lows, False),
        ("exclusiveMinimum", lows, True),
        ("maximum", highs, False),
        ("exclusiveMaximum", highs, True),
    ):
        if _is_number(schema.get(key)):
            target.append((schema[key], exclusive))
    # At an equal limit the exclusive bound is the tighter one; True sorts after False.
    low = max(lows) if lows else None
    high = min(highs, key=lambda b: (b[0], not b[1])) if highs else None
    return low, high


def _string(schema: Mapping[str, Any], name: str) -> str:
    fmt = schema.get("format")
    value = (
        _FORMAT_EXAMPLES.get(fmt, f"sandbox {name}") if isinstance(fmt, str) else f"sandbox {name}"
    )
    minimum = _int(schema.get("minLength"), 0)
    maximum = _int(schema.get("maxLength"), max(len(value), minimum))
    if len(value) < minimum:
        value += "x" * (minimum - len(value))
    return value[:maximum]


def _int(value: Any, fallback: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else fallback
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
