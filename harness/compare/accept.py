"""Accepted differences: rules that say "this difference is deliberate, here is why" (pure).

A rule lives under ``compare.accept`` in ``config/harness.yaml`` (or in a file given to
``harness report --accept``). It matches pairs by endpoint, an optional status pair
(``status: {sdk: 404, legacy: 400}``), model (a glob), client family, a field the
client's request carries, or the SDK's own error message (``sdk_error``, where ``*``
matches anything and nothing else is special: ``"messages*: expected *"``); within a
matched pair it takes the differences on its paths (the ignore rules' syntax, plus
``upstream...``) and/or in its categories. It must carry a
``reason``; ``owner`` and ``expires`` (a date) are optional. ::

    compare:
      accept:
        - name: unknown-model
          endpoint: [chat, messages]
          status: {sdk: 404, legacy: 400}
          category: [status, error_type, error_message]
          reason: "unknown model: 404 with the list of models is what clients expect"
          owner: platform-team
          expires: 2027-06-30

What an accepted difference is not: a regression. The report counts it per rule, lists
every rule with its hits, a rule that matched nothing as stale, and an expired rule as
expired (not applied). A rule can never hide an SDK failure where legacy succeeded: a
status pair with an SDK outage (5xx, 408, 429) against a legacy answer is refused when the
rules are read, and no rule is applied to a pair whose SDK side failed outright (or cut
its stream) where legacy's succeeded; such pairs are counted as the rule's refusals.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from harness.compare.diff import CATEGORIES, Difference
from harness.compare.rules import SECTIONS, PathPattern

__all__ = [
    "ACCEPT_SECTIONS",
    "Acceptance",
    "AcceptRule",
    "AcceptRules",
    "PairFacts",
    "StatusPair",
    "parse_rules",
    "refusal",
]

# Where a rule's path may point: an answer's sections, and what each side sent upstream.
ACCEPT_SECTIONS = (*SECTIONS, "upstream")
# Below 500 and still "could not serve you now" (as the report's outcomes count them).
_OUTAGES = frozenset({408, 429})
_KEYS = frozenset(
    {
        "name",
        "endpoint",
        "path",
        "category",
        "status",
        "model",
        "family",
        "request_field",
        "sdk_error",
        "reason",
        "owner",
        "expires",
    }
)


def _outage(status: int) -> bool:
    return status >= 500 or status in _OUTAGES


@dataclass(frozen=True)
class StatusPair:
    """The statuses a rule is about; an empty side matches any status."""

    sdk: frozenset[int] = frozenset()
    legacy: frozenset[int] = frozenset()

    def matches(self, sdk: int | None, legacy: int | None) -> bool:
        return (not self.sdk or sdk in self.sdk) and (not self.legacy or legacy in self.legacy)

    def to_dict(self) -> dict[str, Any]:
        return {
            side: (sorted(values)[0] if len(values) == 1 else sorted(values))
            for side, values in (("sdk", self.sdk), ("legacy", self.legacy))
            if values
        }


@dataclass(frozen=True)
class AcceptRule:
    """One accepted difference: what it matches, and why it is deliberate."""

    name: str
    reason: str
    endpoints: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: StatusPair | None = None
    models: tuple[str, ...] = ()  # globs on the request's model
    families: tuple[str, ...] = ()
    request_fields: tuple[str, ...] = ()  # any of these top-level keys in the request body
    sdk_errors: tuple[str, ...] = ()  # patterns on the SDK answer's error message
    owner: str = ""
    expires: date | None = None
    _patterns: tuple[PathPattern, ...] = field(init=False, compare=False, repr=False)
    _sdk_error: re.Pattern[str] | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Parsed once; a path this syntax cannot read raises ValueError here.
        patterns = tuple(PathPattern(p, ACCEPT_SECTIONS) for p in self.paths)
        object.__setattr__(self, "_patterns", patterns)
        object.__setattr__(self, "_sdk_error", _message_pattern(self.sdk_errors))

    def expired(self, today: date) -> bool:
        """Past its ``expires`` date (the day itself still counts)."""
        return self.expires is not None and today > self.expires

    def to_dict(self) -> dict[str, Any]:
        """The rule as written in YAML (only what it sets)."""
        out: dict[str, Any] = {"name": self.name}
        for key, value in (
            ("endpoint", self.endpoints),
            ("path", self.paths),
            ("category", self.categories),
            ("model", self.models),
            ("family", self.families),
            ("request_field", self.request_fields),
            ("sdk_error", self.sdk_errors),
        ):
            if value:
                out[key] = value[0] if len(value) == 1 else list(value)
        if self.status is not None:
            out["status"] = self.status.to_dict()
        out["reason"] = self.reason
        if self.owner:
            out["owner"] = self.owner
        if self.expires is not None:
            out["expires"] = self.expires.isoformat()
        return out

    def describe(self) -> str:
        """What the rule matches, in one line: ``messages; SDK 404 / legacy 400; status``."""
        parts = []
        if self.endpoints:
            parts.append(", ".join(self.endpoints))
        if self.status is not None:
            sides = [
                f"{label} {'|'.join(map(str, sorted(values)))}"
                for label, values in (("SDK", self.status.sdk), ("legacy", self.status.legacy))
                if values
            ]
            parts.append(" / ".join(sides))
        for label, values in (
            ("model", self.models),
            ("family", self.families),
            ("request with", self.request_fields),
            ("SDK error", self.sdk_errors),
        ):
            if values:
                parts.append(f"{label} {'|'.join(values)}")
        parts.extend(p for p in (", ".join(self.categories), ", ".join(self.paths)) if p)
        return "; ".join(parts)

    def matches_pair(self, facts: PairFacts) -> bool:
        if self.endpoints and facts.endpoint not in self.endpoints:
            return False
        if self.status is not None and not self.status.matches(
            facts.sdk_status, facts.legacy_status
        ):
            return False
        if self.models and not any(
            fnmatch.fnmatchcase(facts.model or "", glob) for glob in self.models
        ):
            return False
        if self.families and facts.family not in self.families:
            return False
        if self._sdk_error is not None and not (
            facts.sdk_error is not None and self._sdk_error.fullmatch(facts.sdk_error)
        ):
            return False
        return not self.request_fields or bool(set(self.request_fields) & facts.request_keys)

    def matches_difference(self, difference: Difference) -> bool:
        if self.categories and difference.category not in self.categories:
            return False
        return not self._patterns or any(p.matches(difference.path) for p in self._patterns)


def _message_pattern(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One regex for message patterns where ``*`` matches anything (brackets and ``?``,
    common in error messages such as ``messages[0]: ...``, are literal)."""
    if not patterns:
        return None
    alternatives = (".*".join(re.escape(part) for part in p.split("*")) for p in patterns)
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.DOTALL)


