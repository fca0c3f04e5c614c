"""OpenTelemetry tracing of the SDK proxy: one client request, one trace across the proxy
and its provider call; the real app on loopback against the sandbox, spans in the SDK's
in-memory exporter."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.loopback import LoopbackServer
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config
from harness.settings import HarnessSettings, ShadowSettings
from harness.shadow.dispatch import LocalDispatch
from harness.shadow.engine import MirrorEngine
from harness.shadow.mirror import ShadowMirror
from harness.shadow.targets import MirrorTarget, MirrorTargets
from memory_proxy.config import load_config
from memory_proxy.errors import ConfigError
from memory_proxy.tracing import NO_TRACING, load_tracing
from tests.conftest import MASTER_KEY

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def traced_app(
    sandbox_server: LoopbackServer,
    exporter: InMemorySpanExporter,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    from memory_proxy.app import create_app

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config_path = write_sandbox_config(
        sandbox_server.url,
        tmp_path_factory.mktemp("tracing") / "sandbox.yaml",
        extra="memory_proxy:\n  tracing: true\n  retry_backoff_seconds: 0.05\n",
    )
    yield create_app(load_config(config_path), tracer_provider=provider)
    provider.shutdown()


@pytest.fixture(scope="module")
def traced_proxy(traced_app: Any) -> Iterator[LoopbackServer]:
    with LoopbackServer(traced_app) as server:
        yield server


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


def wait_for_server_span(exporter: InMemorySpanExporter, path: str) -> ReadableSpan:
    """The request's SERVER span, once ended (it ends with the last body byte, which the
    client may have read a moment before)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for span in exporter.get_finished_spans():
            if span.kind is SpanKind.SERVER and (span.attributes or {}).get("url.path") == path:
                return span
        time.sleep(0.01)
    raise AssertionError(f"no SERVER span for {path}: {exporter.get_finished_spans()}")


def trace_of(exporter: InMemorySpanExporter, server: ReadableSpan) -> list[ReadableSpan]:
    trace_id = server.context.trace_id
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


def only(spans: list[ReadableSpan], name: str, kind: SpanKind = SpanKind.INTERNAL) -> ReadableSpan:
    (found,) = [s for s in spans if s.name == name and s.kind is kind]
    return found


def traceparent_ids(value: str) -> tuple[str, str]:
    version, trace_id, parent_id, flags = value.split("-")
    assert version == "00" and int(flags, 16) & 0x01  # sampled (0x02: random trace id)
    return trace_id, parent_id


def test_one_request_is_one_trace_across_proxy_and_upstream(
    traced_proxy: LoopbackServer, spans: InMemorySpanExporter, sandbox: SandboxControl
) -> None:
    client = anthropic.Anthropic(base_url=traced_proxy.url, api_key=MASTER_KEY, max_retries=0)
    reply = client.messages.create(
        model="claude-sonnet-4.5", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    )
    assert reply.stop_reason == "end_turn"

    server = wait_for_server_span(spans, "/v1/messages")
    assert server.name == "POST /v1/messages"
    assert server.parent is None  # the client sent no traceparent: a new trace
    assert (server.attributes or {})["http.response.status_code"] == 200
    trace = trace_of(spans, server)
    route = only(trace, "route")
    upstream = only(trace, "POST", SpanKind.CLIENT)
    for child in (route, upstream):
        assert child.parent is not None and child.parent.span_id == server.context.span_id
    assert (route.attributes or {})["memory_proxy.route"] == "claude-sonnet-4.5"
    assert (route.attributes or {})["memory_proxy.user_id"] == "anthropic-sdk"
    attributes = upstream.attributes or {}
    assert attributes["url.full"].endswith("/v3/api.anthropic.com/v1/messages")
    assert attributes["http.response.status_code"] == 200
    assert upstream.status.status_code is StatusCode.UNSET
    # No relay span: the reply was not streamed.
    assert not [s for s in trace if s.name == "relay"]

    (captured,) = sandbox.api_requests()
    trace_id, parent_id = traceparent_ids(captured["headers"]["traceparent"])
    assert trace_id == f"{server.context.trace_id:032x}"
    assert parent_id == f"{server.context.span_id:016x}"
    # The headers the span recorded nothing of: no key reached an attribute.
    recorded = " ".join(str(v) for s in trace for v in (s.attributes or {}).values())
    assert "sk-ant-sandbox" not in recorded and MASTER_KEY not in recorded


