"""Upstream faults, every class on every path of the real SDK proxy (uvicorn on loopback).

Each fault class meets the four ways a request reaches a provider: Chat Completions to an
openai model (pass-through relay) and to an anthropic model (``litellm.acompletion``),
Messages to an anthropic model (pass-through relay) and to an openai model
(``litellm.anthropic_messages``), each streamed and not. The proxy under test has its
own config: deployments whose ``api_base`` cannot be reached (a ``.invalid`` host, TLS
spoken to the plain-HTTP sandbox, a closed port) next to the sandbox's, a 1 s request
timeout and near-zero backoff.

A failure before the first byte must be an HTTP status with the endpoint's error body,
retried only when the table says so; on a pass-through (relay) path a provider's own
error answer reaches the client as the provider wrote it (status, type, body). A failure
after the first byte is exactly one SSE error event and a clean end of the body, never
retried. Upstream attempts are counted twice: the
sandbox's captures (what reached the provider) and the proxy's access-log ``attempts``
(what it tried, also when nothing could be reached). After every case a normal request
on the same path must succeed, and no error text may carry a key, a secret or an
upstream URL.

On the ``messages-translated`` path an error after the first byte is written by litellm's
Anthropic adapter (its own ``event: error`` frame, type ``api_error``), which the proxy's
translation runs; the proxy relays it as the stream's last event.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from harness.loopback import LoopbackServer, free_port
from harness.sandbox.client import SandboxControl

MASTER_KEY = "sk-proxy-faults-master-4b1e"
ANTHROPIC_KEY = "sk-ant-faults-secret-7c55d0"
OPENAI_KEY = "sk-openai-faults-secret-93a1f2"
SUPERMEMORY_KEY = "sm-faults-secret-1d8e44"
SECRETS = (MASTER_KEY, ANTHROPIC_KEY, OPENAI_KEY, SUPERMEMORY_KEY)
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
REQUEST_TIMEOUT_S = 1.0
HANG_GUARD_S = 20.0  # no case may take this long: a hang fails, it does not stall the run
RETRIES = 2  # num_retries: three attempts in all


@dataclass(frozen=True)
class Route:
    """One way a request reaches a provider."""

    name: str
    path: str
    provider: str  # the deployment's: "claude" (anthropic) or "gpt" (openai)

    @property
    def api(self) -> str:
        return "anthropic" if self.path == MESSAGES else "openai"

    def body(self, target: str, prompt: str, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": f"{target}-{self.provider}",
            "messages": [{"role": "user", "content": prompt}],
            "stream": stream,
        }
        if self.api == "anthropic":
            body["max_tokens"] = 200
        return body


ROUTES = (
    Route("chat-relay", CHAT, "gpt"),
    Route("chat-translated", CHAT, "claude"),
    Route("messages-relay", MESSAGES, "claude"),
    Route("messages-translated", MESSAGES, "gpt"),
)

# The documented error of each kind: (OpenAI type, OpenAI code), Anthropic type.
KINDS: dict[str, tuple[tuple[str, str], str]] = {
    "unavailable": (("service_unavailable_error", "service_unavailable"), "overloaded_error"),
    "rate_limited": (("rate_limit_error", "rate_limit_exceeded"), "rate_limit_error"),
    "timeout": (("timeout_error", "timeout"), "api_error"),
    "bad_gateway": (("api_error", "upstream_error"), "api_error"),
}


@dataclass(frozen=True)
class Fault:
    """A fault class and what the client must see.

    ``status`` is the HTTP status of a failure before the first byte; ``None`` means the
    fault strikes after it: a 200 whose body ends in one SSE error event.
    """

    name: str
    target: str  # deployment prefix: "ok" is the sandbox, the others cannot be reached
    directive: str
    status: int | None
    kind: str
    attempts: int
    streams: tuple[bool, ...] = (False, True)
    retry_after: str | None = None
    # The provider answered with an error: on a relay path the client gets that answer
    # itself. (OpenAI error type, Anthropic error type), or None for the edge's text.
    provider_types: tuple[str, str] | None = None
    provider_answered: bool = False


FAULTS = (
    Fault("dns", "dns", "", 503, "unavailable", 1 + RETRIES),
    Fault("tls", "tls", "", 503, "unavailable", 1 + RETRIES),
    Fault("refused", "refused", "", 503, "unavailable", 1 + RETRIES),
    # The sandbox holds its headers back three times the proxy's timeout.
    Fault("timeout-headers", "ok", "[sandbox:delay_ms=3000]", 504, "timeout", 1),
    # Five events (past litellm's first text delta), then silence with the socket open.
    Fault("timeout-mid-stream", "ok", "[sandbox:stall_after=5]", None, "timeout", 1, (True,)),
    Fault("truncated-json", "ok", "[sandbox:malformed]", 502, "bad_gateway", 1, (False,)),
    # Five events, then the connection drops: no [DONE] / message_stop.
    Fault("no-final-event", "ok", "[sandbox:cut_after=5]", None, "bad_gateway", 1, (True,)),
    Fault(
        "429",
        "ok",
        "[sandbox:status=429]",
        429,
        "rate_limited",
        1 + RETRIES,
        retry_after="1",
        provider_types=("requests", "rate_limit_error"),
        provider_answered=True,
    ),
    Fault(
        "503",
        "ok",
        "[sandbox:status=503]",
        503,
        "unavailable",
        1 + RETRIES,
        provider_types=("server_error", "overloaded_error"),
        provider_answered=True,
    ),
    Fault(
        "cloudflare-1200",
        "ok",
        "[sandbox:cloudflare=1200]",
        503,
        "unavailable",
        1 + RETRIES,
        provider_answered=True,
    ),
)

CASES = [
    pytest.param(
        fault, route, stream, id=f"{fault.name}-{route.name}-{'sse' if stream else 'json'}"
    )
    for fault in FAULTS
    for route in ROUTES
    for stream in fault.streams
]


def _deployments(target: str, base: str) -> str:
    return f"""
  - model_name: {target}-claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5-20250929
      api_base: {base}/v3/api.anthropic.com
      api_key: {ANTHROPIC_KEY}
      extra_headers:
        x-supermemory-api-key: {SUPERMEMORY_KEY}
  - model_name: {target}-gpt
    litellm_params:
      model: openai/gpt-4o
      api_base: {base}/v3/api.openai.com/v1
      api_key: {OPENAI_KEY}
      extra_headers:
        x-supermemory-api-key: {SUPERMEMORY_KEY}
