"""Upstream parity: did both targets send the provider the same calls? (pure)

Each target's captured provider calls (``pair.upstream[target]``, dicts with ``path``,
``headers``, ``credentials`` (name -> ``{present, fingerprint or sha256}``), ``status``,
``outcome`` and ``body``) are compared call by call, in order, once the retries each
side's recorded status explains are set aside (:func:`answered_calls`): the path, the
memory headers ``x-sm-user-id`` and ``x-sm-conversation-id``, every ``anthropic-*``
header (``anthropic-beta`` as a set of flags), the presence of the Supermemory key on
both (never its value), and the body, leaf by leaf, so a difference is named by its path
(``upstream[0].body.system[0].cache_control``). The model id is compared as a model id
(:func:`~harness.compare.rules.canonical_model`): the LiteLLM server may spell it from
the config alias.

How many calls each side made for the request is :func:`answered_calls`' business and
the report's per-request count gate, not a parity difference.

A regression is a field the SDK side drops or changes. So these are returned as ignored
differences, each with its reason (shown, never a regression):

* a field only the SDK side sent (legacy dropped it, or never sends it);
* a field where the SDK side sent exactly what the client sent and legacy changed it
  (judged where the client's request is in the provider's own format, so the value can
  be looked up at the same path: the body, and the ``anthropic-*`` headers the capture
  keeps);
* a documented deliberate difference between the proxies (:data:`DELIBERATE_UPSTREAM`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from harness.compare.diff import MISSING, Difference
from harness.compare.rules import canonical_model
from harness.observation import CapturedPair

__all__ = [
    "AS_CLIENT_SENT",
    "ONLY_SDK",
    "EQUAL_HEADERS",
    "PRESENT_CREDENTIALS",
    "RETRIED_STATUSES",
    "DELIBERATE_UPSTREAM",
    "answered_calls",
    "credential_present",
    "retryable",
    "upstream_parity",
]

EQUAL_HEADERS = ("x-sm-user-id", "x-sm-conversation-id")
PRESENT_CREDENTIALS = ("x-supermemory-api-key",)
_BODY_KEYS_ASIDE: frozenset[str] = frozenset()
# Differences the proxies make on purpose: (body path, what the SDK side sends, what
# legacy sends) -> why. Matched exactly; anything else that differs is a regression.
DELIBERATE_UPSTREAM: tuple[tuple[str, Any, Any, str], ...] = (
    (
        "stream_options",
        MISSING,
        {"include_usage": True},
        "the LiteLLM server asks an OpenAI stream for a usage chunk for its own spend "
        "tracking; the SDK proxy sends the stream options the client asked for",
    ),
)
# A provider answer a proxy may retry: throttled, overloaded or failed on the provider's
# side (Anthropic's 529 included). A call that got no answer at all (a connection error
# before the first byte: no status) may be retried too.
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})


def retryable(call: Mapping[str, Any]) -> bool:
    """The call's recorded answer explains a retry: a retryable status, or none at all."""
    status = call.get("status")
    if status is None:
        return True
    return isinstance(status, int) and status in RETRIED_STATUSES


def answered_calls(calls: Sequence[Any]) -> list[Mapping[str, Any]]:
    """The calls that answered the request, retries the recorded statuses explain set
    aside: a call whose answer was retryable and that another call followed is the
    retry's cause, not a call of its own. Two calls that both got a final answer (a
    duplicate) both stay."""
    kept = [c for c in calls if isinstance(c, Mapping)]
    return [c for i, c in enumerate(kept) if not (retryable(c) and i + 1 < len(kept))]


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
    sdk_calls = answered_calls(pair.upstream[sdk_target])
    legacy_calls = answered_calls(pair.upstream[legacy_target])
    aside = frozenset(body_keys_aside)
    client = _client_view(pair)
    out: list[Difference] = []
    for index, (a, b) in enumerate(zip(sdk_calls, legacy_calls, strict=False)):
        path = str(a.get("path") or "").rstrip("/")
        # The client's values are comparable with a call in the client's own format only.
        same = client if client is not None and path.endswith(client["path"]) else None
        out.extend(_judged(d, same) for d in _call_differences(f"upstream[{index}]", a, b, aside))
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
    for name in sorted({k for k in (*a_headers, *b_headers) if k.startswith("anthropic-")}):
        va, vb = a_headers.get(name, MISSING), b_headers.get(name, MISSING)
        same = _flags(va) == _flags(vb) if name == "anthropic-beta" else va == vb
        if not same:
            out.append(_difference(f"{prefix}.headers.{name}", va, vb))
    for name in PRESENT_CREDENTIALS:
        a_present, b_present = _present(a, name), _present(b, name)
        if a_present != b_present:
            out.append(_difference(f"{prefix}.credentials.{name}.present", a_present, b_present))
    a_body, b_body = _defaults_dropped(a.get("body")), _defaults_dropped(b.get("body"))
    if isinstance(a_body, dict) and isinstance(b_body, dict):
        a_body = {k: v for k, v in a_body.items() if k not in aside}
        b_body = {k: v for k, v in b_body.items() if k not in aside}
        if "model" in a_body and "model" in b_body:
            a_body["model"] = canonical_model(a_body["model"])
            b_body["model"] = canonical_model(b_body["model"])
    _leaves(f"{prefix}.body", a_body, b_body, out)
    return out


