"""The seeded-defect catalogue: each defect, where it sits, the gate that must catch it.

A defect is a change a mutating relay (:mod:`harness.selftest.relay`) makes on ONE side
of shadow mode, as a broken SDK proxy would:

* ``request`` defects sit between that side's proxy and its provider: they change the
  provider call (a memory header dropped, the call sent twice, ``cache_control`` marks
  stripped...). What the provider receives is what the harness records for that side.
* ``answer`` defects sit between the client (the mirror) and that side's proxy: they
  change the answer the client gets (finish reason, a tool argument, a stream's end...)
  or when it gets it (+3 ms on every call, +20 % time to first token on streams).
  Not between the proxy and its provider: under replay the tap records what the primary
  received from its provider and replays it to the other side, so a change there would
  reach both sides and be no difference at all.

The mutations are pure functions of headers and bytes; the relay does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CATALOGUE",
    "WRONG_MODEL",
    "WRONG_USER",
    "Defect",
    "answer_delay",
    "defect_named",
    "first_token_delay",
    "mutate_answer_body",
    "mutate_answer_events",
    "mutate_answer_head",
    "mutate_request",
]

Place = Literal["request", "answer"]
Headers = list[tuple[str, str]]

WRONG_USER = "selftest-someone-else"
WRONG_MODEL = "claude-haiku-4-5"
_CHANGED_FINISH = {
    "end_turn": "max_tokens",
    "tool_use": "end_turn",
    "stop": "length",
    "tool_calls": "stop",
}
_USAGE_KEYS = ("input_tokens", "output_tokens", "prompt_tokens", "completion_tokens")
_DROPPED_HEADERS = ("request-id", "x-request-id")
# The latency defects: a fixed +3 ms on every answer, and +20 % on a stream's time
# to its first token (the relay holds that token by a fifth of the time it took).
ADDED_SECONDS = 0.003
ADDED_TTFT_FRACTION = 0.20


@dataclass(frozen=True)
class Defect:
    """One seeded defect: its name, where the relay applies it, the gate that must fail
    (for a gate per slice, such as ``latency``, any slice's; ``check``: the check of that
    gate that must fail, when one is named)."""

    name: str
    place: Place
    gate: str
    what: str
    check: str | None = None

    @property
    def expected(self) -> str:
        """The gate (and check) as the table shows it."""
        return f"{self.gate} ({self.check})" if self.check else self.gate

    def named_by(self, gate: str, checks: tuple[str, ...]) -> bool:
        """Whether the failed ``gate``, with its failing ``checks``, is this defect's."""
        if gate != self.gate and not gate.startswith(self.gate + ": "):
            return False
        return self.check is None or self.check in checks


CATALOGUE: tuple[Defect, ...] = (
    Defect("drop x-sm-user-id", "request", "memory routing", "the memory user id is lost"),
    Defect("wrong user id", "request", "memory routing", f"x-sm-user-id becomes {WRONG_USER}"),
    Defect(
        "drop conversation id",
        "request",
        "memory routing",
        "x-sm-conversation-id is lost",
    ),
    Defect("drop cookie", "request", "cookie persistence", "the Cloudflare cookie is not sent"),
    Defect(
        "send each call twice",
        "request",
        "provider calls per request",
        "every provider call is sent a second time",
    ),
    Defect(
        "wrong model",
        "request",
        "upstream request parity",
        f"the provider is asked for {WRONG_MODEL}",
    ),
    Defect(
        "strip cache_control",
        "request",
        "upstream request parity",
        "Claude Code's cache_control marks are removed from the request body",
    ),
    Defect(
        "change finish reason",
        "answer",
        "parity: messages",
        "stop_reason / finish_reason changed",
    ),
    Defect("change a tool argument", "answer", "parity: messages", "a tool call's input changed"),
    Defect(
        "drop final stream event",
        "answer",
        "streaming parity",
        "message_stop / [DONE] never arrives",
    ),
    Defect("cut a stream mid-way", "answer", "streaming parity", "a stream ends half-way"),
    Defect("change usage numbers", "answer", "parity: messages", "token counts changed"),
    Defect(
        "change error type and status",
        "answer",
        "error handling",
        "an error answer's status and type changed",
    ),
    Defect(
        "drop a response header",
        "answer",
        "client contract",
        "the provider's request id header is not relayed",
    ),
    Defect(
        "+3 ms latency on every call",
        "answer",
        "latency",
        "every answer starts 3 ms later",
        check="p50",
    ),
    Defect(
        "+20 % TTFT on streams",
        "answer",
        "latency",
        "a stream's first token is held by a fifth of the time it took",
        check="TTFT p50",
    ),
)


def defect_named(name: str | None) -> Defect | None:
    """The catalogue's defect called ``name``; None for None (no defect: the control)."""
    if name is None:
        return None
    for defect in CATALOGUE:
        if defect.name == name:
            return defect
    raise KeyError(name)


# -- request side -----------------------------------------------------------------------


