"""Map a client's model id to a deployment, with LiteLLM's wildcard semantics.

Exact ``model_name`` entries win; otherwise the first wildcard entry (in file order)
whose pattern matches the whole id is used. As in LiteLLM's pattern router, each ``*``
of ``litellm_params.model`` is replaced, in order, by the text the ``*`` of
``model_name`` matched: ``claude-*`` -> ``anthropic/claude-*`` turns ``claude-opus-5-5``
into ``anthropic/claude-opus-5-5``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from memory_proxy.config import Deployment

__all__ = ["ModelTable", "Route"]


@dataclass(frozen=True)
class Route:
    """Where one client model id goes: the deployment and the litellm model to call."""

    deployment: Deployment
    upstream_model: str

    @property
    def provider(self) -> str:
        return self.deployment.provider

    @property
    def upstream_model_id(self) -> str:
        """The model id without the provider prefix, as the provider's API names it."""
        return self.upstream_model.split("/", 1)[1]


class ModelTable:
    def __init__(self, deployments: Iterable[Deployment]) -> None:
        self._exact: dict[str, Deployment] = {}
        self._wildcards: list[tuple[re.Pattern[str], Deployment]] = []
        self._names: list[str] = []
        for deployment in deployments:
            self._names.append(deployment.model_name)
            if deployment.is_wildcard:
                self._wildcards.append((_wildcard_regex(deployment.model_name), deployment))
            else:
                self._exact[deployment.model_name] = deployment

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def resolve(self, model_id: str) -> Route | None:
        exact = self._exact.get(model_id)
        if exact is not None:
            return Route(exact, exact.model)
        for regex, deployment in self._wildcards:
            match = regex.fullmatch(model_id)
            if match is not None:
                return Route(deployment, _fill_wildcards(deployment.model, match.groups()))
        return None


def _wildcard_regex(name: str) -> re.Pattern[str]:
    return re.compile("(.*?)".join(re.escape(part) for part in name.split("*")) + "$", re.DOTALL)


def _fill_wildcards(model: str, segments: tuple[str, ...]) -> str:
    for segment in segments[: model.count("*")]:
        model = model.replace("*", segment, 1)
    return model
