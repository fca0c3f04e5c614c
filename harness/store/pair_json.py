"""Captured pairs as plain JSON-able dicts and back (the store's rows, JSONL exports).

Reading ignores keys the data model no longer has, so old rows and exports stay readable
after :mod:`harness.observation` drops a field; fields it gained take their defaults.

Reading is also where a malformed capture stops: :func:`pair_from_dict` checks every
field against the data model's annotations (a timing is a finite number, a header a
string, ...) and :func:`loads` refuses text that is not JSON, so whatever comes out is a
well-typed :class:`CapturedPair` and whatever does not raises :class:`MalformedPair`.
Its message names the field and what was wrong, never the content: a malformed row may
hold a prompt or a credential.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Union

from harness.errors import HarnessError
from harness.observation import CapturedPair, Observation

__all__ = ["MalformedPair", "loads", "observation_from_dict", "pair_from_dict", "pair_to_dict"]

# received_at is shown as a UTC date: it must be one datetime can show (up to 9999-12-31).
_LAST_UNIX_SECOND = 253_402_300_799.0

# A field's path, built only when an error is reported: (parent, field name or "[*]").
_Path = tuple[Any, str] | tuple[()]
_Convert = Callable[[Any, _Path], Any]


class MalformedPair(HarnessError, ValueError):
    """A stored pair that does not read back: which field, and what was wrong with it."""


def pair_to_dict(pair: CapturedPair) -> dict[str, Any]:
    return dataclasses.asdict(pair)


def pair_from_dict(data: Any) -> CapturedPair:
    """The pair ``data`` describes; :class:`MalformedPair` when it describes none."""
    pair: CapturedPair = _converter(CapturedPair)(data, ())
    if not 0.0 <= pair.request.received_at <= _LAST_UNIX_SECOND:
        raise MalformedPair("request.received_at: not a unix time")
    return pair


def observation_from_dict(data: Any) -> Observation:
    observation: Observation = _converter(Observation)(data, ())
    return observation


def loads(column: str, text: Any) -> Any:
    """One JSON column's value; :class:`MalformedPair` when the text is not JSON."""
    if not isinstance(text, str | bytes):
        raise MalformedPair(f"{column}: not text")
    try:
        return json.loads(text, parse_constant=_not_json)
    except MalformedPair as exc:
        raise MalformedPair(f"{column}: {exc}") from None
    except UnicodeDecodeError:
        raise MalformedPair(f"{column}: not UTF-8") from None
    except json.JSONDecodeError as exc:
        # The decoder's own words ("Expecting value"), never the text it stopped at.
        raise MalformedPair(f"{column}: not JSON ({exc.msg})") from None
    except ValueError:  # e.g. an integer too long to convert
        raise MalformedPair(f"{column}: not JSON") from None
    except RecursionError:
        raise MalformedPair(f"{column}: nested too deeply to read") from None


def _not_json(constant: str) -> Any:
    raise MalformedPair(f"{constant} is not JSON")


# -- checking a value against an annotation ---------------------------------------------


def _path_text(path: _Path) -> str:
    names: list[str] = []
    while path:
        path, name = path
        names.append(name)
    text = ""
    for name in reversed(names):
        text += name if name == "[*]" or not text else f".{name}"
    return text or "pair"


def _malformed(path: _Path, expected: str, value: Any) -> MalformedPair:
    return MalformedPair(f"{_path_text(path)}: expected {expected}, got {_json_type(value)}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number" if _is_finite(value) else "a number out of range"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


@functools.cache
def _converter(hint: Any) -> _Convert:
    """Check-and-convert for one annotation: JSON value -> the data model's value."""
    if hint is Any:
        return lambda value, path: value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        if len(arms) != 1 or len(args) != 2:
            raise TypeError(f"unsupported annotation {hint!r}")
        if arms[0] in _SCALARS:
            accepts, expected = _SCALARS[arms[0]]
            cast = float if arms[0] is float else None
            return _scalar(lambda v: v is None or accepts(v), f"{expected} or null", cast)
        return _optional(_converter(arms[0]))
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _dataclass(hint)
    if hint is float:  # an integer in the JSON is a float in the data model
        return _scalar(_is_finite, _SCALARS[float][1], float)
    if hint in _SCALARS:
        return _scalar(*_SCALARS[hint])
    if origin is dict and args[0] is str:
        return _mapping(_converter(args[1]), _describe(hint))
    if origin is list:
        return _sequence(_converter(args[0]), _describe(hint), list)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _sequence(_converter(args[0]), _describe(hint), tuple)
    raise TypeError(f"unsupported annotation {hint!r}")


def _describe(hint: Any) -> str:
    if hint in _SCALARS:
        return _SCALARS[hint][1]
    if typing.get_origin(hint) is dict or dataclasses.is_dataclass(hint):
        return "an object"
    return "an array"


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    # Compared, not converted: an integer too big for a float must not raise here.
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and -sys.float_info.max <= value <= sys.float_info.max


_SCALARS: dict[Any, tuple[Callable[[Any], bool], str]] = {
    str: (_is_str, "a string"),
    bool: (_is_bool, "a boolean"),
    int: (_is_int, "an integer"),
    float: (_is_finite, "a finite number"),
}


def _scalar(
    accepts: Callable[[Any], bool], expected: str, cast: Callable[[Any], Any] | None = None
) -> _Convert:
    def convert(value: Any, path: _Path) -> Any:
        if not accepts(value):
            raise _malformed(path, expected, value)
        return value if cast is None or value is None else cast(value)

    return convert


def _optional(inner: _Convert) -> _Convert:
    def convert(value: Any, path: _Path) -> Any:
        return None if value is None else inner(value, path)

    return convert


def _mapping(item: _Convert, expected: str) -> _Convert:
    def convert(value: Any, path: _Path) -> Any:
        if not isinstance(value, dict):
            raise _malformed(path, expected, value)
        # Keys are data (header names, targets): the path says "[*]", never the key.
        where = (path, "[*]")
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):  # not from JSON, but pair_from_dict takes any dict
                raise _malformed(where, "string keys", key)
            out[key] = item(v, where)
        return out

    return convert


def _sequence(item: _Convert, expected: str, kind: Callable[[Iterable[Any]], Any]) -> _Convert:
    def convert(value: Any, path: _Path) -> Any:
        if not isinstance(value, list | tuple):
            raise _malformed(path, expected, value)
        where = (path, "[*]")
        return kind(item(v, where) for v in value)

    return convert


def _dataclass(cls: Any) -> _Convert:
    hints = typing.get_type_hints(cls)
    fields = [
        (
            f.name,
            _converter(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
        if f.init
    ]

    def convert(value: Any, path: _Path) -> Any:
        if not isinstance(value, dict):
            raise _malformed(path, "an object", value)
        known = {}
        for name, field_convert, required in fields:
            if name in value:
                known[name] = field_convert(value[name], (path, name))
            elif required:
                raise MalformedPair(f"{_path_text((path, name))}: missing")
        return cls(**known)

    return convert