def mutate_request(
    defect: Defect | None, headers: Headers, body: bytes
) -> list[tuple[Headers, bytes]]:
    """The provider calls to send instead of ``(headers, body)``: usually one, two for
    the duplicate."""
    if defect is None or defect.place != "request":
        return [(headers, body)]
    name = defect.name
    if name == "drop x-sm-user-id":
        return [(_without(headers, "x-sm-user-id"), body)]
    if name == "wrong user id":
        return [(_replaced(headers, "x-sm-user-id", WRONG_USER), body)]
    if name == "drop conversation id":
        return [(_without(headers, "x-sm-conversation-id"), body)]
    if name == "drop cookie":
        return [(_without(headers, "cookie"), body)]
    if name == "send each call twice":
        return [(headers, body), (headers, body)]
    if name == "wrong model":
        return [(headers, _json_edit(body, _set_model))]
    if name == "strip cache_control":
        return [(headers, _json_edit(body, _strip_cache_control))]
    raise KeyError(name)


def _without(headers: Headers, name: str) -> Headers:
    return [(k, v) for k, v in headers if k.lower() != name]


def _replaced(headers: Headers, name: str, value: str) -> Headers:
    present = any(k.lower() == name for k, _ in headers)
    if not present:
        return headers
    return [(k, value if k.lower() == name else v) for k, v in headers]


def _json_edit(body: bytes, edit: Callable[[Any], Any]) -> bytes:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    return json.dumps(edit(parsed)).encode()


def _set_model(body: Any) -> Any:
    if isinstance(body, dict) and "model" in body:
        return {**body, "model": WRONG_MODEL}
    return body


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(v) for v in value]
    return value


# -- answer side ------------------------------------------------------------------------


def answer_delay(defect: Defect | None) -> float:
    """Seconds to hold an answer's start (status and headers) by."""
    if defect is not None and defect.name == "+3 ms latency on every call":
        return ADDED_SECONDS
    return 0.0


def first_token_delay(defect: Defect | None, elapsed: float) -> float:
    """Seconds to hold a stream's first token by, ``elapsed`` seconds after the request
    came in."""
    if defect is not None and defect.name == "+20 % TTFT on streams":
        return ADDED_TTFT_FRACTION * elapsed
    return 0.0


def mutate_answer_head(
    defect: Defect | None, status: int, headers: Headers, body: bytes | None
) -> tuple[int, Headers]:
    """The status and headers the client gets instead."""
    if defect is None or defect.place != "answer":
        return status, headers
    if defect.name == "drop a response header":
        return status, [(k, v) for k, v in headers if k.lower() not in _DROPPED_HEADERS]
    if defect.name == "change error type and status" and status >= 400:
        return (500 if status != 500 else 502), headers
    return status, headers


def mutate_answer_body(defect: Defect | None, status: int, body: bytes) -> bytes:
    """A whole (non-stream) answer's body instead."""
    if defect is None or defect.place != "answer":
        return body
    name = defect.name
    if name == "change error type and status" and status >= 400:
        return _json_edit(body, _change_error)
    if status >= 400:
        return body
    if name == "change finish reason":
        return _json_edit(body, _change_finish)
    if name == "change a tool argument":
        return _json_edit(body, _change_tool_argument)
    if name == "change usage numbers":
        return _json_edit(body, _change_usage)
    return body


def mutate_answer_events(defect: Defect | None, events: list[bytes]) -> list[bytes]:
    """A stream's events (each a whole ``...\\n\\n`` block) instead."""
    if defect is None or defect.place != "answer" or not events:
        return events
    name = defect.name
    if name == "drop final stream event":
        return events[:-1]
    if name == "cut a stream mid-way":
        return events[: max(1, len(events) // 2)]
    edit = {
        "change finish reason": _change_finish,
        "change usage numbers": _change_usage,
        "change a tool argument": _change_tool_argument,
    }.get(name)
    if edit is None:
        return events
    return [_edit_event(event, edit) for event in events]


def _edit_event(event: bytes, edit: Callable[[Any], Any]) -> bytes:
    lines = event.split(b"\n")
    out = []
    for line in lines:
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            if payload and payload != b"[DONE]":
                line = b"data: " + _json_edit(payload, edit)
        out.append(line)
    return b"\n".join(out)


def _walk(value: Any, visit: Callable[[dict[str, Any]], None]) -> Any:
    if isinstance(value, dict):
        visit(value)
        for item in value.values():
            _walk(item, visit)
    elif isinstance(value, list):
        for item in value:
            _walk(item, visit)
    return value


def _change_finish(body: Any) -> Any:
    def visit(node: dict[str, Any]) -> None:
        for key in ("stop_reason", "finish_reason"):
            if isinstance(node.get(key), str):
                node[key] = _CHANGED_FINISH.get(node[key], "max_tokens")

    return _walk(body, visit)


def _change_usage(body: Any) -> Any:
    def visit(node: dict[str, Any]) -> None:
        usage = node.get("usage")
        if isinstance(usage, dict):
            for key in _USAGE_KEYS:
                if isinstance(usage.get(key), int):
                    usage[key] += 7

    return _walk(body, visit)


def _change_tool_argument(body: Any) -> Any:
    def visit(node: dict[str, Any]) -> None:
        if node.get("type") == "tool_use" and isinstance(node.get("input"), dict):
            node["input"] = {**node["input"], "selftest": "changed"}
        if node.get("type") == "input_json_delta" and isinstance(node.get("partial_json"), str):
            node["partial_json"] = node["partial_json"].replace('"', '"x', 1)
        function = node.get("function")
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            function["arguments"] = function["arguments"].replace('"', '"x', 1)

    return _walk(body, visit)


def _change_error(body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = dict(body["error"])
        error["type"] = "api_error" if error.get("type") != "api_error" else "overloaded_error"
        return {**body, "error": error}
    return body
