"""``harness demo``: a guided tour of the SDK memory proxy, offline and with no keys.

It starts the sandbox provider and the SDK proxy as real processes on loopback, sends
OpenAI- and Anthropic-format requests with the official SDKs, shows what reached the
"provider", and stops everything it started.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import openai

from harness.sandbox_config import SANDBOX_CONFIG, write_sandbox_config
from harness.sandbox_control import SandboxControl
from harness.stack import Stack
from memory_proxy.config import load_config

__all__ = ["run_demo"]


def _say(text: str = "") -> None:
    print(text, flush=True)


def _step(number: int, text: str) -> None:
    _say(f"\n[{number}] {text}")


def _short(text: str, limit: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_demo(reports: Path = Path("reports")) -> int:
    run_dir = reports / "demo" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    _say("memory-proxy demo: the SDK memory proxy on an offline sandbox provider")
    _say(f"Run folder (logs, derived config): {run_dir}")
    started = time.perf_counter()
    with Stack(run_dir) as stack:
        _step(1, "Sandbox provider: stands in for Supermemory's router, Anthropic and OpenAI")
        sandbox = stack.sandbox()
        _say(f"    listening on {sandbox.url} (ready in {sandbox.startup_seconds:.1f} s)")

        config_path = write_sandbox_config(sandbox.url, run_dir / "sandbox.yaml")
        config = load_config(config_path)
        key = config.general.master_key or ""
        _step(2, "SDK memory proxy: litellm in-process, one cookie-keeping HTTP session")
        proxy = stack.sdk_proxy(config_path)
        _say(f"    listening on {proxy.url} (ready in {proxy.startup_seconds:.1f} s)")
        _say(f"    models: {', '.join(config.model_names)}")

        control = SandboxControl(sandbox.url)
        oai = openai.OpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)
        ant = anthropic.Anthropic(base_url=proxy.url, api_key=key, max_retries=0)

        _step(3, "OpenAI format, non-stream (openai SDK -> POST /v1/chat/completions, gpt-4o)")
        reply = oai.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Hello from the demo!"}]
        )
        _say(f"    reply: {_short(reply.choices[0].message.content or '')}")
        _say(f"    finish_reason={reply.choices[0].finish_reason}, usage={_usage(reply.usage)}")

        _step(4, "OpenAI format, streamed (stream=True, claude-sonnet-4.5 via litellm)")
        chunks = list(
            oai.chat.completions.create(
                model="claude-sonnet-4.5",
                messages=[{"role": "user", "content": "Stream a short answer, please."}],
                stream=True,
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        _say(f"    {len(chunks)} chunks: {_short(text)}")

        _step(5, "Anthropic format, streamed (anthropic SDK -> POST /v1/messages, as Claude Code)")
        with ant.messages.stream(
            model="claude-opus-5-5",
            max_tokens=256,
            messages=[{"role": "user", "content": "What does a memory proxy do?"}],
            extra_headers={"x-claude-code-session-id": "demo-session-1"},
        ) as stream:
            events = sum(1 for _ in stream)
            final = stream.get_final_message()
        first = final.content[0]
        _say(f"    {events} events, stop_reason={final.stop_reason}")
        _say(f"    reply: {_short(first.text if first.type == 'text' else str(first))}")

        _step(6, "What reached the provider (captured by the sandbox)")
        for captured in control.api_requests():
            headers = captured["headers"]
            _say(
                f"    {captured['method']} {captured['path']}  "
                f"x-sm-user-id={headers.get('x-sm-user-id')}  "
                f"conversation={headers.get('x-sm-conversation-id', '-')}  "
                f"cookie sent back={'yes' if captured['cookie_valid'] else 'no'}"
            )
        control.close()

        _step(7, "Stopping everything this demo started")
        took = stack.stop()
        _say(f"    stopped in {took:.1f} s")
    _say(f"\nLogs: {run_dir / 'sandbox.log'}, {run_dir / 'sdk-proxy.log'}")
    _say(f"Config used: {run_dir / 'sandbox.yaml'} (from {SANDBOX_CONFIG.name})")
    _say(f"Demo finished in {time.perf_counter() - started:.1f} s.")
    return 0


def _usage(usage: Any) -> str:
    if usage is None:
        return "-"
    return f"{usage.prompt_tokens} in / {usage.completion_tokens} out"
