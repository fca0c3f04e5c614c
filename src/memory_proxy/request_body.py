"""Read and check a request's JSON body: size limit, JSON syntax, required fields."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import ClientDisconnect, Request

from memory_proxy.errors import InvalidRequest, PayloadTooLarge

__all__ = ["FORBIDDEN_CLIENT_PARAMS", "read_body_bytes", "read_json_body", "require_fields"]

# Parameters that would let a client redirect the call or swap credentials: the
# deployment's own values are used, and a request carrying any of these is refused.
FORBIDDEN_CLIENT_PARAMS = frozenset(
    {
        "api_key",
        "api_base",
        "base_url",
        "api_version",
        "client",
        "custom_llm_provider",
        "extra_headers",
        "headers",
        "mock_response",
        "azure_ad_token",
        "organization",
    }
)


async def read_body_bytes(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it grows past ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds the {limit}-byte limit")
            chunks.append(chunk)
    except ClientDisconnect:
        # The client left, or was cut off as too slow (connection_limits), mid-body: an
        # incomplete request, not a bug of ours. Nobody reads the reply; no traceback.
        raise InvalidRequest(
            f"the connection closed after {size} bytes of the request body"
        ) from None
    return b"".join(chunks)


async def read_json_body(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, read with a size cap before parsing."""
    raw = await read_body_bytes(request, limit)
    if not raw.strip():
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise InvalidRequest("request body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except _NonStandardConstant as exc:
        raise InvalidRequest(
            f"request body is not valid JSON: {exc} is not a JSON number"
        ) from None
    except ValueError as exc:
        # An integer literal past sys.get_int_max_str_digits() (4300 digits by default).
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"request body must be a JSON object, got {type(body).__name__}")
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(body):
        raise InvalidRequest("request body is not valid JSON: a \\u escape is a lone surrogate")
    forbidden = sorted(k for k in body if k in FORBIDDEN_CLIENT_PARAMS or k.startswith("litellm_"))
    if forbidden:
        raise InvalidRequest(
            f"parameter(s) {', '.join(forbidden)} may not be set by the client; "
            "the proxy uses the configured deployment's values"
        )
    return body


# A \uD800-\uDFFF escape: half of a pair (an escaped emoji), or alone. Alone, the string
# has no UTF-8 form, and every later encoding of the body (ours, litellm's) would fail.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(body: dict[str, Any]) -> bool:
    # Only reached when the raw bytes have a surrogate escape, which is rare.
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


class _NonStandardConstant(Exception):
    """``NaN``, ``Infinity`` or ``-Infinity``: Python's extension, not JSON (RFC 8259).

    Accepted, they would be passed on as written to a provider that cannot parse them.
    """


def _refuse_constant(name: str) -> Any:
    raise _NonStandardConstant(name)


_TYPE_NAMES = {str: "a string", list: "an array", int: "an integer", bool: "a boolean"}


def require_fields(body: dict[str, Any], spec: dict[str, type]) -> None:
    """Check each field in ``spec`` is present with the given JSON type."""
    for name, kind in spec.items():
        if name not in body:
            raise InvalidRequest(f"{name}: field required")
        value = body[name]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise InvalidRequest(f"{name}: expected {_TYPE_NAMES[kind]}, got {_json_type(value)}")
    if "stream" in body and not isinstance(body["stream"], bool | None):
        raise InvalidRequest(f"stream: expected a boolean, got {_json_type(body['stream'])}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)