def refusal(rule: AcceptRule) -> str | None:
    """Why the rule may not exist, or None: it would hide an SDK outage where legacy
    answered (a cutover must not make a client's request fail)."""
    status = rule.status
    if status is None or not status.sdk:
        return None
    outages = sorted(s for s in status.sdk if _outage(s))
    if not outages:
        return None
    answered = sorted(s for s in status.legacy if not _outage(s))
    if status.legacy and not answered:
        return None  # both sides failed outright: nothing is hidden that legacy served
    legacy = ", ".join(map(str, answered)) if answered else "any answer"
    return (
        f"it would hide an SDK failure where legacy succeeded (SDK "
        f"{', '.join(map(str, outages))} against legacy {legacy}): an outage on the SDK side "
        "is a regression whatever the reason"
    )


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ValueError(f"{where}: expected a string or a list of strings")


def _statuses(value: Any, where: str) -> frozenset[int]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(
        isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in values
    ):
        raise ValueError(f"{where}: expected an HTTP status or a list of them")
    return frozenset(values)


def _status(value: Any, where: str) -> StatusPair:
    if not isinstance(value, Mapping) or not set(value) <= {"sdk", "legacy"} or not value:
        raise ValueError(f"{where}: expected a mapping with sdk and/or legacy statuses")
    return StatusPair(
        _statuses(value["sdk"], f"{where}.sdk") if "sdk" in value else frozenset(),
        _statuses(value["legacy"], f"{where}.legacy") if "legacy" in value else frozenset(),
    )