def test_litellm_path_carries_the_trace_upstream(
    traced_proxy: LoopbackServer, spans: InMemorySpanExporter, sandbox: SandboxControl
) -> None:
    """Chat Completions to a claude model: litellm translates, and its call is traced too."""
    client = openai.OpenAI(base_url=traced_proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    reply = client.chat.completions.create(
        model="claude-sonnet-4.5", messages=[{"role": "user", "content": "Hi"}]
    )
    assert reply.choices[0].message.content

    server = wait_for_server_span(spans, "/v1/chat/completions")
    upstream = only(trace_of(spans, server), "POST", SpanKind.CLIENT)
    assert (upstream.attributes or {})["url.full"].endswith("/v1/messages")
    (captured,) = sandbox.api_requests()
    trace_id, _ = traceparent_ids(captured["headers"]["traceparent"])
    assert trace_id == f"{server.context.trace_id:032x}"


def test_stream_relay_span_ends_after_the_last_chunk(
    traced_proxy: LoopbackServer, spans: InMemorySpanExporter, sandbox: SandboxControl
) -> None:
    client = anthropic.Anthropic(base_url=traced_proxy.url, api_key=MASTER_KEY, max_retries=0)
    with client.messages.stream(
        model="claude-sonnet-4.5",
        max_tokens=200,
        messages=[{"role": "user", "content": "[sandbox:stream_delay_ms=20] Stream to me"}],
    ) as stream:
        text = "".join(stream.text_stream)
    assert "Stream" in text

    server = wait_for_server_span(spans, "/v1/messages")
    trace = trace_of(spans, server)
    relay = only(trace, "relay")
    upstream = only(trace, "POST", SpanKind.CLIENT)
    assert relay.parent is not None and relay.parent.span_id == server.context.span_id
    assert (relay.attributes or {})["memory_proxy.stream_outcome"] == "complete"
    assert relay.status.status_code is StatusCode.UNSET
    # The CLIENT span ends when the provider's body has been read to its end: the relay
    # started while chunks were still coming and ended only after the last one.
    assert upstream.events and upstream.events[0].name == "first_chunk"
    assert relay.start_time is not None and upstream.end_time is not None
    assert relay.end_time is not None and server.end_time is not None
    assert relay.start_time < upstream.end_time <= relay.end_time <= server.end_time


def test_a_callers_traceparent_is_continued(
    traced_proxy: LoopbackServer, spans: InMemorySpanExporter, sandbox: SandboxControl
) -> None:
    """A caller's trace (shadow mode's mirror leg copies the client's header) goes on
    through the proxy to the provider."""
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
    reply = httpx.post(
        traced_proxy.url + "/v1/chat/completions",
        json=body,
        headers={
            "authorization": f"Bearer {MASTER_KEY}",
            "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_PARENT}-01",
        },
    )
    assert reply.status_code == 200

    server = wait_for_server_span(spans, "/v1/chat/completions")
    assert f"{server.context.trace_id:032x}" == CLIENT_TRACE
    assert server.parent is not None and f"{server.parent.span_id:016x}" == CLIENT_PARENT
    assert only(trace_of(spans, server), "POST", SpanKind.CLIENT)
    (captured,) = sandbox.api_requests()
    trace_id, parent_id = traceparent_ids(captured["headers"]["traceparent"])
    assert (trace_id, parent_id) == (CLIENT_TRACE, f"{server.context.span_id:016x}")


def test_the_mirror_leg_shares_the_primarys_trace(
    traced_app: Any, spans: InMemorySpanExporter, sandbox: SandboxControl
) -> None:
    """Shadow mode: the mirror request copies the client's traceparent, so the pair's two
    sides are one trace (the primary's SERVER span continues the same one)."""
    seen: list[dict[str, str]] = []

    async def mirror_side(request: Request) -> Response:
        seen.append(dict(request.headers))
        return JSONResponse({"id": "shadow", "choices": []})

    class Sink:
        def put(self, pair: Any) -> bool:
            return True

        def add_unattached(self, target: str, calls: Any) -> int:
            return 0

    with LoopbackServer(
        Starlette(routes=[Route("/{path:path}", mirror_side, methods=["POST"])])
    ) as shadow:
        legacy = MirrorTarget("legacy", shadow.url)
        engine = MirrorEngine(
            settings=HarnessSettings(shadow=ShadowSettings(aa_rate=0.0, timeout_seconds=10.0)),
            sink=Sink(),
            targets=MirrorTargets(primary="sdk", shadow=legacy, repeat=legacy),
        )
        mirror = ShadowMirror(traced_app, settings=engine.settings, dispatch=LocalDispatch(engine))
        with LoopbackServer(mirror) as server:
            reply = httpx.post(
                server.url + "/v1/chat/completions",
                json={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]},
                headers={
                    "authorization": f"Bearer {MASTER_KEY}",
                    "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_PARENT}-01",
                },
            )
            assert reply.status_code == 200
            deadline = time.monotonic() + 10
            while not seen and time.monotonic() < deadline:
                time.sleep(0.01)

    server_span = wait_for_server_span(spans, "/v1/chat/completions")
    (mirrored,) = seen
    trace_id, _ = traceparent_ids(mirrored["traceparent"])
    assert trace_id == f"{server_span.context.trace_id:032x}"
    (captured,) = sandbox.api_requests()  # the provider saw the primary's call only
    assert traceparent_ids(captured["headers"]["traceparent"])[0] == trace_id