"""


@pytest.fixture(scope="module")
def upstream_bases(sandbox_server: LoopbackServer) -> dict[str, str]:
    return {
        "ok": sandbox_server.url,
        # .invalid never resolves (RFC 6761): here it fails in milliseconds, offline.
        "dns": "http://no-such-host.invalid:9",
        # TLS to the plain-HTTP sandbox: the handshake gets an HTTP 400 back.
        "tls": f"https://127.0.0.1:{sandbox_server.port}",
        "refused": f"http://127.0.0.1:{free_port()}",
    }


@pytest.fixture(scope="module")
def fault_config(upstream_bases: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = "".join(_deployments(target, base) for target, base in upstream_bases.items())
    text = (
        f"model_list:{models}\n"
        f"general_settings:\n  master_key: {MASTER_KEY}\n"
        f"litellm_settings:\n  num_retries: {RETRIES}\n  request_timeout: {REQUEST_TIMEOUT_S}\n"
        # Backoff near zero, and the sandbox's Retry-After: 1 capped to it.
        "memory_proxy:\n  retry_backoff_seconds: 0.01\n  retry_backoff_max_seconds: 0.05\n"
    )
    path = tmp_path_factory.mktemp("faults") / "faults.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class AccessLines(logging.Handler):
    """The proxy's access-log lines, by request id."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: dict[str, dict[str, Any]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        line = json.loads(record.getMessage())
        self.lines[line["request_id"]] = line

    def wait_for(self, request_id: str) -> dict[str, Any]:
        # A stream's line is written just after its last byte went out.
        deadline = time.monotonic() + 5
        while request_id not in self.lines:
            assert time.monotonic() < deadline, f"no access-log line for {request_id}"
            time.sleep(0.01)
        return self.lines[request_id]


@pytest.fixture(scope="module")
def access_log() -> Iterator[AccessLines]:
    logger = logging.getLogger("memory_proxy.access")
    handler = AccessLines()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture(scope="module")
def fault_proxy(fault_config: Path, access_log: AccessLines) -> Iterator[LoopbackServer]:
    from memory_proxy.app import create_app
    from memory_proxy.config import load_config

    with LoopbackServer(create_app(load_config(fault_config))) as server:
        # litellm's first call on a path loads a lot (seconds): not inside any case.
        for route in ROUTES:
            _assert_serves(server, route, stream=False)
        yield server


@dataclass
class Outcome:
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def _send(proxy: LoopbackServer, route: Route, body: dict[str, Any]) -> Outcome:
    # The whole body is read: an unclean end (no chunked terminator) raises here.
    with httpx.stream(
        "POST", proxy.url + route.path, json=body, headers=AUTH, timeout=HANG_GUARD_S
    ) as reply:
        data = reply.read()
    return Outcome(reply.status_code, reply.headers, data)


