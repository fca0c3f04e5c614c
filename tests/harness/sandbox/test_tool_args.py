from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sandbox.tool_args import arguments_from_schema, value_from_schema
from tests.harness.sandbox.bodies import WEATHER_SCHEMA


def test_fills_only_required_properties_with_typed_values() -> None:
    args = arguments_from_schema(WEATHER_SCHEMA)
    assert args == {"city": "sandbox city", "unit": "celsius", "days": 1}
    jsonschema.validate(args, WEATHER_SCHEMA)


def test_is_deterministic() -> None:
    assert arguments_from_schema(WEATHER_SCHEMA) == arguments_from_schema(dict(WEATHER_SCHEMA))


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "sandbox value"),
        ({"type": "integer"}, 1),
        ({"type": "number"}, 1.5),
        ({"type": "boolean"}, True),
        ({"type": "null"}, None),
        ({"type": ["null", "integer"]}, 1),
        ({"const": "fixed"}, "fixed"),
        ({"type": "string", "enum": ["b", "a"]}, "b"),
        ({"type": "integer", "default": 42}, 42),
        ({"type": "string", "examples": ["ex"]}, "ex"),
        ({"type": "string", "format": "date-time"}, "2025-01-01T00:00:00Z"),
        ({"type": "string", "format": "uuid"}, "00000000-0000-4000-8000-000000000000"),
        ({"type": "string", "minLength": 20}, "sandbox valuexxxxxxx"),
        ({"type": "string", "maxLength": 3}, "san"),
        ({"type": "integer", "minimum": 10}, 10),
        ({"type": "integer", "exclusiveMinimum": 10}, 11),
        ({"type": "integer", "maximum": -3}, -3),
        ({"type": "integer", "multipleOf": 5, "minimum": 7}, 10),
        ({"type": "number", "minimum": 2, "maximum": 3}, 2.5),
        ({"type": "number", "exclusiveMaximum": 0}, -1.0),
        ({"type": "array", "items": {"type": "integer"}}, [1]),
        (
            {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True},
            ["sandbox value 1", "sandbox value 2"],
        ),
        ({"type": "array", "maxItems": 0}, []),
        ({"anyOf": [{"type": "null"}, {"type": "integer"}]}, 1),
        ({"oneOf": [{"type": "boolean"}, {"type": "string"}]}, True),
    ],
)
def test_value_per_schema_keyword(schema: dict[str, Any], expected: Any) -> None:
    assert value_from_schema(schema) == expected
    jsonschema.validate(expected, schema)


def test_refs_allof_and_nesting() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
        },
        "properties": {
            "origin": {"$ref": "#/$defs/Point"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "meta": {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "integer"}}, "required": ["b"]},
                ]
            },
        },
        "required": ["origin", "tags", "meta"],
    }
    args = arguments_from_schema(schema)
    assert args == {
        "origin": {"x": 1.5},
        "tags": ["sandbox tags"],
        "meta": {"a": "sandbox a", "b": 1},
    }
    jsonschema.validate(args, schema)


def test_recursive_ref_terminates() -> None:
    schema = {
        "type": "object",
        "properties": {"child": {"$ref": "#"}},
        "required": ["child"],
    }
    args = arguments_from_schema(schema)
    assert isinstance(args["child"], dict)


@pytest.mark.parametrize("schema", [None, "text", {}, {"type": "object"}, {"type": "string"}])
def test_degenerate_schemas_give_an_object(schema: Any) -> None:
    assert arguments_from_schema(schema) == {}


_leaf = st.one_of(
    st.just({"type": "string"}),
    st.builds(lambda lo: {"type": "string", "minLength": lo}, st.integers(0, 30)),
    st.builds(lambda hi: {"type": "string", "maxLength": hi}, st.integers(0, 30)),
    st.builds(
        lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
        st.integers(-100, 100),
        st.integers(0, 50),
    ),
    st.builds(
        lambda lo, span: {"type": "number", "exclusiveMinimum": lo, "exclusiveMaximum": lo + span},
        st.floats(-100, 100, allow_nan=False),
        st.floats(0.01, 50, allow_nan=False),
    ),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.builds(
        lambda values: {"enum": values},
        st.lists(st.integers() | st.text(max_size=5), min_size=1, max_size=4),
    ),
    st.sampled_from([{"type": "string", "format": f} for f in ("date", "email", "uri", "ipv4")]),
)


def _objects(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    properties = st.dictionaries(
        st.from_regex(r"[a-z_]{1,8}", fullmatch=True), children, max_size=4
    )
    return properties.flatmap(
        lambda props: st.builds(
            lambda required: {"type": "object", "properties": props, "required": sorted(required)},
            st.sets(st.sampled_from(sorted(props)) if props else st.nothing(), max_size=len(props)),
        )
    )


_schemas = st.recursive(
    _leaf,
    lambda children: st.one_of(
        _objects(children),
        st.builds(
            lambda item, n: {"type": "array", "items": item, "minItems": n},
            children,
            st.integers(0, 3),
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(_objects(_schemas))
def test_generated_arguments_validate_against_their_schema(schema: dict[str, Any]) -> None:
    args = arguments_from_schema(schema)
    jsonschema.validate(args, schema, format_checker=jsonschema.FormatChecker())
    assert set(args) == set(schema["required"])