def _leaves(path: str, a: Any, b: Any, out: list[Difference]) -> None:
    """Each leaf that differs, by its path: ``.key`` into objects, ``[i]`` into lists."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            _leaves(f"{path}.{key}", a.get(key, MISSING), b.get(key, MISSING), out)
    elif isinstance(a, list) and isinstance(b, list):
        for index in range(max(len(a), len(b))):
            _leaves(
                f"{path}[{index}]",
                a[index] if index < len(a) else MISSING,
                b[index] if index < len(b) else MISSING,
                out,
            )
    elif a != b or type(a) is not type(b):
        out.append(_difference(path, a, b))


# Client headers the shadow capture keeps (``harness.shadow.engine``): their absence from
# a captured request means the client did not send them.
_CLIENT_HEADERS_KEPT = frozenset({"anthropic-version", "anthropic-beta"})
# The client's endpoint -> the provider path of a call in the same format.
_SAME_FORMAT = {
    "messages": "/v1/messages",
    "count_tokens": "/v1/messages/count_tokens",
    "chat": "/chat/completions",
}
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
ONLY_SDK = "only the SDK proxy sent it"
AS_CLIENT_SENT = "the SDK proxy sent what the client sent; legacy changed it"


def _client_view(pair: CapturedPair) -> dict[str, Any] | None:
    """The client's request as a provider call in the same format would carry it: its
    body and kept ``anthropic-*`` headers; None for a translated request."""
    request = pair.request
    same = _SAME_FORMAT.get(request.endpoint)
    if same is None:
        return None
    headers = _lower(request.headers)
    return {
        "path": same,
        "body": _defaults_dropped(request.body),
        "headers": {k: v for k, v in headers.items() if k in _CLIENT_HEADERS_KEPT},
    }


def _judged(difference: Difference, client: dict[str, Any] | None) -> Difference:
    """The difference, marked ignored with its reason when it is no SDK regression."""
    _, _, where = difference.path.partition(".")
    if where.startswith("body."):
        for path, sdk, legacy, why in DELIBERATE_UPSTREAM:
            if (where[5:], difference.primary, difference.candidate) == (path, sdk, legacy):
                return replace(difference, ignored=True, detail=why)
    if difference.candidate == MISSING and difference.primary != MISSING:
        return replace(difference, ignored=True, detail=ONLY_SDK)
    if difference.candidate is False and difference.primary is True:  # a credential
        return replace(difference, ignored=True, detail=ONLY_SDK)
    if client is not None and _as_client_sent(where, difference.primary, client):
        return replace(difference, ignored=True, detail=AS_CLIENT_SENT)
    return difference


def _as_client_sent(where: str, sdk_value: Any, client: dict[str, Any]) -> bool:
    section, _, rest = where.partition(".")
    if section == "headers":
        if rest not in _CLIENT_HEADERS_KEPT:
            return False
        sent = client["headers"].get(rest, MISSING)
        return _flags(sent) == _flags(sdk_value) if rest == "anthropic-beta" else sent == sdk_value
    if section != "body" or not rest or rest.split(".", 1)[0].split("[", 1)[0] == "model":
        return False
    return bool(_at(client["body"], "." + rest) == sdk_value)


def _at(value: Any, path: str) -> Any:
    """The value at ``path`` (``.key`` and ``[i]`` steps), MISSING where there is none."""
    for key, index in _STEP.findall(path):
        if key and isinstance(value, dict):
            value = value.get(key, MISSING)
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return MISSING
    return value


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


def credential_present(call: Mapping[str, Any], name: str) -> bool:
    """Whether the call carried the credential ``name`` (its value is never read)."""
    return _present(call, name)


def _present(call: Mapping[str, Any], name: str) -> bool:
    credentials = _lower(call.get("credentials"))
    if name in credentials and isinstance(credentials[name], dict):
        return bool(credentials[name].get("present"))
    return bool(_lower(call.get("headers")).get(name))
