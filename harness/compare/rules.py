"""Ignore rules: which parts of a normalized answer never count as a difference.

A rule is a path, written either like a deepdiff path (``root['id']``,
``root['choices'][*]['id']``) or dotted (``choices[*].message.tool_calls[*].id``,
``headers.date``). Globs: ``[*]`` any list index, ``*`` inside a key any characters
(``headers.x-litellm-*``), a leading ``*.`` (or ``**`` anywhere) any depth, so ``*.id``
is every ``id`` key. Paths address the response body unless they start with a section
of the normalized answer (``status``, ``error_type``, ``headers``, ``stream``, ``body``).

A rule ending in `` as model-id`` does not ignore the value: it compares it as a model
id, so a config alias and the upstream id it stands for are equal
(``claude-sonnet-4.5`` == ``anthropic/claude-sonnet-4-5-20250929``); the original value
is kept as an ignored difference when it changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "IGNORED",
    "SECTIONS",
    "IgnoreRules",
    "Normalized",
    "PathKey",
    "PathPattern",
    "canonical_model",
    "format_path",
]

# The top-level keys of a normalized answer; a rule not starting with one addresses body.
SECTIONS = ("status", "error_type", "headers", "body", "stream")
# What an ignored list item becomes, so the items after it keep their indices.
IGNORED = "<ignored>"
_MODEL_SUFFIX = " as model-id"
_SEP = "\x00"  # cannot occur in a key, so a key glob never crosses segments

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Normalized:
    """A normalized answer and what the rules took out of it (path -> (rule, value))."""

    value: dict[str, Any]
    ignored: dict[PathKey, tuple[str, Any]] = field(default_factory=dict)


def format_path(path: PathKey) -> str:
    """``('body', 'choices', 0, 'id')`` -> ``body.choices[0].id``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_DATE_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$")
_DOTTED_VERSION = re.compile(r"(?<=\d)\.(?=\d)")


def canonical_model(name: Any, aliases: Mapping[str, str] | None = None) -> Any:
    """A model id reduced to what identifies the model across alias and upstream names.

    The alias map (config ``model_name`` -> ``litellm_params.model``) is applied first;
    then the provider prefix, a date or ``-latest`` suffix and dotted versions go:
    ``claude-sonnet-4.5``, ``anthropic/claude-sonnet-4-5-20250929`` -> ``claude-sonnet-4-5``.
    """
    if not isinstance(name, str):
        return name
    name = (aliases or {}).get(name, name)
    name = name.rsplit("/", 1)[-1].strip().lower()
    name = _DATE_SUFFIX.sub("", name)
    return _DOTTED_VERSION.sub("-", name)


_TOKEN = re.compile(
    r"""\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\]|\[(\*|\d+)\]|\.?([^.\[\]]+)"""
)


def _segments(path: str, sections: tuple[str, ...] = SECTIONS) -> list[tuple[str, str]]:
    """Parse a rule path into ``("k", glob)``, ``("i", "*"|"n")`` and ``("**", "")``."""
    text = path.strip()
    if text.startswith("root"):
        text = text[4:]
    segments: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot parse ignore rule path {path!r} at {text[pos:]!r}")
        quoted1, quoted2, index, bare = match.groups()
        if index is not None:
            segments.append(("i", index))
        elif bare == "**" or (bare == "*" and not segments):
            segments.append(("**", ""))
        else:
            key = quoted1 if quoted1 is not None else quoted2 if quoted2 is not None else bare
            segments.append(("k", key))
        pos = match.end()
    if not segments:
        raise ValueError(f"empty ignore rule path {path!r}")
    if segments[0][0] != "k" or segments[0][1] not in sections:
        segments.insert(0, ("k", "body"))
    return segments


def _encoded(segments: list[tuple[str, str]]) -> str:
    """A concrete path's segments as the text :func:`_regex` patterns match."""
    return "".join(f"{_SEP}{kind}{text}" for kind, text in segments)


def _regex(segments: list[tuple[str, str]]) -> str:
    parts = []
    for kind, text in segments:
        if kind == "**":
            parts.append(f"(?:{_SEP}[^{_SEP}]*)*")
        elif kind == "i":
            parts.append(f"{_SEP}i" + (r"\d+" if text == "*" else text))
        else:
            parts.append(f"{_SEP}k" + "".join(_GLOB.get(c) or re.escape(c) for c in text))
    return "".join(parts)


# Glob characters within one key; they never match across the segment separator.
_GLOB = {"*": f"[^{_SEP}]*", "?": f"[^{_SEP}]"}


class PathPattern:
    """One rule path, with the ignore rules' syntax, matched against a difference's
    concrete path (``body.data[0].id``, ``upstream[0].headers.x-sm-user-id``)."""

    def __init__(self, pattern: str, sections: tuple[str, ...] = SECTIONS) -> None:
        self.pattern = pattern
        self._sections = sections
        self._regex = re.compile(_regex(_segments(pattern, sections)))

    def matches(self, path: str) -> bool:
        try:
            segments = _segments(path, self._sections)
        except ValueError:  # not a path this syntax can spell: no rule is about it
            return False
        return self._regex.fullmatch(_encoded(segments)) is not None


class IgnoreRules:
    """Compiled rules; :meth:`apply` returns the answer without what they cover."""

    def __init__(self, rules: Iterable[str], model_aliases: Mapping[str, str] | None = None):
        self.rules = tuple(rules)
        self._aliases = dict(model_aliases or {})
        self._model_rules: set[str] = set()
        groups = []
        for index, rule in enumerate(self.rules):
            path = rule
            if rule.endswith(_MODEL_SUFFIX):
                path = rule[: -len(_MODEL_SUFFIX)]
                self._model_rules.add(f"r{index}")
            groups.append(f"(?P<r{index}>{_regex(_segments(path))})")
        self._pattern = re.compile("|".join(groups)) if groups else None

    def apply(self, value: dict[str, Any]) -> Normalized:
        if self._pattern is None:
            return Normalized(value)
        ignored: dict[PathKey, tuple[str, Any]] = {}
        return Normalized(self._walk(value, "", (), ignored), ignored)

    def _walk(
        self, value: Any, text: str, path: PathKey, ignored: dict[PathKey, tuple[str, Any]]
    ) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                kept = self._child(item, f"{text}{_SEP}k{key}", (*path, key), ignored)
                if kept is not _DROP:
                    out[key] = kept
            return out
        if isinstance(value, list):
            items = [
                self._child(item, f"{text}{_SEP}i{i}", (*path, i), ignored)
                for i, item in enumerate(value)
            ]
            return [IGNORED if item is _DROP else item for item in items]
        return value

    def _child(
        self, value: Any, text: str, path: PathKey, ignored: dict[PathKey, tuple[str, Any]]
    ) -> Any:
        assert self._pattern is not None
        match = self._pattern.fullmatch(text)
        if match is None:
            return self._walk(value, text, path, ignored)
        group = match.lastgroup or ""
        rule = self.rules[int(group[1:])]
        if group in self._model_rules:
            # The original is always kept: the ignored differences show alias vs upstream id.
            ignored[path] = (rule, value)
            return canonical_model(value, self._aliases)
        ignored[path] = (rule, value)
        return _DROP


_DROP = object()
