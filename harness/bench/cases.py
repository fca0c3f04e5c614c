"""What the bench sends: the cases (two API formats, stream or not, passed through or
translated) as data.

A proxy gets the client's request (client model name, the proxy's master key); the
direct baseline gets what the proxies send the provider for it (the deployment's URL,
model id and key, from the same config), so the sandbox does the same work either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from memory_proxy.api_formats import FormatName
from memory_proxy.config import ProxyConfig
from memory_proxy.model_table import ModelTable

__all__ = [
    "CASES",
    "DEFAULT_CASES",
    "SAME_FORMAT",
    "TRANSLATED",
    "BenchCase",
    "HttpCall",
    "parse_cases",
]

PROMPT = "Hello there, benchmark: a short answer please."


@dataclass(frozen=True)
class HttpCall:
    """One request, fully spelled out for the load generator."""

    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool
    api: FormatName


@dataclass(frozen=True)
class BenchCase:
    name: str
    api: FormatName
    stream: bool
    model: str  # the client-facing model name
    path: str  # on a proxy
    # The LiteLLM server answers /v1/messages for an OpenAI model through the Responses
    # API (/v1/responses), which the sandbox does not serve: 404, then its router's
    # cooldown (429) for every later call. Such a case is not sent to it (nor through it).
    litellm_server_serves: bool = True

    def body(self, model: str) -> dict[str, object]:
        body: dict[str, object] = {
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 64,
        }
        if self.stream:
            body["stream"] = True
        return body

    def proxy_call(self, base_url: str, master_key: str | None) -> HttpCall:
        headers = {"content-type": "application/json"}
        if master_key:
            headers["x-api-key"] = master_key
        if self.api == "anthropic":
            headers["anthropic-version"] = "2023-06-01"
        return HttpCall(
            url=base_url.rstrip("/") + self.path,
            headers=headers,
            body=json.dumps(self.body(self.model)).encode(),
            stream=self.stream,
            api=self.api,
        )

    def direct_call(self, config: ProxyConfig) -> HttpCall:
        """The provider request a proxy makes for this case, sent straight to the sandbox."""
        route = ModelTable(config.deployments).resolve(self.model)
        if route is None:
            raise ValueError(f"{config.path}: no deployment serves model {self.model!r}")
        base = (route.deployment.api_base or "").rstrip("/")
        key = route.deployment.api_key or "unset"
        headers = {"content-type": "application/json", **route.deployment.extra_headers}
        # In the provider's own format, which differs from the client's when the proxy
        # translates (an OpenAI-format request for a Claude model goes out as Messages).
        api: FormatName = "anthropic" if route.deployment.provider == "anthropic" else "openai"
        if api == "anthropic":
            url = base + "/v1/messages"
            headers.update({"x-api-key": key, "anthropic-version": "2023-06-01"})
        else:
            url = base + "/chat/completions"
            headers["authorization"] = f"Bearer {key}"
        return HttpCall(
            url=url,
            headers=headers,
            body=json.dumps(self.body(route.upstream_model_id)).encode(),
            stream=self.stream,
            api=api,
        )


# Each format passed through to a provider of its own format, then the translated cases:
# the ``-claude`` pair asks for a Claude model in the OpenAI format (how the OpenAI SDK and
# JetBrains reach Claude), the ``messages-gpt`` pair for an OpenAI model in the Anthropic
# format. All eight are the default.
CASES: dict[str, BenchCase] = {
    case.name: case
    for case in (
        BenchCase("chat", "openai", False, "gpt-4o", "/v1/chat/completions"),
        BenchCase("chat-stream", "openai", True, "gpt-4o", "/v1/chat/completions"),
        BenchCase("messages", "anthropic", False, "claude-sonnet-4.5", "/v1/messages"),
        BenchCase("messages-stream", "anthropic", True, "claude-sonnet-4.5", "/v1/messages"),
        BenchCase("chat-claude", "openai", False, "claude-sonnet-4.5", "/v1/chat/completions"),
        BenchCase(
            "chat-claude-stream", "openai", True, "claude-sonnet-4.5", "/v1/chat/completions"
        ),
        BenchCase("messages-gpt", "anthropic", False, "gpt-4o", "/v1/messages", False),
        BenchCase("messages-gpt-stream", "anthropic", True, "gpt-4o", "/v1/messages", False),
    )
}
DEFAULT_CASES = tuple(CASES)
# The cases whose client format is not the provider's (the proxy translates them), each
# with its same-format case: the same client format and streaming, passed through.
SAME_FORMAT: dict[str, str] = {
    "chat-claude": "chat",
    "chat-claude-stream": "chat-stream",
    "messages-gpt": "messages",
    "messages-gpt-stream": "messages-stream",
}
TRANSLATED = frozenset(SAME_FORMAT)


def parse_cases(text: str) -> list[BenchCase]:
    """``chat,messages-stream`` -> the cases, in the order given; ValueError on an unknown one."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown or not names:
        raise ValueError(f"unknown case(s) {unknown or text!r}; choose from {', '.join(CASES)}")
    return [CASES[n] for n in dict.fromkeys(names)]
