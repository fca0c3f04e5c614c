"""``GET /v1/models``: the served model ids, in the shape the client's family expects. Pure.

Claude Code discovers models with ``GET /v1/models?limit=1000``, one credential header
(``x-api-key`` or ``Authorization: Bearer``), a 3 s timeout and no redirects; it keeps
ids that start with ``claude`` or ``anthropic`` and shows ``display_name``. So a request
that carries ``anthropic-version`` or ``x-api-key`` gets Anthropic's list shape (``type``,
``display_name``, ``created_at``; ``has_more``, ``first_id``, ``last_id``; paged by
``limit``, ``after_id``, ``before_id``), any other OpenAI's (``object: list``).

A wildcard route name (``claude-*``) is a pattern, not a model: it is never listed.
Instead the concrete ids configured for it (``memory_proxy.wildcard_models``) are, each
only if the route really serves it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from memory_proxy.errors import InvalidRequest
from memory_proxy.model_table import ModelTable

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "ServedModel",
    "models_body",
    "served_models",
    "wants_anthropic_shape",
]

# Anthropic's defaults for the endpoint.
DEFAULT_PAGE = 20
MAX_PAGE = 1000
# No release date is known for a configured alias: the epoch, stated as such.
CREATED_AT = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class ServedModel:
    id: str
    provider: str


def served_models(
    table: ModelTable, wildcard_models: Mapping[str, Sequence[str]]
) -> tuple[ServedModel, ...]:
    """Every concrete id the table serves and the config names, in config order, once."""
    seen: dict[str, ServedModel] = {}
    for name in table.names:
        ids = wildcard_models.get(name, ()) if "*" in name else (name,)
        for model_id in ids:
            route = table.resolve(model_id)
            if route is not None and model_id not in seen:
                seen[model_id] = ServedModel(model_id, route.provider)
    return tuple(seen.values())


def wants_anthropic_shape(headers: Mapping[str, str]) -> bool:
    return "anthropic-version" in headers or "x-api-key" in headers


def models_body(
    models: Sequence[ServedModel], query: Mapping[str, str], *, anthropic: bool
) -> dict[str, Any]:
    if not anthropic:
        return {
            "object": "list",
            "data": [
                {"id": m.id, "object": "model", "created": 0, "owned_by": m.provider}
                for m in models
            ],
        }
    page, has_more = _page(models, query)
    return {
        "data": [
            {"type": "model", "id": m.id, "display_name": m.id, "created_at": CREATED_AT}
            for m in page
        ],
        "has_more": has_more,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
    }


def _page(
    models: Sequence[ServedModel], query: Mapping[str, str]
) -> tuple[Sequence[ServedModel], bool]:
    limit = _limit(query.get("limit"))
    ids = [m.id for m in models]
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None and before is not None:
        raise InvalidRequest("after_id and before_id cannot be used together")
    if before is not None:
        # The page that ends just before ``before_id``.
        end = _index(ids, before, "before_id")
        start = max(0, end - limit)
        return models[start:end], start > 0
    start = _index(ids, after, "after_id") + 1 if after is not None else 0
    page = models[start : start + limit]
    return page, start + limit < len(models)


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidRequest(f"limit: expected an integer from 1 to {MAX_PAGE}, got {raw!r}")
    return int(raw)


def _index(ids: list[str], model_id: str, name: str) -> int:
    try:
        return ids.index(model_id)
    except ValueError:
        raise InvalidRequest(f"{name}: {model_id!r} is not a listed model id") from None
