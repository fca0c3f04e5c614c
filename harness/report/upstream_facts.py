"""What the sandbox saw each proxy send upstream: memory routing and cookie facts (pure).

Reads these keys of a captured upstream call (``pair.upstream[target][i]``), each optional:
``headers["x-sm-user-id"]``, ``headers["x-sm-conversation-id"]``, ``cookies`` (cookie
names the call carried), ``cookie_valid``, ``cookie_issued``, ``seq``, ``time`` (unix
seconds) and ``duration_ms``.

Cookie persistence is judged per call: once a proxy has been *given* a cookie (an earlier
call's answer, finished before this call started, set one) or has shown it holds one (an
earlier call carried one), every call that reaches the provider more than
``RACE_SECONDS`` later must carry it. Calls that raced the first answer are not held
against it: the time here is when the provider received a call, and a call the proxy
built before the cookie arrived can reach the provider after it, while it waits for a new
connection (the demo's replay showed three, 1-4 ms after a call that carried the cookie).
A proxy restarted mid-capture starts without a cookie and shows as one miss.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.compare.upstream import PRESENT_CREDENTIALS, answered_calls, credential_present
from harness.report.tally import MAX_EXAMPLES, Example, ProviderCallTally, UpstreamCall
from harness.upstream.records import REPLAY_MISS

__all__ = [
    "CF_COOKIE",
    "RACE_SECONDS",
    "CookieFacts",
    "call_count_difference",
    "cookie_persistence",
    "routing_difference",
    "count_unattached",
    "uncalled_success",
    "unattached_text",
    "upstream_calls",
]

CF_COOKIE = "__cf_bm"
# Longer than building a request and opening a loopback or LAN connection takes, short
# against the seconds between a person's turns: a proxy that drops its cookie still misses.
RACE_SECONDS = 0.25
_ROUTING_HEADERS = ("x-sm-user-id", "x-sm-conversation-id")


@dataclass(frozen=True)
class CookieFacts:
    """One target's calls: how many should have carried the cookie, and how many did."""

    target: str
    calls: int
    expected: int
    carried: int
    misses: tuple[str, ...] = field(default_factory=tuple)  # pair ids, first few

    @property
    def missed(self) -> int:
        return self.expected - self.carried


def _header(call: Mapping[str, Any], name: str) -> Any:
    headers = call.get("headers")
    if not isinstance(headers, Mapping):
        return None
    for key, value in headers.items():
        if str(key).lower() == name:
            return value
    return None


def routing_difference(
    pair_id: str,
    sdk_calls: Sequence[Any],
    legacy_calls: Sequence[Any],
    suffixes: Mapping[str, str] | None = None,
) -> tuple[Example | None, bool]:
    """(the first memory-routing loss on the SDK side, whether an SDK call carried no
    user id).

    Compared call by call once explained retries are set aside: ``x-sm-user-id`` and
    ``x-sm-conversation-id`` by value, the Supermemory key by presence only. A loss is an
    id or key legacy sent that the SDK side lacks or sends otherwise; one only the SDK
    side sent (the LiteLLM server sends no memory headers on some calls, count_tokens
    among them) is no loss.

    ``suffixes``: target (``sdk``/``legacy``) -> the suffix live mirroring gives that
    side's memory ids (its memories kept apart from the user's), taken off before the
    comparison. A value without it is compared as it is: pairs stored before live mode
    isolated the mirror's memory carry none (whether each pair was isolated is the
    report's live line, :func:`harness.report.first_screen.live_line`)."""
    sdk = answered_calls(sdk_calls)
    legacy = answered_calls(legacy_calls)
    suffixes = suffixes or {}
    missing_user = any(not _header(call, "x-sm-user-id") for call in sdk)
    for index, (a, b) in enumerate(zip(sdk, legacy, strict=False)):
        for name in _ROUTING_HEADERS:
            va = _unsuffixed(_header(a, name), suffixes.get("sdk", ""))
            vb = _unsuffixed(_header(b, name), suffixes.get("legacy", ""))
            if vb is not None and va != vb:
                path = f"upstream[{index}].headers.{name}"
                return Example(pair_id, path, _text(va), _text(vb)), missing_user
        for name in PRESENT_CREDENTIALS:
            pa, pb = credential_present(a, name), credential_present(b, name)
            if pb and not pa:
                path = f"upstream[{index}].headers.{name}"
                return Example(pair_id, path, _presence(pa), _presence(pb)), missing_user
    return None, missing_user


