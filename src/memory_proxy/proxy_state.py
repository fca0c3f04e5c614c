"""What every request handler of the SDK proxy shares, built once per app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memory_proxy.config import ProxyConfig
from memory_proxy.errors import ModelNotFound
from memory_proxy.memory_router import MemoryRouter
from memory_proxy.model_table import ModelTable, Route
from memory_proxy.retries import RetryPolicy
from memory_proxy.session import UpstreamSession
from memory_proxy.tracing import NO_TRACING, Tracing

__all__ = ["ProxyState"]


@dataclass
class ProxyState:
    config: ProxyConfig
    models: ModelTable
    router: MemoryRouter
    retry: RetryPolicy
    session: UpstreamSession | None = None  # opened by the lifespan
    tracing: Tracing = NO_TRACING

    @classmethod
    def from_config(cls, config: ProxyConfig, tracing: Tracing = NO_TRACING) -> ProxyState:
        return cls(
            config=config,
            tracing=tracing,
            models=ModelTable(config.deployments),
            router=MemoryRouter(
                config.user_id_mappings, agent_format=config.options.agent_conversation_format
            ),
            retry=RetryPolicy(
                retries=config.litellm.num_retries,
                backoff_seconds=config.options.retry_backoff_seconds,
                backoff_max_seconds=config.options.retry_backoff_max_seconds,
            ),
        )

    def route(self, model: Any) -> Route:
        route = self.models.resolve(model) if isinstance(model, str) else None
        if route is None:
            raise ModelNotFound(model, self.models.names)
        return route

    @property
    def upstream(self) -> UpstreamSession:
        if self.session is None:
            raise RuntimeError("the upstream session is opened by the app's lifespan")
        return self.session
