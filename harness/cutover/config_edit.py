"""Set ``general_settings.use_sdk`` in a YAML file's text, keeping every comment and line.

A YAML round trip would reorder or drop comments; this edits the one line (or inserts
it), then checks by parsing that the result differs from the original in that key only.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from harness.errors import HarnessError

__all__ = ["ConfigEditError", "read_use_sdk", "set_use_sdk"]

_SECTION = re.compile(r"^general_settings:\s*(#.*)?$")
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
    start = next((i for i, line in enumerate(lines) if _SECTION.match(line.rstrip("\n"))), None)
    if start is None:
        sep = "" if text.endswith("\n") or not text else "\n"
        new = f"{text}{sep}general_settings:\n  use_sdk: {literal}\n"
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if _TOP_LEVEL.match(lines[i])), len(lines)
        )
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
            indent = next(
                (m["indent"] for line in lines[start + 1 : end] if (m := _CHILD.match(line))),
                "  ",
            )
            lines.insert(start + 1, f"{indent}use_sdk: {literal}\n")
            new = "".join(lines)
    assert new is not None
    _check(text, new, value)
    return new, True


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