def _events(body: bytes) -> list[tuple[str, Any]]:
    """(event name or "", parsed data) per SSE event; OpenAI's [DONE] kept as a string."""
    events: list[tuple[str, Any]] = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        name, data = "", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            joined = "\n".join(data)
            events.append((name, joined if joined == "[DONE]" else json.loads(joined)))
    return events


def _is_error_event(route: Route, name: str, data: Any) -> bool:
    if route.api == "anthropic":
        return name == "error"
    return isinstance(data, dict) and "error" in data


def _check_error(route: Route, payload: Any, kind: str) -> None:
    """``payload`` is the endpoint's error body, of the documented type."""
    (openai_type, openai_code), anthropic_type = KINDS[kind]
    if route.api == "openai":
        assert set(payload) == {"error"}, payload
        error = payload["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert (error["type"], error["code"]) == (openai_type, openai_code), error
    else:
        assert payload["type"] == "error", payload
        error = payload["error"]
        assert error["type"] == anthropic_type, error
    assert isinstance(error["message"], str) and error["message"], error


def _check_provider_error(route: Route, outcome: Outcome, types: tuple[str, str] | None) -> None:
    """The provider's own error answer, not re-wrapped in the proxy's envelope."""
    if types is None:  # Cloudflare's edge: plain text, as it sent it
        assert outcome.headers["content-type"].startswith("text/plain")
        assert outcome.text.strip() == "error code: 1200"
        return
    payload = json.loads(outcome.body)
    openai_type, anthropic_type = types
    assert payload["error"]["type"] == (anthropic_type if route.api == "anthropic" else openai_type)
    if route.api == "anthropic":
        # Anthropic's body names the request; the relayed request-id header matches it.
        assert payload["request_id"] == outcome.headers["request-id"]
    assert outcome.headers["x-should-retry"] == "true"


def _check_no_secrets(text: str, bases: dict[str, str]) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert "sk-" not in text
    for base in bases.values():
        assert base + "/v3" not in text  # no upstream URL
    assert "/v3/api." not in text
    assert "object at 0x" not in text  # no reprs of the proxy's own objects


def _assert_serves(proxy: LoopbackServer, route: Route, *, stream: bool) -> None:
    """A normal request on ``route`` succeeds, whole."""
    outcome = _send(proxy, route, route.body("ok", "hello again, normal service", stream))
    assert outcome.status == 200, outcome.text
    if not stream:
        reply = json.loads(outcome.body)
        assert reply["choices" if route.api == "openai" else "content"]
        return
    events = _events(outcome.body)
    assert not any(_is_error_event(route, name, data) for name, data in events), events
    name, data = events[-1]
    if route.api == "openai":
        assert data == "[DONE]", events
    else:
        assert name == "message_stop", events


@pytest.mark.parametrize(("fault", "route", "stream"), CASES)
def test_upstream_fault(
    fault_proxy: LoopbackServer,
    sandbox: SandboxControl,
    access_log: AccessLines,
    upstream_bases: dict[str, str],
    fault: Fault,
    route: Route,
    stream: bool,
) -> None:
    prompt = f"{fault.directive} tell me about proxies and the faults they meet".strip()
    outcome = _send(fault_proxy, route, route.body(fault.target, prompt, stream))

    if fault.status is not None:
        # Before the first byte: a status and the endpoint's error body.
        assert outcome.status == fault.status, outcome.text
        assert outcome.headers.get("retry-after") == fault.retry_after
        if fault.provider_answered and route.name.endswith("-relay"):
            _check_provider_error(route, outcome, fault.provider_types)
        else:
            assert outcome.headers["content-type"].startswith("application/json")
            _check_error(route, json.loads(outcome.body), fault.kind)
    else:
        # After the first byte: the events so far, one error event, a clean end.
        assert outcome.status == 200, outcome.text
        assert outcome.headers["content-type"].startswith("text/event-stream")
        events = _events(outcome.body)
        errors = [i for i, (name, data) in enumerate(events) if _is_error_event(route, name, data)]
        assert errors == [len(events) - 1], events
        assert len(events) >= 2  # something was relayed before the failure
        _check_error(route, events[-1][1], fault.kind)
        assert "[DONE]" not in [data for _, data in events]
        assert "message_stop" not in [name for name, _ in events]
    _check_no_secrets(outcome.text, upstream_bases)

    # Retries before the first byte only, as many as the table says.
    line = access_log.wait_for(outcome.headers["x-request-id"])
    assert (line["status"], line["attempts"]) == (outcome.status, fault.attempts), line
    reached = sandbox.api_requests()
    assert len(reached) == (fault.attempts if fault.target == "ok" else 0), reached

    _assert_serves(fault_proxy, route, stream=stream)


def test_openai_sdk_sees_each_failure_as_its_own_error(fault_proxy: LoopbackServer) -> None:
    with openai.OpenAI(base_url=fault_proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0) as oai:
        with pytest.raises(openai.InternalServerError) as unreachable:
            oai.chat.completions.create(
                model="dns-gpt", messages=[{"role": "user", "content": "hi"}]
            )
        assert unreachable.value.status_code == 503
        assert unreachable.value.code == "service_unavailable"

        with pytest.raises(openai.RateLimitError) as limited:
            oai.chat.completions.create(
                model="ok-claude", messages=[{"role": "user", "content": "[sandbox:status=429]"}]
            )
        assert limited.value.response.headers["retry-after"] == "1"

        chunks = oai.chat.completions.create(
            model="ok-claude",
            messages=[{"role": "user", "content": "[sandbox:stall_after=5] a long answer"}],
            stream=True,
        )
        received = []
        with pytest.raises(openai.APIError, match="timed out"):
            for chunk in chunks:
                received.append(chunk)
        assert received  # the failure came after the first chunk


def test_anthropic_sdk_sees_each_failure_as_its_own_error(fault_proxy: LoopbackServer) -> None:
    with anthropic.Anthropic(base_url=fault_proxy.url, api_key=MASTER_KEY, max_retries=0) as client:
        with pytest.raises(anthropic.APIStatusError) as unreachable:
            client.messages.create(
                model="refused-gpt", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
            )
        assert unreachable.value.status_code == 503
        assert isinstance(unreachable.value.body, dict)
        assert unreachable.value.body["error"]["type"] == "overloaded_error"

        with pytest.raises(anthropic.APIStatusError) as late:
            client.messages.create(
                model="ok-claude",
                max_tokens=20,
                messages=[{"role": "user", "content": "[sandbox:delay_ms=3000] hi"}],
            )
        assert late.value.status_code == 504

        with pytest.raises(anthropic.APIStatusError, match="upstream"):
            with client.messages.stream(
                model="ok-claude",
                max_tokens=200,
                messages=[{"role": "user", "content": "[sandbox:cut_after=5] a long answer"}],
            ) as stream:
                stream.get_final_message()


def _raised_while_handling(cause: BaseException, wrapper: Callable[..., Exception]) -> Exception:
    """``wrapper`` as litellm raises it: while handling the transport's ``cause``."""
    exc = wrapper(message="boom", llm_provider="anthropic", model="m")
    exc.__context__ = cause
    return exc


def _json_error() -> json.JSONDecodeError:
    try:
        json.loads('{"content": "a reply cut sh')
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError("the JSON above is cut")


@pytest.mark.parametrize(
    ("cause", "wrapper", "status", "fragment"),
    [
        (httpx.ConnectError("Cannot connect to host"), "InternalServerError", 503, "unreachable"),
        (httpx.ReadTimeout("Timeout on reading data"), "InternalServerError", 504, "timed out"),
        (_json_error(), "APIConnectionError", 502, "not valid JSON"),
        # Not a transport failure: a provider's 500 stays a 502, never "unreachable".
        (FileNotFoundError("cost map"), "InternalServerError", 502, "upstream error 500"),
        # litellm failing on the client's request before any call (found by schemathesis).
        (
            AttributeError("'list' object has no attribute 'get'"),
            "APIConnectionError",
            400,
            "could not be translated",
        ),
        (
            ValueError("Bad Request: messages is required"),
            "APIConnectionError",
            400,
            "messages is required",
        ),
    ],
    ids=[
        "connect",
        "timeout",
        "json",
        "unrelated-oserror",
        "translation-crash",
        "translation-refusal",
    ],
)
def test_litellm_stand_in_500s_are_judged_by_their_cause(
    cause: BaseException, wrapper: str, status: int, fragment: str
) -> None:
    import litellm

    from memory_proxy.upstream_errors import translate_upstream_error

    error = translate_upstream_error(_raised_while_handling(cause, getattr(litellm, wrapper)))
    assert error.status == status
    assert fragment in error.message
    assert "cut sh" not in error.message  # a bad reply's text is not echoed
    assert "Traceback" not in error.message and "object has no attribute" not in error.message
