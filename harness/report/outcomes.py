"""Which proxy failed outright: the direction of an outcome difference (pure).

A pair where one proxy answered a success and the other failed outright says who served
the client, not how two answers differ: a chat completion compared field by field with a
"No deployments available ... in cooldown" 429 only restates, in every category at once,
that one side failed. So such pairs are classified by direction before any comparison:

===============  ===============  ============================================
SDK              legacy           direction
===============  ===============  ============================================
success          failed outright  ``SDK_BETTER``: set apart, never a regression
failed outright  success          ``SDK_WORSE``: compared as always, shown first
anything else                     ``None``: compared as always
===============  ===============  ============================================

*Success* is a 2xx without a transport error whose answer checks out in substance
(:mod:`harness.answer_check`: a message with content, a stream that ends). *Failed
outright* is 5xx, 429, 408, or no complete answer (a transport error). Other client
errors (4xx) are answers, not outages: SDK 404 against legacy 400 for an unknown model
stays an error-handling difference, and so does SDK 400 against legacy 500.
"""

from __future__ import annotations

from enum import StrEnum

from harness.answer_check import check_json, check_stream
from harness.compare.normalize import ENDPOINTS
from harness.observation import CapturedPair, Observation

__all__ = [
    "OUTAGE_STATUSES",
    "Direction",
    "direction",
    "failed_outright",
    "outcome_label",
    "succeeded",
]

OUTAGE_STATUSES = frozenset({408, 429})  # below 500, still "could not serve you now"


class Direction(StrEnum):
    SDK_BETTER = "sdk-better"
    SDK_WORSE = "sdk-worse"

    @property
    def label(self) -> str:
        """What a reader is told: ``"legacy failed where the SDK succeeded"``."""
        if self is Direction.SDK_BETTER:
            return "legacy failed where the SDK succeeded"
        return "SDK failed where legacy succeeded"


def failed_outright(observation: Observation) -> bool:
    """5xx, 429, 408, or no complete answer (a transport error, before or after headers)."""
    status = observation.status
    return (
        observation.error is not None
        or status is None
        or status >= 500
        or status in OUTAGE_STATUSES
    )


def succeeded(observation: Observation, endpoint: str) -> bool:
    """A 2xx that arrived whole and checks out in substance.

    A capture cut at the store's cap cannot be checked, so it is not taken as a success:
    such a pair is compared as always rather than set apart unseen.
    """
    status = observation.status
    if status is None or not 200 <= status < 300 or observation.error is not None:
        return False
    if observation.truncated:
        return False
    if observation.events is not None:
        shape = ENDPOINTS.get(endpoint)
        fmt = shape.stream_format if shape is not None else None
        return check_stream(fmt or "openai", observation.events).ok
    return check_json(endpoint, observation.body).ok


def direction(pair: CapturedPair) -> Direction | None:
    """SDK_BETTER, SDK_WORSE or None (same outcome, not an outright failure, not mirrored)."""
    sdk, legacy = pair.sdk, pair.legacy
    if sdk is None or legacy is None:
        return None
    endpoint = pair.request.endpoint
    # The status tests first: the substance check runs only on the few pairs that need it.
    if failed_outright(legacy) and not failed_outright(sdk) and succeeded(sdk, endpoint):
        return Direction.SDK_BETTER
    if failed_outright(sdk) and not failed_outright(legacy) and succeeded(legacy, endpoint):
        return Direction.SDK_WORSE
    return None


def outcome_label(observation: Observation) -> str:
    """How a side failed, for the counts: ``"504"``, ``"no answer: ConnectTimeout"``."""
    if observation.status is None:
        return f"no answer: {observation.error}" if observation.error else "no answer"
    if observation.error is not None:
        return f"{observation.status}, then {observation.error}"
    return str(observation.status)
