"""Edit a YAML file's text in place, keeping every comment and line.

Two edits: ``general_settings.use_sdk`` in the proxy config (``harness cutover``), and one
more item in a list under a top-level section (``harness accept`` adds a rule to
``compare.accept`` in ``harness.yaml``). A YAML round trip would reorder or drop comments;
each edit changes or inserts only its lines, then checks by parsing that the result
differs from the original in that key only.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from harness.errors import HarnessError

__all__ = ["ConfigEditError", "append_list_item", "read_use_sdk", "set_use_sdk"]

_TOP_LEVEL = re.compile(r"^[^\s#]")
_USE_SDK = re.compile(r"^(?P<indent>\s+)use_sdk:(?P<space>\s*)(?P<value>[^#\s]*)(?P<rest>.*)$")
_CHILD = re.compile(r"^(?P<indent>\s+)[^\s#]")


class ConfigEditError(HarnessError):
    """The file cannot be edited safely (its structure is not what the edit expects)."""


def read_use_sdk(text: str) -> bool:
    tree = yaml.safe_load(text) or {}
    general = tree.get("general_settings") or {}
    return bool(general.get("use_sdk", False))


def set_use_sdk(text: str, value: bool) -> tuple[str, bool]:
    """``(new text, changed)``; unchanged text when the flag already has ``value``."""
    if read_use_sdk(text) == value:
        return text, False
    literal = "true" if value else "false"
    lines = text.splitlines(keepends=True)
    new: str | None
    bounds = _section_bounds(lines, "general_settings")
    if bounds is None:
        new = f"{_with_newline(text)}general_settings:\n  use_sdk: {literal}\n"
    else:
        start, end = bounds
        new = None
        for i in range(start + 1, end):
            match = _USE_SDK.match(lines[i].rstrip("\n"))
            if match:
                newline = "\n" if lines[i].endswith("\n") else ""
                lines[i] = (
                    f"{match['indent']}use_sdk:{match['space'] or ' '}{literal}{match['rest']}"
                    f"{newline}"
                )
                new = "".join(lines)
                break
        if new is None:
            lines.insert(start + 1, f"{_child_indent(lines, start, end)}use_sdk: {literal}\n")
            new = "".join(lines)
    assert new is not None
    _check(text, new, value)
    return new, True


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") or not text else text + "\n"


def _section_bounds(lines: list[str], section: str) -> tuple[int, int] | None:
    """``(header line, first line after it)`` of a top-level mapping key, or None."""
    header = re.compile(rf"^{re.escape(section)}:\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line.rstrip("\n"))), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if _TOP_LEVEL.match(lines[i])), len(lines))
    return start, end


def _child_indent(lines: list[str], start: int, end: int) -> str:
    return next((m["indent"] for line in lines[start + 1 : end] if (m := _CHILD.match(line))), "  ")


def _last_content(lines: list[str], start: int, end: int) -> int:
    """The last line in ``start..end`` that is neither blank nor a comment (else ``start``)."""
    for i in range(end - 1, start, -1):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return i
    return start


def _indented(block: str, indent: str) -> list[str]:
    return [f"{indent}{line}\n" if line else "\n" for line in block.splitlines()]


def append_list_item(text: str, section: str, key: str, item: dict[str, Any]) -> str:
    """``text`` with ``item`` appended to the list ``section.key`` (created when missing;
    an empty ``[]`` becomes a block list). Comments and every other line are kept."""
    rendered = yaml.safe_dump(
        [item], sort_keys=False, default_flow_style=False, allow_unicode=True, width=88
    )
    lines = text.splitlines(keepends=True)
    bounds = _section_bounds(lines, section)
    if bounds is None:
        new = f"{_with_newline(text)}{section}:\n  {key}:\n" + "".join(_indented(rendered, "    "))
        _check_append(text, new, section, key, item)
        return new
    start, end = bounds
    entry = re.compile(rf"^(?P<indent>\s+){re.escape(key)}:(?P<value>[^#]*)(?P<comment>#.*)?$")
    found = None
    for i in range(start + 1, end):
        match = entry.match(lines[i].rstrip("\n"))
        if match:
            found = (i, match)
            break
    if found is None:
        indent = _child_indent(lines, start, end)
        at = _last_content(lines, start, end) + 1
        lines[at:at] = [f"{indent}{key}:\n", *_indented(rendered, indent + "  ")]
    else:
        i, match = found
        indent, value = match["indent"], match["value"].strip()
        if value == "[]":
            comment = f"  {match['comment']}" if match["comment"] else ""
            lines[i] = f"{indent}{key}:{comment}\n"
            lines[i + 1 : i + 1] = _indented(rendered, indent + "  ")
        elif value:
            raise ConfigEditError(
                f"{section}.{key} is written inline ({value[:40]}); make it a block list "
                "(one '- ' item a line) and try again"
            )
        else:
            # The block list runs while lines are deeper than the key, or are its own
            # "- " items at the key's indent (both are YAML).
            last = i
            for j in range(i + 1, end):
                line = lines[j]
                stripped = line.strip()
                if not stripped or stripped.startswith("#"):
                    continue
                depth = len(line) - len(line.lstrip())
                if depth > len(indent) or (depth == len(indent) and stripped.startswith("- ")):
                    last = j
                else:
                    break
            item_indent = indent + "  "
            for j in range(i + 1, last + 1):
                if lines[j].strip().startswith("- "):
                    item_indent = lines[j][: len(lines[j]) - len(lines[j].lstrip())]
                    break
            lines[last + 1 : last + 1] = _indented(rendered, item_indent)
    new = "".join(lines)
    _check_append(text, new, section, key, item)
    return new


def _check_append(before: str, after: str, section: str, key: str, item: dict[str, Any]) -> None:
    old: Any = yaml.safe_load(before) or {}
    try:
        new: Any = yaml.safe_load(after) or {}
    except yaml.YAMLError as exc:
        raise ConfigEditError(f"the edit would not be valid YAML: {exc}") from None
    old_section = dict(old.get(section) or {})
    new_section = dict(new.get(section) or {})
    expected = [*(old_section.pop(key, None) or []), yaml.safe_load(yaml.safe_dump(item))]
    if new_section.pop(key, None) != expected:
        raise ConfigEditError(f"{section}.{key} did not take the new item")
    rest_old = {k: v for k, v in old.items() if k != section}
    rest_new = {k: v for k, v in new.items() if k != section}
    if new_section != old_section or rest_new != rest_old:
        raise ConfigEditError(f"the edit would change more than {section}.{key}")


def _check(before: str, after: str, value: bool) -> None:
    old: Any = yaml.safe_load(before) or {}
    new: Any = yaml.safe_load(after) or {}
    general = dict(new.get("general_settings") or {})
    if general.pop("use_sdk", None) is not value:
        raise ConfigEditError("general_settings.use_sdk did not take the new value")
    old_general = dict(old.get("general_settings") or {})
    old_general.pop("use_sdk", None)
    rest_new = {k: v for k, v in new.items() if k != "general_settings"}
    rest_old = {k: v for k, v in old.items() if k != "general_settings"}
    if general != old_general or rest_new != rest_old:
        raise ConfigEditError("the edit would change more than general_settings.use_sdk")
