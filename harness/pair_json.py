"""Captured pairs as plain JSON-able dicts and back (the store's rows, JSONL exports).

Reading ignores keys the data model no longer has, so old rows and exports stay readable
after :mod:`harness.observation` drops a field; fields it gained take their defaults.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from harness.observation import CapturedPair, CapturedRequest, Observation, SseEvent

__all__ = ["observation_from_dict", "pair_from_dict", "pair_to_dict"]

T = TypeVar("T")


def pair_to_dict(pair: CapturedPair) -> dict[str, Any]:
    return dataclasses.asdict(pair)


def pair_from_dict(data: dict[str, Any]) -> CapturedPair:
    fields = _known(CapturedPair, data)
    fields["request"] = CapturedRequest(**_known(CapturedRequest, data["request"]))
    fields["primary"] = observation_from_dict(data["primary"])
    for name in ("shadow", "shadow_repeat"):
        if fields.get(name) is not None:
            fields[name] = observation_from_dict(fields[name])
    return CapturedPair(**fields)


def observation_from_dict(data: dict[str, Any]) -> Observation:
    fields = _known(Observation, data)
    if fields.get("events") is not None:
        fields["events"] = tuple(SseEvent(**_known(SseEvent, e)) for e in fields["events"])
    return Observation(**fields)


def _known(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return {k: v for k, v in data.items() if k in names}
