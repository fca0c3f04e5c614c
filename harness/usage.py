"""The tokens an answer reports using, read from its ``usage`` (pure).

Live mirroring is billed by the provider; its budget (``shadow.live_budget_tokens``) and
the report's line on the mirror's spend both count what the mirror side's answers say
they used, in either API format, streamed or not.
"""

from __future__ import annotations

from harness.observation import Observation
from harness.sse import assemble
from memory_proxy.api_formats import FormatName

__all__ = ["usage_tokens"]

# Input and output, by the names the two formats give them; cache counts are left out
# (Anthropic's are already part of what the provider reports as input).
_COUNTED = ("input_tokens", "output_tokens", "prompt_tokens", "completion_tokens")


def usage_tokens(answer: Observation | None, fmt: FormatName) -> int:
    """Input plus output tokens ``answer`` reports; 0 when it reports none."""
    if answer is None:
        return 0
    message = assemble(list(answer.events), fmt) if answer.events else answer.body
    usage = message.get("usage") if isinstance(message, dict) else None
    if not isinstance(usage, dict):
        return 0
    return sum(
        v
        for k, v in usage.items()
        if k in _COUNTED and isinstance(v, int) and not isinstance(v, bool)
    )
