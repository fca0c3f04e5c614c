"""The LiteLLM server launcher, against the real server and a fake upstream on loopback.

The server takes 7-15 s to start, so one module-scoped server carries every traffic test;
the refusal tests hand the launcher a ``spawn`` that refuses, to prove nothing was spawned.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from harness.loopback import LoopbackServer, free_port
from memory_proxy import litellm_server
from memory_proxy.litellm_server import LiteLLMServer, LiteLLMServerError
from memory_proxy.processes import Spawn

# One xdist worker runs this module: its LiteLLM server is module-scoped, and spread over
# four workers it started four times (~7.5 s of CPU each).
pytestmark = pytest.mark.xdist_group("litellm-server-module")

MASTER_KEY = "sk-test-master-6f1c0e2a9b8d4c7e"
SUPERMEMORY_KEY = "sm-from-config-env"
MEMORY_HEADERS = {"x-sm-user-id": "user-42", "x-sm-conversation-id": "conv-7"}


# -- fake upstream ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UpstreamRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeUpstream:
    """OpenAI and Anthropic endpoints that answer valid bodies and record every request."""

    def __init__(self) -> None:
        self.requests: list[UpstreamRequest] = []
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])

    def carrying(self, turn: str) -> list[UpstreamRequest]:
        """The requests whose body carries ``turn``: this test's, whatever else reaches
        this port. Loopback ports are reused across the suite's many short-lived servers.
        Counting every request since a mark, the forwarding test saw two upstream
        requests in two of four fresh-clone runs while its LiteLLM server's log showed
        one client request; a retry by LiteLLM would carry the same turn and still
        count twice here."""
        with self._lock:
            return [r for r in self.requests if turn in json.dumps(r.body)]

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        with self._lock:
            self.requests.append(UpstreamRequest(request.url.path, dict(request.headers), body))
        if request.url.path == "/v1/chat/completions":
            return JSONResponse(_chat_completion(body["model"]))
        if request.url.path == "/v1/messages":
            if body.get("stream"):
                return StreamingResponse(
                    _message_events(body["model"]), media_type="text/event-stream"
                )
            return JSONResponse(_message(body["model"]))
        return JSONResponse({"error": f"no route {request.url.path}"}, status_code=404)


def _chat_completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hello"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def _message(model: str) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }


async def _message_events(model: str) -> AsyncIterator[bytes]:
    start = {**_message(model), "content": [], "stop_reason": None}
    events = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "hello"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 1},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    for name, data in events:
        yield f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


# -- configs ---------------------------------------------------------------------------------


def write_config(
    directory: Path, upstream_url: str, *, master_key: str | None = MASTER_KEY
) -> Path:
    extra_headers = {"x-supermemory-api-key": "os.environ/SUPERMEMORY_API_KEY"}
    config: dict[str, Any] = {
        "model_list": [
            {
                "model_name": "gpt-test",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": f"{upstream_url}/v1",  # litellm appends only /chat/completions
                    "api_key": "sk-upstream-openai",
                    "extra_headers": extra_headers,
                },
            },
            {
                "model_name": "claude-test",
                "litellm_params": {
                    "model": "anthropic/claude-sonnet-4-5",
                    "api_base": upstream_url,  # litellm appends /v1/messages
                    "api_key": "sk-ant-upstream",
                    "extra_headers": extra_headers,
                },
            },
        ],
        "general_settings": {} if master_key is None else {"master_key": master_key},
    }
    path = directory / "config.yaml"
    # A comment and key order the launcher must not disturb.
    path.write_text("# user's own file: never edited\n" + yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream()
    with LoopbackServer(fake.app) as server:
        yield fake, server.url


@pytest.fixture(scope="module")
def config_path(
    tmp_path_factory: pytest.TempPathFactory, upstream: tuple[FakeUpstream, str]
) -> Path:
    return write_config(tmp_path_factory.mktemp("litellm-config"), upstream[1])


@pytest.fixture(scope="module")
def config_bytes(config_path: Path) -> bytes:
    return config_path.read_bytes()


@pytest.fixture(scope="module")
def server(
    config_path: Path, config_bytes: bytes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiteLLMServer]:
    log_path = tmp_path_factory.mktemp("litellm-log") / "litellm.log"
    launcher = LiteLLMServer(
        config_path,
        port=free_port(),
        log_path=log_path,
        env={"SUPERMEMORY_API_KEY": SUPERMEMORY_KEY},
    )
    with launcher:
        yield launcher


@pytest.fixture
def no_spawn() -> Spawn:
    def refuse(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        raise AssertionError(f"a process was started: {args}")

    return refuse


# -- the running server ----------------------------------------------------------------------


@pytest.mark.slow
def test_server_is_ready(server: LiteLLMServer) -> None:
    assert server.pid is not None
    assert server.startup_seconds is not None and server.startup_seconds > 0
    response = httpx.get(f"{server.url}/health/liveliness", timeout=5)
    assert response.status_code == 200
    assert server.command()[-6:-2] == ["--host", "127.0.0.1", "--port", str(server.port)]


def test_derived_config_enables_forwarding(server: LiteLLMServer) -> None:
    derived = server.derived_config_path
    assert derived is not None and derived.is_file()
    loaded = yaml.safe_load(derived.read_text())
    assert loaded["general_settings"]["forward_client_headers_to_llm_api"] is True
    assert loaded["general_settings"]["master_key"] == MASTER_KEY


def _assert_forwarded(request: UpstreamRequest) -> None:
    for name, value in MEMORY_HEADERS.items():
        assert request.headers.get(name) == value
    # The config's extra header wins over the same header sent by the client.
    assert request.headers.get("x-supermemory-api-key") == SUPERMEMORY_KEY
    # The client's credential for the server never travels on.
    assert all(MASTER_KEY not in value for value in request.headers.values())
    assert "cookie" not in request.headers


CLIENT_HEADERS = {**MEMORY_HEADERS, "x-supermemory-api-key": "sm-from-client", "cookie": "a=b"}


@pytest.mark.parametrize(
    ("model", "upstream_path"),
    [("gpt-test", "/v1/chat/completions"), ("claude-test", "/v1/messages")],
)
@pytest.mark.slow
def test_chat_completion_forwards_memory_headers(
    server: LiteLLMServer, upstream: tuple[FakeUpstream, str], model: str, upstream_path: str
) -> None:
    fake = upstream[0]
    turn = f"hi {uuid.uuid4().hex}"
    with openai.OpenAI(
        base_url=f"{server.url}/v1",
        api_key=MASTER_KEY,
        default_headers=CLIENT_HEADERS,
        max_retries=0,
    ) as client:
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": turn}]
        )
    assert reply.choices[0].message.content == "hello"
    (request,) = fake.carrying(turn)  # exactly one upstream request
    assert request.path == upstream_path
    _assert_forwarded(request)


def test_anthropic_messages_forwards_memory_headers(
    server: LiteLLMServer, upstream: tuple[FakeUpstream, str]
) -> None:
    fake = upstream[0]
    turn = f"hi {uuid.uuid4().hex}"
    with anthropic.Anthropic(
        base_url=server.url, api_key=MASTER_KEY, default_headers=CLIENT_HEADERS, max_retries=0
    ) as client:
        reply = client.messages.create(
            model="claude-test", max_tokens=16, messages=[{"role": "user", "content": turn}]
        )
    assert reply.content[0].type == "text" and reply.content[0].text == "hello"
    (request,) = fake.carrying(turn)
    assert request.path == "/v1/messages"
    _assert_forwarded(request)
    # The SDK's own x-stainless-* headers are not passed on to an anthropic upstream.
    assert not any(name.startswith("x-stainless") for name in request.headers)


def test_anthropic_messages_stream_is_sent_upstream_once(
    server: LiteLLMServer, upstream: tuple[FakeUpstream, str]
) -> None:
    fake = upstream[0]
    turn = f"hi {uuid.uuid4().hex}"
    with anthropic.Anthropic(
        base_url=server.url, api_key=MASTER_KEY, default_headers=CLIENT_HEADERS, max_retries=0
    ) as client:
        with client.messages.stream(
            model="claude-test", max_tokens=16, messages=[{"role": "user", "content": turn}]
        ) as stream:
            text = "".join(stream.text_stream)
    assert text == "hello"
    (request,) = fake.carrying(turn)
    assert request.body["stream"] is True
    _assert_forwarded(request)


def test_user_config_is_untouched_while_running(
    server: LiteLLMServer, config_path: Path, config_bytes: bytes
) -> None:
    assert config_path.read_bytes() == config_bytes
    assert server.derived_config_path is not None
    assert server.derived_config_path.parent != config_path.parent


# -- inspection without a server -------------------------------------------------------------


def test_command_uses_the_litellm_script_next_to_python(tmp_path: Path) -> None:
    launcher = LiteLLMServer(tmp_path / "config.yaml", port=4123)
    argv = launcher.command(tmp_path / "derived.yaml")
    assert argv[0] == str(Path(sys.executable).parent / "litellm")
    assert argv[1:] == [
        "--config",
        str(tmp_path / "derived.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        "4123",
        # Longer than the legacy proxy's httpx pool keeps an idle connection (5 s).
        "--keepalive_timeout",
        "75",
    ]
    assert launcher.url == "http://127.0.0.1:4123"
    assert launcher.pid is None


def test_derived_config_overrides_forwarding_and_anchors_includes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "include: [models.yaml, /etc/abs.yaml]\n"
        "general_settings:\n"
        "  master_key: os.environ/KEY\n"
        "  forward_client_headers_to_llm_api: false\n"
    )
    original = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger=litellm_server.__name__):
        derived = LiteLLMServer(path).derived_config()
    assert derived["general_settings"] == {
        "master_key": "os.environ/KEY",
        "forward_client_headers_to_llm_api": True,
    }
    assert derived["include"] == [str(tmp_path / "models.yaml"), "/etc/abs.yaml"]
    assert "forward_client_headers_to_llm_api" in caplog.text
    assert path.read_bytes() == original


# -- refusals before anything starts ---------------------------------------------------------


@pytest.mark.parametrize("master_key", [None, "sk-1234", " sk-1234 ", ""])
def test_weak_or_missing_master_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_spawn: Spawn, master_key: str | None
) -> None:
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    path = write_config(tmp_path, "http://127.0.0.1:9", master_key=master_key)
    original = path.read_bytes()
    launcher = LiteLLMServer(path, port=free_port(), spawn=no_spawn)
    with pytest.raises(LiteLLMServerError, match="allow_weak_master_key=True"):
        launcher.start()
    assert launcher.pid is None
    assert path.read_bytes() == original


def test_missing_master_key_accepted_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[dict[str, str]] = []

    class Spawned(Exception):
        pass

    def capture(*args: Any, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
        spawned.append(env)
        raise Spawned

    monkeypatch.setenv("LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY", "true")
    path = write_config(tmp_path, "http://127.0.0.1:9", master_key=None)
    launcher = LiteLLMServer(
        path, port=free_port(), env={"LITELLM_MASTER_KEY": MASTER_KEY}, spawn=capture
    )
    with pytest.raises(Spawned):
        launcher.start()
    (env,) = spawned
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS"] == "True"
    assert env["LITELLM_MASTER_KEY"] == MASTER_KEY
    # A strong key from the environment needs no opt-in, and an inherited one is dropped.
    assert "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY" not in env
    assert launcher.derived_config_path is None  # cleaned up after the failed spawn


def test_port_in_use_is_refused(tmp_path: Path, no_spawn: Spawn) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LiteLLMServerError, match=f"port {port} .*already in use"):
            LiteLLMServer(path, port=port, spawn=no_spawn).start()


def test_invalid_yaml_is_refused(tmp_path: Path, no_spawn: Spawn) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("model_list: [\n  - broken: : :\n")
    original = path.read_bytes()
    with pytest.raises(LiteLLMServerError, match="not valid YAML"):
        LiteLLMServer(path, port=free_port(), spawn=no_spawn).start()
    assert path.read_bytes() == original


# -- real starts that are not the shared server ----------------------------------------------


@pytest.mark.slow
def test_weak_master_key_accepted_with_opt_in(
    tmp_path: Path, upstream: tuple[FakeUpstream, str], caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(tmp_path, upstream[1], master_key="sk-1234")
    launcher = LiteLLMServer(
        path, port=free_port(), log_path=tmp_path / "litellm.log", allow_weak_master_key=True
    )
    with caplog.at_level(logging.WARNING, logger=litellm_server.__name__), launcher:
        pid = launcher.pid
        derived = launcher.derived_config_path
        assert pid is not None and derived is not None
        assert httpx.get(f"{launcher.url}/health/liveliness", timeout=5).status_code == 200
    assert "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY" in caplog.text
    # stop() took the whole process group down and removed the derived copy.
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert launcher.pid is None and not derived.exists()


@pytest.mark.slow
def test_server_that_fails_to_start_reports_exit_code_and_log(
    tmp_path: Path, upstream: tuple[FakeUpstream, str]
) -> None:
    # Passes the launcher's check (the server resolves os.environ/ itself), but the variable
    # is unset, so the server refuses to start once it has loaded the config.
    path = write_config(tmp_path, upstream[1], master_key="os.environ/MEMORY_PROXY_TEST_UNSET_KEY")
    original = path.read_bytes()
    # The server exits by itself within seconds; the deadline only bounds a hang, and a
    # busy machine (a parallel test run) can take a minute to import litellm.
    launcher = LiteLLMServer(
        path, port=free_port(), log_path=tmp_path / "litellm.log", ready_timeout=240
    )
    with pytest.raises(LiteLLMServerError) as caught:
        launcher.start()
    message = str(caught.value)
    assert "exited during start-up with exit code" in message
    assert "refused to start" in message  # a line from the server's own log
    assert str(path) in message
    assert launcher.pid is None
    assert path.read_bytes() == original


def test_start_timeout_kills_the_server(tmp_path: Path) -> None:
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = real_popen(*args, **kwargs)
        started.append(process)
        return process

    path = write_config(tmp_path, "http://127.0.0.1:9")
    launcher = LiteLLMServer(path, port=free_port(), ready_timeout=0.5, spawn=recording_popen)
    began = time.monotonic()
    with pytest.raises(LiteLLMServerError, match="not ready .* within"):
        launcher.start()
    (process,) = started
    assert process.poll() is not None
    assert time.monotonic() - began < 10
    assert launcher.derived_config_path is None
