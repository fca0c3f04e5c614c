"""The differential translation tests' fixtures (``provider``, ``proxy``, ``oracle``)."""

from tests.memory_proxy.differential_fixtures import oracle, provider, proxy

__all__ = ["oracle", "provider", "proxy"]
