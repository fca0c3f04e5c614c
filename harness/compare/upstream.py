"""Upstream parity: did both targets send the provider the same calls? (pure)

Each target's captured sandbox requests (``pair.upstream[target]``, dicts with ``path``,
``headers``, ``credentials`` (name -> ``{present, fingerprint or sha256}``) and ``body``)
are compared call by call, in order: the number of calls (the legacy proxy once sent a
stream upstream twice), the path, the memory headers ``x-sm-user-id`` and
``x-sm-conversation-id``, ``anthropic-beta`` (as a set of flags), the presence of the
Supermemory key on both, and every body parameter but the model id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.compare.diff import MISSING, Difference
from harness.observation import CapturedPair

__all__ = ["EQUAL_HEADERS", "PRESENT_CREDENTIALS", "upstream_parity"]

EQUAL_HEADERS = ("x-sm-user-id", "x-sm-conversation-id")
PRESENT_CREDENTIALS = ("x-supermemory-api-key",)
# The SDK sends the upstream id, the LiteLLM server too but maybe spelled from the alias.
_BODY_KEYS_ASIDE = frozenset({"model"})


def upstream_parity(
    pair: CapturedPair, body_keys_aside: Iterable[str] = _BODY_KEYS_ASIDE
) -> list[Difference]:
    """Differences between what the SDK and the legacy target sent upstream (the SDK's
    values as ``primary``, whichever answered the client).

    Empty when either target's calls were not captured.
    """
    sdk, legacy = pair.sdk, pair.legacy
    sdk_target = sdk.target if sdk is not None else "sdk"
    legacy_target = legacy.target if legacy is not None else "legacy"
    if sdk_target not in pair.upstream or legacy_target not in pair.upstream:
        return []
    sdk_calls = pair.upstream[sdk_target]
    legacy_calls = pair.upstream[legacy_target]
    aside = frozenset(body_keys_aside)
    out: list[Difference] = []
    if len(sdk_calls) != len(legacy_calls):
        out.append(_difference("upstream.calls", len(sdk_calls), len(legacy_calls)))
    for index, (a, b) in enumerate(zip(sdk_calls, legacy_calls, strict=False)):
        out.extend(_call_differences(f"upstream[{index}]", a, b, aside))
    return out


def _call_differences(
    prefix: str, a: Mapping[str, Any], b: Mapping[str, Any], aside: frozenset[str]
) -> list[Difference]:
    out = []
    if a.get("path") != b.get("path"):
        out.append(_difference(f"{prefix}.path", a.get("path"), b.get("path")))
    a_headers, b_headers = _lower(a.get("headers")), _lower(b.get("headers"))
    for name in EQUAL_HEADERS:
        if a_headers.get(name) != b_headers.get(name):
            out.append(
                _difference(
                    f"{prefix}.headers.{name}",
                    a_headers.get(name, MISSING),
                    b_headers.get(name, MISSING),
                )
            )
    a_beta, b_beta = (
        _flags(a_headers.get("anthropic-beta")),
        _flags(b_headers.get("anthropic-beta")),
    )
    if a_beta != b_beta:
        out.append(
            _difference(
                f"{prefix}.headers.anthropic-beta",
                a_headers.get("anthropic-beta", MISSING),
                b_headers.get("anthropic-beta", MISSING),
            )
        )
    for name in PRESENT_CREDENTIALS:
        a_present, b_present = _present(a, name), _present(b, name)
        if not (a_present and b_present):
            out.append(_difference(f"{prefix}.credentials.{name}.present", a_present, b_present))
    a_body, b_body = _defaults_dropped(a.get("body")), _defaults_dropped(b.get("body"))
    if isinstance(a_body, dict) and isinstance(b_body, dict):
        for key in [*a_body, *(k for k in b_body if k not in a_body)]:
            if key in aside:
                continue
            if a_body.get(key, MISSING) != b_body.get(key, MISSING):
                out.append(
                    _difference(
                        f"{prefix}.body.{key}", a_body.get(key, MISSING), b_body.get(key, MISSING)
                    )
                )
    elif a_body != b_body:
        out.append(_difference(f"{prefix}.body", a_body, b_body))
    return out


# Parameters whose explicit default means the same to the API as leaving them out.
_API_DEFAULTS = {"stream": False}


def _defaults_dropped(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    return {k: v for k, v in body.items() if not (k in _API_DEFAULTS and v == _API_DEFAULTS[k])}


def _difference(path: str, primary: Any, candidate: Any) -> Difference:
    return Difference("upstream", path, primary, candidate)


def _lower(headers: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in headers.items()} if isinstance(headers, dict) else {}


def _flags(value: Any) -> frozenset[str]:
    if not isinstance(value, str):
        return frozenset()
    return frozenset(flag.strip() for flag in value.split(",") if flag.strip())


def _present(call: Mapping[str, Any], name: str) -> bool:
    credentials = _lower(call.get("credentials"))
    if name in credentials and isinstance(credentials[name], dict):
        return bool(credentials[name].get("present"))
    return bool(_lower(call.get("headers")).get(name))
