"""The environment that keeps litellm off the network, in this process and its children.

At import, litellm fetches its model cost map over the network (a 5 s timeout, then
retries in the background: an import took ~9 s on a network that hangs); on first use it
fetches its Anthropic beta-header list. Both are bundled with the package, and each of
these variables makes litellm use its bundled copy. Every process that imports litellm
needs them: this one (:func:`keep_litellm_offline`, before the import) and every child
that is started (:data:`LITELLM_OFFLINE_ENV` in its environment), the LiteLLM server
included.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["LITELLM_OFFLINE_ENV", "keep_litellm_offline"]

LITELLM_OFFLINE_ENV: dict[str, str] = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
}


def keep_litellm_offline(environ: MutableMapping[str, str] | None = None) -> None:
    """Set the variables in ``environ`` (this process's by default) unless already set."""
    target = os.environ if environ is None else environ
    for name, value in LITELLM_OFFLINE_ENV.items():
        target.setdefault(name, value)