def test_an_unknown_model_is_a_failed_route_span(
    traced_proxy: LoopbackServer, spans: InMemorySpanExporter, sandbox: SandboxControl
) -> None:
    body = {"model": "no-such-model", "max_tokens": 10, "messages": []}
    reply = httpx.post(
        traced_proxy.url + "/v1/messages", json=body, headers={"x-api-key": MASTER_KEY}
    )
    assert reply.status_code == 404
    server = wait_for_server_span(spans, "/v1/messages")
    route = only(trace_of(spans, server), "route")
    assert route.status.status_code is StatusCode.ERROR
    assert (route.attributes or {})["error.type"] == "ModelNotFound"
    assert sandbox.api_requests() == []


def test_tracing_off_sends_no_traceparent(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    client = anthropic.Anthropic(base_url=sdk_proxy.url, api_key=MASTER_KEY, max_retries=0)
    client.messages.create(
        model="claude-sonnet-4.5", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    )
    (captured,) = sandbox.api_requests()
    assert "traceparent" not in captured["headers"]
    sandbox_yaml = Path(__file__).parents[2] / "config" / "sandbox.yaml"
    assert load_config(sandbox_yaml).options.tracing is False  # off by default


def test_switched_on_without_opentelemetry_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if the packages were not installed: every import of them fails.
    monkeypatch.delitem(sys.modules, "memory_proxy.otel_tracing", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ConfigError, match=r"memory_proxy\.tracing.*memory-proxy\[tracing\]"):
        load_tracing(True)
    assert load_tracing(False) is NO_TRACING


def test_console_provider_without_the_sdk_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from memory_proxy.tracing import console_tracer_provider

    # The API ships with FastAPI; the SDK is the extra's.
    for name in ("opentelemetry.sdk", "opentelemetry.sdk.resources", "opentelemetry.sdk.trace"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConfigError, match=r"not installed \(opentelemetry\.sdk"):
        console_tracer_provider()
