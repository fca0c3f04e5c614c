"""Server-sent events as a client reads them: bytes -> events -> the assembled message.

Pure, no I/O, like openai-python's ``SSEDecoder``. :class:`SseDecoder` takes body chunks
split anywhere (inside a line, inside a ``\\r\\n``, inside a UTF-8 character) and yields the
same :class:`~harness.observation.SseEvent` list for any split. The assemblers rebuild what
a non-streamed call would have returned, so stream and body answers normalize alike:

* ``assemble_openai``: a ``chat.completion``-like dict; tool-call arguments concatenated,
  the last non-null ``usage``, ``saw_done`` for the ``[DONE]`` sentinel.
* ``assemble_anthropic``: a ``Message`` dict; ``tool_use`` input parsed from the
  concatenated ``partial_json``, usage merged from ``message_start`` and ``message_delta``,
  ``saw_message_stop``.

An error event mid-stream (``event: error``, or OpenAI's ``data: {"error": ...}``) lands in
the result's ``error`` key; data that is not JSON is counted in ``malformed_events``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from harness.observation import SseEvent
from memory_proxy.api_formats import FormatName

__all__ = [
    "SseDecoder",
    "assemble",
    "assemble_anthropic",
    "assemble_openai",
    "decode_sse",
    "event_sequence",
    "first_token_offset",
    "format_of",
]


_DONE = "[DONE]"


class SseDecoder:
    """An incremental decoder following the WHATWG event-stream parsing rules.

    Lines end in ``\\n``, ``\\r\\n`` or ``\\r``; a blank line dispatches the pending event;
    lines starting with ``:`` are comments; ``data`` lines accumulate joined by ``\\n``;
    ``id`` and ``retry`` are accepted and ignored. An event still pending when the stream
    ends is dropped, as browsers do (a cut stream loses its last partial event).
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._first_line = True

    def feed(self, chunk: bytes, offset_ms: float = 0.0) -> list[SseEvent]:
        """Decode one chunk; events completed by it are stamped with ``offset_ms``."""
        # bytes.splitlines breaks on exactly \n, \r\n and \r: the SSE line endings.
        lines = (self._buffer + chunk).splitlines(keepends=True)
        # A last line without \n is either incomplete or a \r whose \n may come next.
        self._buffer = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        events: list[SseEvent] = []
        for line in lines:
            event = self._line(line.rstrip(b"\r\n"), offset_ms)
            if event is not None:
                events.append(event)
        return events

    def close(self, offset_ms: float = 0.0) -> list[SseEvent]:
        """End of stream: a trailing lone ``\\r`` still ends its line; partial events drop."""
        events: list[SseEvent] = []
        if self._buffer.endswith(b"\r"):
            event = self._line(self._buffer[:-1], offset_ms)
            if event is not None:
                events.append(event)
        self._buffer = b""
        self._data = []
        self._event = None
        return events

    def _line(self, raw: bytes, offset_ms: float) -> SseEvent | None:
        line = raw.decode("utf-8", errors="replace")
        if self._first_line:
            self._first_line = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch(offset_ms)
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value or None
        return None

    def _dispatch(self, offset_ms: float) -> SseEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], None
        if not data:
            return None
        return SseEvent(data="\n".join(data), event=event, offset_ms=offset_ms)


