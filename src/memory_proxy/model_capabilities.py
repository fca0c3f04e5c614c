"""litellm's model-map capability questions, answered once per model and remembered.

Building one translated request, litellm asks its model map the same questions over and
over: for an OpenAI-format request to a Claude model, "does it use adaptive thinking"
twice, "does it take mid-conversation system messages", "does it reason", each answer
a walk through ``get_llm_provider`` and ``get_model_info_helper`` (six of those per
call). That was 0.45 ms of the 0.98 ms the whole translation cost, request and answer
(litellm 1.106.12, measured with the bench's request and the sandbox's answer). The
answers depend only on the model id, the provider, the capability's key and litellm's
model map, so :func:`install` memoizes the two functions every such question goes
through:

- ``AnthropicModelInfo._supports_model_capability(model, key, provider)`` (the Claude
  questions; ``AnthropicConfig`` inherits it, and litellm calls it by class name);
- ``litellm.utils.supports_factory(model, provider, key)`` (``supports_reasoning``,
  ``supports_mid_conversation_system`` and the other ``supports_*`` of ``litellm.utils``
  call it by its module-level name).

The memo is keyed on litellm's own model-map generation
(``get_model_cost_mutation_generation``), which ``register_model`` and a reload of the
map bump, the same signal that clears litellm's own lru caches, so a changed map is
asked again. It is bounded: a wildcard route lets clients name any model id.

litellm has no switch for this, and its call sites name these functions, so the memo
replaces the two attributes, once per process. Both are litellm internals:
``tests/memory_proxy/test_model_capabilities.py`` pins that they exist, are what the
call sites use, and that the memo answers as they do.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import litellm.utils
from litellm.llms.anthropic.common_utils import AnthropicModelInfo

__all__ = ["MEMO_SIZE", "install", "installed"]

# Distinct (model, provider, key) answers kept; LRU past that.
MEMO_SIZE = 4096

_generation: Callable[[], int] = litellm.utils.get_model_cost_mutation_generation


def _memoized(function: Callable[..., bool]) -> Callable[..., bool]:
    @functools.lru_cache(maxsize=MEMO_SIZE)
    def answer(first: Any, second: Any, third: Any, generation: int) -> bool:
        return function(first, second, third)

    names = tuple(inspect.signature(function).parameters)

    @functools.wraps(function)
    def lookup(*args: Any, **kwargs: Any) -> bool:
        key = _three(names, args, kwargs)
        try:
            hash(key)
        except TypeError:  # an argument litellm never passes today: ask, do not remember
            return function(*args, **kwargs)
        return answer(*key, _generation())

    lookup.__wrapped_by_memory_proxy__ = function  # type: ignore[attr-defined]
    lookup.cache_info = answer.cache_info  # type: ignore[attr-defined]
    return lookup


def _three(
    names: tuple[str, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    # The call sites pass the three arguments by position or by name: one key for both.
    if not kwargs and len(args) == 3:
        return args
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    return tuple(bound.get(name) for name in names)


_SUPPORTS_MODEL_CAPABILITY: Callable[..., bool] = AnthropicModelInfo._supports_model_capability
_SUPPORTS_FACTORY: Callable[..., bool] = litellm.utils.supports_factory


def installed() -> bool:
    """Whether this process's litellm asks its model map through the memo."""
    return hasattr(litellm.utils.supports_factory, "__wrapped_by_memory_proxy__") and hasattr(
        AnthropicModelInfo.__dict__["_supports_model_capability"].__func__,
        "__wrapped_by_memory_proxy__",
    )


def install() -> None:
    """Answer litellm's capability questions from the memo in this process (idempotent)."""
    if installed():
        return
    AnthropicModelInfo._supports_model_capability = staticmethod(  # type: ignore[method-assign]
        _memoized(_SUPPORTS_MODEL_CAPABILITY)
    )
    litellm.utils.supports_factory = _memoized(_SUPPORTS_FACTORY)
