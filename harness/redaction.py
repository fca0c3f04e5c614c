"""What may be stored: secrets out, prompts kept, hashed or dropped, before any write.

:class:`Redactor` walks any captured value (dataclasses such as
:class:`~harness.observation.CapturedPair`, dicts, lists, tuples, strings) and returns a
redacted copy:

* the values of credential headers (``authorization``, ``x-api-key``,
  ``x-supermemory-api-key``, ``cookie``, ``set-cookie``, ...) become ``[REDACTED]``
  wherever such a key appears, in any nesting (client headers, upstream captures);
* every occurrence of a configured secret value, in any string or dict key anywhere
  (bodies, SSE event data, error text, paths), becomes ``[REDACTED]``; the JSON-escaped
  spellings of a secret are matched too, so a secret inside JSON text is caught;
* prompt text (``messages``, ``system``, ``prompt`` of request bodies) is kept (``full``),
  replaced by ``sha256:<16 hex>`` (``hash``) or dropped (``none``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

from harness.observation import CapturedPair

__all__ = [
    "REDACTED",
    "SECRET_FIELDS",
    "SECRET_HEADERS",
    "PromptPolicy",
    "Redactor",
    "prompt_hash",
]

REDACTED = "[REDACTED]"
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-supermemory-api-key",
        "cookie",
        "set-cookie",
    }
)
# Body fields a client may (wrongly) put its key in; masked wherever they appear.
SECRET_FIELDS = frozenset({"api_key", "apikey", "access_token", "client_secret"})
PromptPolicy = Literal["full", "hash", "none"]

# Keys whose values are prompt text in the request bodies of both API formats.
_PROMPT_KEYS = ("system", "prompt", "input")
# The parts of a message that say what it is rather than what it says.
_MESSAGE_SHAPE_KEYS = frozenset({"role", "name", "tool_call_id", "type"})
_HASH_PREFIX = "sha256:"
_HASH_LENGTH = len(_HASH_PREFIX) + 16
# Shorter configured "secrets" would mangle ordinary text; they are ignored.
_MIN_SECRET_LENGTH = 4

T = TypeVar("T")


def prompt_hash(value: Any) -> str:
    """``sha256:<16 hex>`` of the value's canonical JSON; an existing hash is kept."""
    if _is_hash(value):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return _HASH_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) == _HASH_LENGTH and value[:7] == _HASH_PREFIX


class Redactor:
    """Removes credentials and configured secrets, and applies the prompt policy."""

    def __init__(
        self,
        secrets: Iterable[str] = (),
        store_prompts: PromptPolicy = "full",
        secret_headers: Iterable[str] = SECRET_HEADERS,
    ) -> None:
        if store_prompts not in ("full", "hash", "none"):
            raise ValueError(f"store_prompts must be full, hash or none, not {store_prompts!r}")
        self.store_prompts = store_prompts
        self._secret_headers = frozenset(h.lower() for h in secret_headers) | SECRET_FIELDS
        spellings = {
            variant
            for secret in secrets
            if secret and len(secret) >= _MIN_SECRET_LENGTH
            for variant in _spellings(secret)
        }
        # Longest first: a secret that contains another is replaced whole.
        ordered = sorted(spellings, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, value: T) -> T:
        """A redacted copy of ``value`` (secrets and credential headers only)."""
        redacted: T = self._walk(value)
        return redacted

    def redact_text(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)

    def redact_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {self.redact_text(k): self._header_value(k, v) for k, v in headers.items()}

    def redact_pair(self, pair: CapturedPair) -> CapturedPair:
        """Secrets out of everything; the prompt policy on the request and upstream bodies."""
        redacted: CapturedPair = self._walk(pair)
        if self.store_prompts == "full":
            return redacted
        request = dataclasses.replace(
            redacted.request, body=self.apply_prompt_policy(redacted.request.body)
        )
        upstream = {
            target: [self._upstream_call(call) for call in calls]
            for target, calls in redacted.upstream.items()
        }
        return dataclasses.replace(redacted, request=request, upstream=upstream)

    def apply_prompt_policy(self, body: Any) -> Any:
        """A request body with its prompt text kept, hashed or dropped."""
        if self.store_prompts == "full" or not isinstance(body, dict):
            return body
        out = dict(body)
        if isinstance(out.get("messages"), list):
            out["messages"] = [self._message(m) for m in out["messages"]]
        for key in _PROMPT_KEYS:
            if key in out:
                if self.store_prompts == "hash":
                    out[key] = prompt_hash(out[key])
                else:
                    del out[key]
        return out

    def _message(self, message: Any) -> Any:
        if not isinstance(message, dict):
            return prompt_hash(message) if self.store_prompts == "hash" else None
        kept = {k: v for k, v in message.items() if k in _MESSAGE_SHAPE_KEYS}
        if self.store_prompts == "hash":
            for key, value in message.items():
                if key not in _MESSAGE_SHAPE_KEYS:
                    kept[key] = prompt_hash(value)
        return kept

    def redact_upstream(self, call: Any) -> Any:
        """One captured upstream call: secrets out, then the prompt policy on its body."""
        return self._upstream_call(self._walk(call))

    def _upstream_call(self, call: Any) -> Any:
        if isinstance(call, dict) and "body" in call:
            return {**call, "body": self.apply_prompt_policy(call["body"])}
        return call

    def _header_value(self, name: str, value: Any) -> Any:
        if name.lower() in self._secret_headers and isinstance(value, str):
            # An empty header stays empty: "sent but blank" must not look like a credential.
            return REDACTED if value.strip() else value
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                if isinstance(key, str):
                    out[self.redact_text(key)] = self._header_value(key, item)
                else:
                    out[key] = self._walk(item)
            return out
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._walk(v) for v in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {
                f.name: self._walk(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if f.init
            }
            return dataclasses.replace(value, **changes)
        return value


def _spellings(secret: str) -> set[str]:
    """The secret as written, and as it appears inside JSON text (escaped)."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
