"""Chat Completions to an openai-provider model, as a pass-through over the shared session.

The client already speaks the provider's API, so ``litellm.acompletion`` would only turn
the reply into pydantic objects and back (measured with litellm 1.106.12: about 5 ms of
CPU a call and 0.3 ms per stream chunk) and rewrite it on the way. Instead the client's body goes to
``{api_base}/chat/completions`` as written, with the deployment's model id, key and
headers, and the reply's bytes come back unchanged, as ``anthropic_upstream`` does for
Messages. A deployment whose ``litellm_params`` hold anything but Chat Completions request
parameters (litellm-only settings such as ``organization`` or ``rpm``) is left to litellm,
which knows what they mean.
"""

from __future__ import annotations

from memory_proxy.client_body import ClientBody
from memory_proxy.config import Deployment
from memory_proxy.model_table import Route
from memory_proxy.relay import RelayRequest

__all__ = ["OPENAI_BODY_PARAMS", "is_passthrough", "openai_chat_request"]

DEFAULT_BASE = "https://api.openai.com/v1"

# Deployment params that are Chat Completions request fields: sent as body defaults,
# the client's own values winning (as on LiteLLM).
OPENAI_BODY_PARAMS = frozenset(
    {
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "n",
        "parallel_tool_calls",
        "presence_penalty",
        "reasoning_effort",
        "response_format",
        "seed",
        "service_tier",
        "stop",
        "store",
        "temperature",
        "top_logprobs",
        "top_p",
        "user",
    }
)


def is_passthrough(deployment: Deployment) -> bool:
    """Whether chat calls to ``deployment`` can skip litellm."""
    return deployment.provider == "openai" and set(deployment.call_params()) <= OPENAI_BODY_PARAMS


def openai_chat_request(route: Route, body: ClientBody, headers: dict[str, str]) -> RelayRequest:
    deployment = route.deployment
    sent = {**headers, "content-type": "application/json"}
    if deployment.api_key:
        sent["authorization"] = f"Bearer {deployment.api_key}"
    content = body.for_upstream(route.upstream_model_id, deployment.call_params())
    base = (deployment.api_base or DEFAULT_BASE).rstrip("/")
    return RelayRequest(base + "/chat/completions", sent, content)
