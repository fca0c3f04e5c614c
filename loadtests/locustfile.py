"""The memory proxy's load test. Run it through ``harness load`` (which checks the target,
samples its process and stores the results), or by hand from the repository root::

    LOAD_API_KEY=... locust -f loadtests/locustfile.py --headless -u 50 -r 50 -t 60s \\
        --host http://127.0.0.1:8764

Users (weights ``LOAD_WEIGHT_*``): OpenAI chat, chat stream, Anthropic messages, and
messages stream with tools, each sending corpus requests that should succeed. The
environment variables are listed in :mod:`loadtests.options`.
"""

from __future__ import annotations

from locust import events

from loadtests.distributed import install_distributed
from loadtests.options import LoadOptions
from loadtests.slo import install_slo_listener
from loadtests.users import (
    ChatStreamUser,
    ChatUser,
    MessagesStreamToolsUser,
    MessagesUser,
    options,
)

__all__ = ["ChatStreamUser", "ChatUser", "MessagesStreamToolsUser", "MessagesUser"]

_options: LoadOptions = options()
if not _options.api_key:
    raise SystemExit("loadtests: set LOAD_API_KEY to the target's client key")

install_slo_listener(events, _options)
install_distributed(events, _options)

if _options.profile == "ramp":
    from loadtests.profiles import RampShape  # noqa: F401 - Locust finds the shape here