def decode_sse(chunks: Iterable[bytes]) -> list[SseEvent]:
    """Decode a whole body given as chunks."""
    decoder = SseDecoder()
    events: list[SseEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events


def _payload(event: SseEvent) -> Any:
    try:
        return json.loads(event.data)
    except ValueError:
        return None


def assemble_openai(events: Sequence[SseEvent]) -> dict[str, Any]:
    """The ``chat.completion`` a stream of ``chat.completion.chunk`` events amounts to."""
    result: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    tool_calls: dict[int, dict[int, dict[str, Any]]] = {}
    saw_done = False
    malformed = 0
    for event in events:
        if event.data.strip() == _DONE:
            saw_done = True
            continue
        chunk = _payload(event)
        if not isinstance(chunk, dict):
            malformed += 1
            continue
        if "error" in chunk:
            result.setdefault("error", chunk["error"])
            continue
        for key in ("id", "object", "created", "model", "system_fingerprint", "service_tier"):
            if key in chunk and key not in result:
                result[key] = chunk[key]
        if chunk.get("usage") is not None:
            result["usage"] = chunk["usage"]
        for raw in chunk.get("choices") or ():
            if isinstance(raw, dict):
                _add_openai_choice(raw, choices, tool_calls)
    if choices:
        result["choices"] = [
            _finish_openai_choice(choices[i], tool_calls.get(i, {})) for i in sorted(choices)
        ]
    result["saw_done"] = saw_done
    if malformed:
        result["malformed_events"] = malformed
    return result


def _add_openai_choice(
    raw: dict[str, Any],
    choices: dict[int, dict[str, Any]],
    tool_calls: dict[int, dict[int, dict[str, Any]]],
) -> None:
    index = raw.get("index", 0)
    choice = choices.setdefault(
        index, {"index": index, "message": {"role": "assistant", "content": None}}
    )
    message = choice["message"]
    delta = raw.get("delta") or {}
    if delta.get("role"):
        message["role"] = delta["role"]
    for key in ("content", "refusal", "reasoning_content"):
        piece = delta.get(key)
        if isinstance(piece, str):
            message[key] = (message.get(key) or "") + piece
    for call in delta.get("tool_calls") or ():
        slot = tool_calls.setdefault(index, {}).setdefault(
            call.get("index", 0), {"function": {"name": "", "arguments": ""}}
        )
        for key in ("id", "type"):
            if call.get(key):
                slot[key] = call[key]
        function = call.get("function") or {}
        if function.get("name"):
            slot["function"]["name"] += function["name"]
        if function.get("arguments"):
            slot["function"]["arguments"] += function["arguments"]
    if raw.get("finish_reason") is not None:
        choice["finish_reason"] = raw["finish_reason"]


def _finish_openai_choice(
    choice: dict[str, Any], calls: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    if calls:
        choice["message"]["tool_calls"] = [
            {"id": c.get("id"), "type": c.get("type", "function"), "function": c["function"]}
            for _, c in sorted(calls.items())
        ]
    choice.setdefault("finish_reason", None)
    return choice


def assemble_anthropic(events: Sequence[SseEvent]) -> dict[str, Any]:
    """The ``Message`` a Messages stream amounts to."""
    message: dict[str, Any] = {}
    blocks: dict[int, dict[str, Any]] = {}
    partial_json: dict[int, str] = {}
    usage: dict[str, Any] = {}
    saw_stop = False
    malformed = 0
    for event in events:
        payload = _payload(event)
        if not isinstance(payload, dict):
            malformed += 1
            continue
        kind = payload.get("type") or event.event
        if kind == "message_start":
            start = payload.get("message") or {}
            message.update({k: v for k, v in start.items() if k not in ("content", "usage")})
            usage.update(start.get("usage") or {})
        elif kind == "content_block_start":
            index = payload.get("index", len(blocks))
            blocks[index] = dict(payload.get("content_block") or {})
        elif kind == "content_block_delta":
            _add_anthropic_delta(payload, blocks, partial_json)
        elif kind == "message_delta":
            message.update(payload.get("delta") or {})
            usage.update(payload.get("usage") or {})
        elif kind == "message_stop":
            saw_stop = True
        elif kind == "error":
            message.setdefault("error", payload.get("error"))
    for index, raw in partial_json.items():
        blocks[index]["input"] = _parse_partial_json(raw)
    if blocks or message:
        message["content"] = [blocks[i] for i in sorted(blocks)]
    if usage:
        message["usage"] = usage
    message["saw_message_stop"] = saw_stop
    if malformed:
        message["malformed_events"] = malformed
    return message


def _add_anthropic_delta(
    payload: dict[str, Any], blocks: dict[int, dict[str, Any]], partial_json: dict[int, str]
) -> None:
    index = payload.get("index", 0)
    delta = payload.get("delta") or {}
    block = blocks.setdefault(index, {"type": "text", "text": ""})
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta.get("text", "")
    elif kind == "input_json_delta":
        partial_json[index] = partial_json.get(index, "") + delta.get("partial_json", "")
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
    elif kind == "signature_delta":
        block["signature"] = delta.get("signature")
    elif kind == "citations_delta":
        block.setdefault("citations", []).append(delta.get("citation"))


def _parse_partial_json(raw: str) -> Any:
    # An empty input stream means ``{}`` (the API opens every input with ""); input that
    # does not parse stays a string, so a comparison shows it as a type change.
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def assemble(events: Sequence[SseEvent], fmt: FormatName) -> dict[str, Any]:
    """Dispatch to the format's assembler."""
    return assemble_openai(events) if fmt == "openai" else assemble_anthropic(events)


# Labels of events that come in runs: a run counts once in a sequence.
_DELTA_LABELS = frozenset({"content", "tool_call_delta", "reasoning"})


def event_sequence(events: Sequence[SseEvent], fmt: FormatName) -> list[str]:
    """The stream's shape as labels, runs of deltas collapsed to one label.

    Anthropic: the event type, with the block type for ``content_block_start`` and the
    delta type for ``content_block_delta`` (``content_block_delta:text_delta``). OpenAI:
    per chunk ``role``, ``tool_call_start``, ``tool_call_delta``, ``content``, ``finish``,
    ``usage``, ``error``, then ``[DONE]``. Data that is not JSON is ``malformed``.
    """
    labels: list[str] = []
    for event in events:
        for label in _labels(event, fmt):
            if labels and label == labels[-1] and _is_delta(label):
                continue
            labels.append(label)
    return labels


def _is_delta(label: str) -> bool:
    return label in _DELTA_LABELS or label.startswith("content_block_delta")


def _labels(event: SseEvent, fmt: FormatName) -> list[str]:
    if fmt == "openai" and event.data.strip() == _DONE:
        return [_DONE]
    payload = _payload(event)
    if not isinstance(payload, dict):
        return ["malformed"]
    if fmt == "anthropic":
        kind = str(payload.get("type") or event.event)
        if kind == "content_block_start":
            return [f"{kind}:{(payload.get('content_block') or {}).get('type')}"]
        if kind == "content_block_delta":
            return [f"{kind}:{(payload.get('delta') or {}).get('type')}"]
        return [kind]
    if "error" in payload:
        return ["error"]
    labels: list[str] = []
    for choice in payload.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("role"):
            labels.append("role")
        for call in delta.get("tool_calls") or ():
            if call.get("id") or (call.get("function") or {}).get("name"):
                labels.append("tool_call_start")
            if (call.get("function") or {}).get("arguments"):
                labels.append("tool_call_delta")
        if delta.get("content") or delta.get("refusal"):
            labels.append("content")
        if delta.get("reasoning_content"):
            labels.append("reasoning")
        if choice.get("finish_reason") is not None:
            labels.append("finish")
    if payload.get("usage") is not None:
        labels.append("usage")
    return labels or ["empty"]


def first_token_offset(events: Sequence[SseEvent], fmt: FormatName) -> float | None:
    """``offset_ms`` of the first event carrying generated content, not the first byte.

    Anthropic: the first ``content_block_delta``. OpenAI: the first chunk with non-empty
    content, refusal, reasoning or tool-call arguments. None when no such event came.
    """
    for event in events:
        payload = _payload(event)
        if not isinstance(payload, dict):
            continue
        if fmt == "anthropic":
            if (payload.get("type") or event.event) == "content_block_delta":
                return event.offset_ms
            continue
        for choice in payload.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content") or delta.get("refusal") or delta.get("reasoning_content"):
                return event.offset_ms
            calls = delta.get("tool_calls") or ()
            if any((c.get("function") or {}).get("arguments") for c in calls):
                return event.offset_ms
    return None


def format_of(endpoint: str) -> FormatName:
    """The API format an endpoint's answers (and streams) are in."""
    return "anthropic" if endpoint in ("messages", "count_tokens") else "openai"
