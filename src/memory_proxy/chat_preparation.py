"""A Chat Completions request prepared for a provider, as ``litellm.completion`` does it.

``litellm.completion`` checks and fixes the messages, tools, ``tool_choice``, ``stop``
and ``thinking``, turns ``developer`` messages into ``system`` ones where the provider
needs it, and maps the OpenAI parameters to the provider's (``get_optional_params``:
dropping the unsupported ones when ``drop_params`` is on, 400 otherwise). The translated
paths call the same litellm functions in the same order, and nothing else of
``completion``: no logging object, callbacks, cost or routing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import litellm
from litellm.litellm_core_utils.prompt_templates.common_utils import get_completion_messages
from litellm.types.utils import LlmProviders
from litellm.utils import (
    ProviderConfigManager,
    get_non_default_completion_params,
    get_optional_params,
    validate_and_fix_openai_messages,
    validate_and_fix_openai_tools,
    validate_and_fix_thinking_param,
    validate_chat_completion_tool_choice,
    validate_openai_optional_params,
)

__all__ = ["PreparedChat", "prepare_chat"]


@dataclass(frozen=True)
class PreparedChat:
    """What a provider config's ``transform_request`` takes, and how to read the answer."""

    model: str
    messages: list[Any]
    optional_params: dict[str, Any]
    stream: bool
    include_usage: bool


def prepare_chat(
    model: str, provider: str, body: Mapping[str, Any], *, drop_params: bool
) -> PreparedChat:
    """``body`` (Chat Completions parameters, ``model`` aside) for ``provider``'s ``model``;
    litellm's validation errors (ValueErrors) are the client's."""
    params = dict(body)
    params.pop("model", None)
    stream = bool(params.get("stream"))
    stream_options = params.get("stream_options")
    messages = validate_and_fix_openai_messages(messages=params.pop("messages"))
    tools = validate_and_fix_openai_tools(tools=params.pop("tools", None))
    tool_choice = validate_chat_completion_tool_choice(
        tool_choice=params.pop("tool_choice", None), model=model
    )
    stop = validate_openai_optional_params(stop=params.pop("stop", None))
    thinking = validate_and_fix_thinking_param(thinking=params.pop("thinking", None))
    messages = get_completion_messages(
        messages=messages,
        ensure_alternating_roles=False,
        user_continue_message=None,
        assistant_continue_message=None,
    )
    config = ProviderConfigManager.get_provider_chat_config(
        model=model, provider=LlmProviders(provider)
    )
    if config is not None:
        messages = config.translate_developer_role_to_system_role(messages=messages)
    known = {k: params.pop(k) for k in list(params) if k in litellm.OPENAI_CHAT_COMPLETION_PARAMS}
    extra: dict[str, Any] = get_non_default_completion_params(kwargs=params)
    optional = get_optional_params(
        model=model,
        custom_llm_provider=provider,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        stop=stop,
        thinking=thinking,
        drop_params=drop_params,
        **known,
        **extra,
    )
    include_usage = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))
    return PreparedChat(model, messages, optional, stream, include_usage)
