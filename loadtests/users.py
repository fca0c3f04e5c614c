"""Load users: one abstract user per API format, four concrete ones.

Every response is validated (:mod:`harness.answer_check`: status, schema, non-empty
content, the stream's terminator) and marked with ``resp.failure(...)`` when it falls
short. A stream is timed to its last byte, not to its headers (Locust's default for
``stream=True``), its time to first token is fired as a separate ``TTFT`` request event,
and its output tokens become the response length.

Streams are read line by line from geventhttpclient's response: its ``read(n)`` waits
for ``n`` bytes, which would hold back the first event (and so TTFT) until a whole
block has arrived; ``readline`` returns each line as soon as it is complete.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Iterator
from functools import cache
from typing import Any, ClassVar

from locust import FastHttpUser, between, constant, task

from harness.answer_check import check_json, check_stream
from harness.corpus import CorpusEntry, load_corpus
from harness.observation import SseEvent
from harness.sse import SseDecoder
from loadtests.bodies import PreparedRequest, RequestPool, build_pool
from loadtests.options import LoadOptions
from loadtests.options import weight as env_weight
from memory_proxy.api_formats import FormatName

__all__ = [
    "AnthropicMessagesUser",
    "ChatStreamUser",
    "ChatUser",
    "MessagesStreamToolsUser",
    "MessagesUser",
    "OpenAIChatUser",
    "options",
]

MEMORY_HEADER = "x-memory-user-id"
_SNIPPET = 200


@cache
def options() -> LoadOptions:
    return LoadOptions.from_env()


@cache
def _pools() -> dict[str, RequestPool]:
    opts = options()
    entries = load_corpus(opts.corpus)
    key = opts.api_key

    def is_chat(e: CorpusEntry) -> bool:
        return e.endpoint == "chat"

    def is_messages(e: CorpusEntry) -> bool:
        # Claude Code always streams: its turns are not sent as non-stream requests.
        return e.endpoint == "messages" and e.client_family != "claude-code"

    def has_tools(e: CorpusEntry) -> bool:
        return e.endpoint == "messages" and bool(e.body.get("tools"))

    return {
        "chat": build_pool("chat", entries, key=key, include=is_chat, stream=False),
        "chat_stream": build_pool("chat_stream", entries, key=key, include=is_chat, stream=True),
        "messages": build_pool("messages", entries, key=key, include=is_messages, stream=False),
        "messages_tools": build_pool(
            "messages_tools", entries, key=key, include=has_tools, stream=True
        ),
    }


def _wait_time() -> Any:
    wait_s = options().wait_ms / 1000
    return between(0, wait_s) if wait_s > 0 else constant(0)


class _CorpusUser(FastHttpUser):
    """Sends corpus requests of one pool, seeded per user, with a memory id for half."""

    abstract = True
    api_format: ClassVar[FormatName]
    endpoint: ClassVar[str]
    pool_name: ClassVar[str]
    request_name: ClassVar[str]
    stream: ClassVar[bool] = False
    wait_time = _wait_time()
    _serial: ClassVar[Iterator[int]] = itertools.count()

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        opts = options()
        # Workers of one distributed run must not all replay the same sequence.
        worker = f"w{opts.worker_index}:" if opts.worker_index else ""
        self.rng = random.Random(f"{opts.seed}:{worker}{type(self).__name__}:{next(self._serial)}")
        self.pool = _pools()[self.pool_name]
        self.memory_user: str | None = None
        if opts.memory_users > 0 and self.rng.random() < 0.5:
            self.memory_user = f"load-user-{self.rng.randrange(opts.memory_users):02d}"

    @task
    def send(self) -> None:
        request = self.pool.draw(self.rng)
        headers = dict(request.headers)
        if self.memory_user is not None:
            headers[MEMORY_HEADER] = self.memory_user
        if self.stream:
            self._send_stream(request, headers)
        else:
            self._send_json(request, headers)

    def _send_json(self, request: PreparedRequest, headers: dict[str, str]) -> None:
        with self.client.request(
            request.method,
            request.path,
            data=request.content,  # type: ignore[arg-type]  # bytes go out as they are
            headers=headers,
            name=self.request_name,
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"{request.entry_id}: status {resp.status_code}: {_text(resp)}")
                return
            try:
                payload = json.loads(resp.content or b"")
            except ValueError:
                resp.failure(f"{request.entry_id}: reply is not JSON: {_text(resp)}")
                return
            check = check_json(self.endpoint, payload)
            resp.request_meta["response_length"] = check.output_tokens
            if check.problem is not None:
                resp.failure(f"{request.entry_id}: {check.problem}")
            else:
                resp.success()

    def _send_stream(self, request: PreparedRequest, headers: dict[str, str]) -> None:
        began = time.perf_counter()
        with self.client.request(
            request.method,
            request.path,
            data=request.content,  # type: ignore[arg-type]  # bytes go out as they are
            headers=headers,
            name=self.request_name,
            stream=True,
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"{request.entry_id}: status {resp.status_code}: {_text(resp)}")
                return
            decoder = SseDecoder()
            events: list[SseEvent] = []
            try:
                for line in _lines(resp):
                    events.extend(decoder.feed(line, (time.perf_counter() - began) * 1000))
                events.extend(decoder.close((time.perf_counter() - began) * 1000))
            except Exception as exc:  # the connection dropped mid-stream
                resp.request_meta["response_time"] = (time.perf_counter() - began) * 1000
                resp.failure(
                    f"{request.entry_id}: stream broke after {len(events)} events: {exc!r}"
                )
                return
            resp.request_meta["response_time"] = (time.perf_counter() - began) * 1000
            check = check_stream(self.api_format, events)
            resp.request_meta["response_length"] = check.output_tokens
            if check.ttft_ms is not None:
                self.environment.events.request.fire(
                    request_type="TTFT",
                    name=self.request_name,
                    response_time=check.ttft_ms,
                    response_length=0,
                    exception=None,
                    context={},
                )
            if check.problem is not None:
                resp.failure(f"{request.entry_id}: {check.problem}")
            else:
                resp.success()


def _lines(resp: Any) -> Iterator[bytes]:
    raw = getattr(resp, "_response", None)
    readline = getattr(raw, "readline", None)
    if readline is None:  # not geventhttpclient underneath: chunks as the client yields them
        yield from resp.iter_content(chunk_size=4096, decode_content=False)
        return
    while line := readline(b"\n"):
        yield line


def _text(resp: Any) -> str:
    error = getattr(resp, "error", None)
    if error is not None and not resp.status_code:
        return repr(error)
    try:
        text = resp.text or ""
    except Exception as exc:  # the body itself could not be read
        return repr(exc)
    return text[:_SNIPPET]


class OpenAIChatUser(_CorpusUser):
    """OpenAI Chat Completions: ``chat.completion`` bodies, ``data: [DONE]``-ended streams."""

    abstract = True
    api_format = "openai"
    endpoint = "chat"


class AnthropicMessagesUser(_CorpusUser):
    """Anthropic Messages: ``message`` bodies, ``message_stop``-ended streams."""

    abstract = True
    api_format = "anthropic"
    endpoint = "messages"


class ChatUser(OpenAIChatUser):
    abstract = env_weight("CHAT") == 0
    weight = max(env_weight("CHAT"), 1)
    pool_name = "chat"
    request_name = "chat"


class ChatStreamUser(OpenAIChatUser):
    abstract = env_weight("CHAT_STREAM") == 0
    weight = max(env_weight("CHAT_STREAM"), 1)
    pool_name = "chat_stream"
    request_name = "chat stream"
    stream = True


class MessagesUser(AnthropicMessagesUser):
    abstract = env_weight("MESSAGES") == 0
    weight = max(env_weight("MESSAGES"), 1)
    pool_name = "messages"
    request_name = "messages"


class MessagesStreamToolsUser(AnthropicMessagesUser):
    abstract = env_weight("MESSAGES_STREAM") == 0
    weight = max(env_weight("MESSAGES_STREAM"), 1)
    pool_name = "messages_tools"
    request_name = "messages stream+tools"
    stream = True