def call_count_difference(
    pair_id: str, sdk_calls: Sequence[Any], legacy_calls: Sequence[Any]
) -> Example | None:
    """The pair's provider calls per side, when the counts differ once the retries each
    side's recorded statuses explain are set aside (a duplicate, or a missing call)."""
    sdk, legacy = answered_calls(sdk_calls), answered_calls(legacy_calls)
    if len(sdk) == len(legacy):
        return None
    more = len(sdk) - len(legacy)
    what = f"the SDK side made {abs(more)} {'more' if more > 0 else 'fewer'} provider call" + (
        "s" if abs(more) > 1 else ""
    )
    return Example(
        pair_id, "upstream.calls", _calls_text(sdk_calls), _calls_text(legacy_calls), what
    )


# Endpoints whose success needs the model: an answer without any provider call is made up.
_GENERATION = frozenset({"chat", "messages"})


def uncalled_success(
    pair_id: str, endpoint: str, sdk_status: int | None, sdk_calls: Sequence[Any]
) -> Example | None:
    """An SDK success on a generation endpoint with no provider call at all. A pair set
    apart (legacy failed, the SDK succeeded) is not compared, and under replay legacy
    fails whenever it calls where the SDK did not: without this, an SDK proxy that
    answered without the model would hide among such pairs."""
    if endpoint not in _GENERATION or sdk_calls or sdk_status is None:
        return None
    if not 200 <= sdk_status < 300:
        return None
    return Example(
        pair_id,
        "upstream.calls",
        _calls_text(sdk_calls),
        "-",
        f"the SDK side answered {sdk_status} without any provider call",
    )


def _calls_text(calls: Sequence[Any]) -> str:
    statuses = [
        str(c.get("status")) if c.get("status") is not None else str(c.get("outcome") or "none")
        for c in calls
        if isinstance(c, Mapping)
    ]
    answered = len(answered_calls(calls))
    return f"{answered} answered of {len(statuses)} calls ({', '.join(statuses) or 'none'})"


def unattached_text(target: str, call: Mapping[str, Any]) -> str:
    """One unattached call for the report: who sent it, where, when; no content."""
    when = _number(call.get("time"))
    at = f" at {when:.3f}" if when is not None else ""
    status = call.get("status")
    return f"{target}: {call.get('method') or 'POST'} {call.get('path') or '?'}{at} ({status})"


def _presence(present: bool) -> str:
    return "<present>" if present else "<missing>"


def _unsuffixed(value: Any, suffix: str) -> Any:
    """``value`` without the live-mode ``suffix``."""
    if not suffix or not isinstance(value, str):
        return value
    return value.removesuffix(suffix)


def _text(value: Any) -> str:
    return "<missing>" if value is None else str(value)


def upstream_calls(pair_id: str, calls: Iterable[Any]) -> list[UpstreamCall]:
    out = []
    for index, call in enumerate(calls):
        if not isinstance(call, Mapping):
            continue
        seq = call.get("seq")
        started = _number(call.get("time"))
        duration = _number(call.get("duration_ms"))
        cookies = call.get("cookies")
        carried = bool(call.get("cookie_valid")) or (
            isinstance(cookies, list) and CF_COOKIE in cookies
        )
        out.append(
            UpstreamCall(
                seq=float(seq) if isinstance(seq, int | float) else float(index),
                started=started,
                finished=started + duration / 1000 if started is not None and duration else None,
                issued=bool(call.get("cookie_issued")),
                carried=carried,
                pair_id=pair_id,
            )
        )
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def cookie_persistence(target: str, calls: Iterable[UpstreamCall], keep: int = 5) -> CookieFacts:
    """Did ``target`` bring the cookie back on every call after it had one?"""
    ordered = sorted(calls, key=lambda c: (c.seq, c.started or 0.0))
    holds_from: float | None = None  # when the proxy is known to hold a cookie
    held_without_times = False  # the same, for captures without timings
    expected = carried = 0
    misses: list[str] = []
    for call in ordered:
        if call.started is not None and holds_from is not None:
            should_carry = call.started >= holds_from + RACE_SECONDS
        else:
            should_carry = held_without_times
        if should_carry:
            expected += 1
            if call.carried:
                carried += 1
            elif len(misses) < keep:
                misses.append(call.pair_id)
        if call.carried or call.issued:
            held_without_times = True
            known = call.started if call.carried else call.finished
            if known is not None:
                holds_from = known if holds_from is None else min(holds_from, known)
    return CookieFacts(target, len(ordered), expected, carried, tuple(misses))


def count_unattached(calls: ProviderCallTally, target: str, call: Mapping[str, Any]) -> None:
    """Count one call no client request claimed: a replay miss apart (it reached no
    provider; the gate decides what it means per side), any other as unattached."""
    if call.get(REPLAY_MISS):
        calls.replay_misses[target] += 1
        calls.miss_paths[f"{target}: {call.get('method') or 'POST'} {call.get('path') or '?'}"] += 1
        return
    calls.unattached[target] += 1
    if len(calls.unattached_examples) < MAX_EXAMPLES:
        calls.unattached_examples.append(unattached_text(target, call))
