"""Anthropic's Messages API called directly over the shared session: a true pass-through.

For anthropic-provider models the proxy sends the client's body on as written (only
``model`` becomes the deployment's id) and relays the reply's bytes unchanged.
Not ``litellm.anthropic_messages``: litellm 1.106.12 rewrites Messages requests by its
own model table: ``thinking: {type: enabled}`` becomes ``adaptive`` for
the Opus 5 family, ``budget_tokens`` is clamped and ``display`` dropped for Sonnet 4.5,
``output_config`` is removed for models it believes lack it, and ``anthropic-beta``
values are reordered. Claude Code sends what its model accepts; a memory proxy must not
second-guess it. The same cookie jar and connection pool carry these calls (``relay``).
"""

from __future__ import annotations

from memory_proxy.client_body import ClientBody
from memory_proxy.model_table import Route
from memory_proxy.relay import RelayRequest

__all__ = ["anthropic_request", "anthropic_url"]

DEFAULT_BASE = "https://api.anthropic.com"


def anthropic_url(route: Route, suffix: str = "/v1/messages", query: str = "") -> str:
    base = route.deployment.api_base or DEFAULT_BASE
    return base.rstrip("/") + suffix + (f"?{query}" if query else "")


def anthropic_request(
    route: Route,
    body: ClientBody,
    headers: dict[str, str],
    suffix: str = "/v1/messages",
    query: str = "",
) -> RelayRequest:
    """The provider call for ``body``: the deployment's model id, key and headers."""
    sent = {**headers, "content-type": "application/json"}
    if route.deployment.api_key:
        sent["x-api-key"] = route.deployment.api_key
    content = body.for_upstream(route.upstream_model_id)
    return RelayRequest(anthropic_url(route, suffix, query), sent, content)