def _expires(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{where}: expected a date (YYYY-MM-DD), got {value!r}")


def _rule(raw: Any, where: str) -> AcceptRule:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} (expected {sorted(_KEYS)})")
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"{where}: a rule needs a reason (why the difference is deliberate)")
    name = raw.get("name", where)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name: expected a string")
    paths = _strings(raw["path"], f"{where}.path") if "path" in raw else ()
    categories = _strings(raw["category"], f"{where}.category") if "category" in raw else ()
    if not paths and not categories:
        raise ValueError(f"{where}: a rule needs a path or a category (what it accepts)")
    unknown_categories = set(categories) - set(CATEGORIES)
    if unknown_categories:
        raise ValueError(
            f"{where}.category: unknown {sorted(unknown_categories)} (expected {CATEGORIES})"
        )
    owner = raw.get("owner", "")
    if not isinstance(owner, str):
        raise ValueError(f"{where}.owner: expected a string")
    for path in paths:  # parsed here too, so the error names the rule's key
        try:
            PathPattern(path, ACCEPT_SECTIONS)
        except ValueError as exc:
            raise ValueError(f"{where}.path: {exc}") from None
    return AcceptRule(
        name=name,
        reason=" ".join(reason.split()),
        endpoints=_strings(raw["endpoint"], f"{where}.endpoint") if "endpoint" in raw else (),
        paths=paths,
        categories=categories,
        status=_status(raw["status"], f"{where}.status") if "status" in raw else None,
        models=_strings(raw["model"], f"{where}.model") if "model" in raw else (),
        families=_strings(raw["family"], f"{where}.family") if "family" in raw else (),
        request_fields=(
            _strings(raw["request_field"], f"{where}.request_field")
            if "request_field" in raw
            else ()
        ),
        sdk_errors=_strings(raw["sdk_error"], f"{where}.sdk_error") if "sdk_error" in raw else (),
        owner=owner,
        expires=_expires(raw["expires"], f"{where}.expires") if "expires" in raw else None,
    )


def parse_rules(raw: Any, where: str = "compare.accept") -> tuple[AcceptRule, ...]:
    """The rules of a YAML list; ``ValueError`` naming the rule and the key on bad input,
    or why a rule is refused."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError(f"{where}: expected a list of rules")
    rules = []
    for index, item in enumerate(raw):
        rule = _rule(item, f"{where}[{index}]")
        refused = refusal(rule)
        if refused:
            raise ValueError(f"{where}[{index}] ({rule.name}): refused: {refused}")
        rules.append(rule)
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{where}: rule names must be unique, repeated: {duplicates}")
    return tuple(rules)


@dataclass(frozen=True)
class PairFacts:
    """What the rules look at in a pair, besides its differences."""

    endpoint: str
    model: str | None
    family: str
    sdk_status: int | None
    legacy_status: int | None
    request_keys: frozenset[str] = frozenset()
    sdk_error: str | None = None  # the SDK answer's error message, when it is an error
    # The SDK failed outright (5xx, 408, 429, no answer, a cut stream) where legacy
    # succeeded: no rule applies (harness.report.outcomes decides it).
    sdk_failed: bool = False


@dataclass(frozen=True)
class Acceptance:
    """One pair's differences after the rules: kept, accepted (rule index, difference)
    and the rules that matched but were refused for this pair."""

    kept: tuple[Difference, ...]
    accepted: tuple[tuple[int, Difference], ...] = ()
    refused: tuple[int, ...] = ()

    @property
    def hits(self) -> tuple[int, ...]:
        """The rules that accepted something here, in rule order."""
        return tuple(sorted({index for index, _ in self.accepted}))


class AcceptRules:
    """The rules in force on ``today``: expired ones are listed, never applied."""

    def __init__(self, rules: Iterable[AcceptRule], today: date) -> None:
        self.rules = tuple(rules)
        self.today = today
        self._active = tuple(
            (i, rule) for i, rule in enumerate(self.rules) if not rule.expired(today)
        )

    def __bool__(self) -> bool:
        return bool(self._active)

    def apply(self, differences: Sequence[Difference], facts: PairFacts) -> Acceptance:
        matching = [(i, rule) for i, rule in self._active if rule.matches_pair(facts)]
        if not matching or not differences:
            return Acceptance(tuple(differences))
        if facts.sdk_failed:
            hiding = tuple(
                i for i, rule in matching if any(rule.matches_difference(d) for d in differences)
            )
            return Acceptance(tuple(differences), refused=hiding)
        kept: list[Difference] = []
        accepted: list[tuple[int, Difference]] = []
        for difference in differences:
            index = next((i for i, rule in matching if rule.matches_difference(difference)), None)
            if index is None:
                kept.append(difference)
            else:
                accepted.append((index, difference))
        return Acceptance(tuple(kept), tuple(accepted))
