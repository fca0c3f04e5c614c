"""Load the LiteLLM-format ``config.yaml`` the proxy shares with the LiteLLM server.

The file is read as the LiteLLM server reads it (``model_list``, ``general_settings``,
``litellm_settings``) plus the memory proxy's own top-level sections
(``user_id_mappings``, ``memory_proxy``), which the LiteLLM server ignores. Loading is
pure apart from reading the file and the environment: it yields frozen dataclasses, and
any problem is one :class:`ConfigError` that names the file, the key path and what was
expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from memory_proxy.errors import ConfigError
from memory_proxy.memory_router import HeaderPattern, UserIdMappings

__all__ = [
    "ENV_PREFIX",
    "Deployment",
    "GeneralSettings",
    "LiteLLMSettings",
    "ProxyConfig",
    "ProxyOptions",
    "load_config",
    "parse_config",
]

ENV_PREFIX = "os.environ/"

# Providers the proxy can call with its cookie-keeping session (see session.py).
SUPPORTED_PROVIDERS = frozenset({"anthropic", "openai"})

# Keys whose os.environ/ reference may be missing: the key is then dropped, not an error.
# A master key from the environment is optional (no key means no auth, as on LiteLLM),
# and so is the Supermemory key (without it the router passes requests through).
_OPTIONAL_ENV_KEYS = (
    ("general_settings", "master_key"),
    ("model_list", "*", "litellm_params", "extra_headers", "x-supermemory-api-key"),
)

# Header names whose configured values are secrets, beyond api_key and master_key.
_SECRET_HEADER = re.compile(r"(key|token|secret|auth|cookie)", re.IGNORECASE)


@dataclass(frozen=True)
class Deployment:
    """One ``model_list`` entry: a client-facing name (maybe a wildcard) and litellm kwargs."""

    model_name: str
    litellm_params: Mapping[str, Any]

    @property
    def model(self) -> str:
        return str(self.litellm_params["model"])

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0]

    @property
    def is_wildcard(self) -> bool:
        return "*" in self.model_name

    @property
    def api_base(self) -> str | None:
        value = self.litellm_params.get("api_base")
        return str(value) if value is not None else None

    @property
    def api_key(self) -> str | None:
        value = self.litellm_params.get("api_key")
        return str(value) if value is not None else None

    @property
    def extra_headers(self) -> Mapping[str, str]:
        return self.litellm_params.get("extra_headers") or {}

    def call_params(self) -> dict[str, Any]:
        """litellm kwargs other than the ones the proxy passes itself."""
        skip = {"model", "api_base", "api_key", "extra_headers"}
        return {k: v for k, v in self.litellm_params.items() if k not in skip}


@dataclass(frozen=True)
class GeneralSettings:
    master_key: str | None = None
    use_sdk: bool = False


@dataclass(frozen=True)
class LiteLLMSettings:
    num_retries: int = 2
    request_timeout: float = 600.0
    drop_params: bool = False


@dataclass(frozen=True)
class ProxyOptions:
    """The ``memory_proxy:`` section: limits and timings of the proxy process itself."""

    max_body_bytes: int = 10 * 1024 * 1024
    shutdown_grace_seconds: float = 30.0
    retry_backoff_seconds: float = 0.5
    retry_backoff_max_seconds: float = 8.0
    log_prompts: bool = False
    # GET /metrics (Prometheus) and the per-request counting behind it.
    metrics: bool = True
    # OpenTelemetry spans and W3C ``traceparent`` upstream (memory_proxy.tracing; needs
    # the ``tracing`` extra).
    tracing: bool = False
    # Connection limits (connection_limits.py): a request head must arrive within
    # header_timeout_seconds of the accept (or of its first byte, on a reused connection)
    # and hold at most max_header_bytes; its body within body_timeout_seconds of the head.
    header_timeout_seconds: float = 10.0
    max_header_bytes: int = 64 * 1024
    body_timeout_seconds: float = 60.0
    # An idle connection outlives the clients' pools (httpx, under the openai and anthropic
    # SDKs: 5 s; Node's undici, under Claude Code: 4 s; aiohttp: 15 s), so the client always
    # drops it first. At uvicorn's 5 s the proxy closed connections the SDKs were reusing
    # at that instant: a reset, 1-10 per 10,000 requests at 50 in flight. nginx's default.
    keep_alive_timeout_seconds: float = 75.0
    max_connections: int = 1000
    # After this many seconds of upstream silence a stream gets the format's keep-alive
    # (Claude Code drops a silent stream, and shows its stall banner much sooner).
    stream_keepalive_seconds: float = 10.0
    # The Supermemory conversation of a Claude Code subagent: ``{session}`` and
    # ``{agent}`` are its x-claude-code-session-id and x-claude-code-agent-id.
    agent_conversation_format: str = "{session}:{agent}"
    # Concrete model ids a wildcard route serves, for GET /v1/models (a wildcard route
    # name such as ``claude-*`` is not a model id and is never listed).
    wildcard_models: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProxyConfig:
    """Everything the proxy reads from one config file."""

    path: Path
    deployments: tuple[Deployment, ...]
    general: GeneralSettings = GeneralSettings()
    litellm: LiteLLMSettings = LiteLLMSettings()
    user_id_mappings: UserIdMappings = UserIdMappings()
    options: ProxyOptions = ProxyOptions()
    # Every secret value the file holds or resolved (keys, secret headers): for redaction.
    secrets: frozenset[str] = field(default_factory=frozenset)

    @property
    def model_names(self) -> list[str]:
        return [d.model_name for d in self.deployments]


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> ProxyConfig:
    """Read, resolve and validate ``path``; raise :class:`ConfigError` on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    return parse_config(raw, path=path, environ=os.environ if environ is None else environ)


def parse_config(raw: Any, *, path: Path, environ: Mapping[str, str]) -> ProxyConfig:
    """Build a :class:`ProxyConfig` from the parsed YAML tree ``raw``."""
    check = _Checker(path)
    if raw is None:
        raw = {}
    check.mapping(raw, "")
    secrets: set[str] = set()
    resolved = _resolve_env(raw, (), environ, check, secrets)

    general_raw = check.mapping(resolved.get("general_settings") or {}, "general_settings")
    master_key = check.optional_str(general_raw.get("master_key"), "general_settings.master_key")
    if master_key:
        secrets.add(master_key)
    general = GeneralSettings(
        master_key=master_key or None,
        use_sdk=check.boolean(general_raw.get("use_sdk", False), "general_settings.use_sdk"),
    )

    ls_raw = check.mapping(resolved.get("litellm_settings") or {}, "litellm_settings")
    litellm_settings = LiteLLMSettings(
        num_retries=check.non_negative_int(
            ls_raw.get("num_retries", 2), "litellm_settings.num_retries"
        ),
        request_timeout=check.positive_number(
            ls_raw.get("request_timeout", 600), "litellm_settings.request_timeout"
        ),
        drop_params=check.boolean(ls_raw.get("drop_params", False), "litellm_settings.drop_params"),
    )

    deployments = _parse_model_list(resolved.get("model_list"), check, secrets)
    mappings = _parse_user_id_mappings(resolved.get("user_id_mappings") or {}, check)
    options = _parse_options(resolved.get("memory_proxy") or {}, check)
    return ProxyConfig(
        path=path,
        deployments=deployments,
        general=general,
        litellm=litellm_settings,
        user_id_mappings=mappings,
        options=options,
        secrets=frozenset(s for s in secrets if s),
    )


def _parse_model_list(raw: Any, check: _Checker, secrets: set[str]) -> tuple[Deployment, ...]:
    if raw is None:
        raise check.error("model_list", "a list of models", "nothing")
    if not isinstance(raw, list) or not raw:
        raise check.error("model_list", "a non-empty list of models", raw)
    seen: set[str] = set()
    deployments = []
    for i, entry in enumerate(raw):
        where = f"model_list[{i}]"
        check.mapping(entry, where)
        name = entry.get("model_name")
        if not isinstance(name, str) or not name.strip():
            raise check.error(f"{where}.model_name", "a non-empty string", name)
        if name in seen:
            raise check.error(f"{where}.model_name", "a name not used by another entry", name)
        seen.add(name)
        params = check.mapping(entry.get("litellm_params"), f"{where}.litellm_params")
        model = params.get("model")
        if not isinstance(model, str) or "/" not in model:
            raise check.error(
                f"{where}.litellm_params.model", "'<provider>/<model id>', e.g. anthropic/*", model
            )
        provider = model.split("/", 1)[0]
        if provider not in SUPPORTED_PROVIDERS:
            raise check.error(
                f"{where}.litellm_params.model",
                f"a provider prefix among {sorted(SUPPORTED_PROVIDERS)}",
                provider,
            )
        for key in ("api_base", "api_key"):
            if key in params and not isinstance(params[key], str):
                raise check.error(f"{where}.litellm_params.{key}", "a string", params[key])
        headers = params.get("extra_headers")
        if headers is not None:
            check.mapping(headers, f"{where}.litellm_params.extra_headers")
            for hname, hvalue in headers.items():
                if not isinstance(hvalue, str):
                    raise check.error(
                        f"{where}.litellm_params.extra_headers.{hname}", "a string", hvalue
                    )
                if _SECRET_HEADER.search(str(hname)):
                    secrets.add(hvalue)
        if params.get("api_key"):
            secrets.add(params["api_key"])
        deployments.append(Deployment(model_name=name, litellm_params=dict(params)))
    return tuple(deployments)


def _parse_user_id_mappings(raw: Any, check: _Checker) -> UserIdMappings:
    check.mapping(raw, "user_id_mappings")
    defaults = UserIdMappings()
    custom_header = raw.get("custom_header", defaults.custom_header)
    if not isinstance(custom_header, str) or not custom_header:
        raise check.error("user_id_mappings.custom_header", "a header name", custom_header)
    default_user_id = raw.get("default_user_id", defaults.default_user_id)
    if not isinstance(default_user_id, str) or not default_user_id:
        raise check.error("user_id_mappings.default_user_id", "a non-empty string", default_user_id)
    patterns_raw = raw.get("header_patterns") or []
    if not isinstance(patterns_raw, list):
        raise check.error("user_id_mappings.header_patterns", "a list", patterns_raw)
    patterns = []
    for i, item in enumerate(patterns_raw):
        where = f"user_id_mappings.header_patterns[{i}]"
        check.mapping(item, where)
        for key in ("header", "pattern", "user_id"):
            if not isinstance(item.get(key), str) or not item.get(key):
                raise check.error(f"{where}.{key}", "a non-empty string", item.get(key))
        try:
            compiled = re.compile(item["pattern"], re.IGNORECASE)
        except re.error as exc:
            raise check.error(f"{where}.pattern", "a valid regular expression", str(exc)) from None
        patterns.append(HeaderPattern(item["header"].lower(), compiled, item["user_id"]))
    use_defaults = check.boolean(
        raw.get("use_default_patterns", True), "user_id_mappings.use_default_patterns"
    )
    return UserIdMappings(
        custom_header=custom_header.lower(),
        header_patterns=tuple(patterns),
        default_user_id=default_user_id,
        use_default_patterns=use_defaults,
    )


def _parse_options(raw: Any, check: _Checker) -> ProxyOptions:
    check.mapping(raw, "memory_proxy")
    d = ProxyOptions()
    return ProxyOptions(
        max_body_bytes=check.positive_int(
            raw.get("max_body_bytes", d.max_body_bytes), "memory_proxy.max_body_bytes"
        ),
        shutdown_grace_seconds=check.positive_number(
            raw.get("shutdown_grace_seconds", d.shutdown_grace_seconds),
            "memory_proxy.shutdown_grace_seconds",
        ),
        retry_backoff_seconds=check.non_negative_number(
            raw.get("retry_backoff_seconds", d.retry_backoff_seconds),
            "memory_proxy.retry_backoff_seconds",
        ),
        retry_backoff_max_seconds=check.non_negative_number(
            raw.get("retry_backoff_max_seconds", d.retry_backoff_max_seconds),
            "memory_proxy.retry_backoff_max_seconds",
        ),
        log_prompts=check.boolean(raw.get("log_prompts", False), "memory_proxy.log_prompts"),
        metrics=check.boolean(raw.get("metrics", d.metrics), "memory_proxy.metrics"),
        tracing=check.boolean(raw.get("tracing", d.tracing), "memory_proxy.tracing"),
        header_timeout_seconds=check.positive_number(
            raw.get("header_timeout_seconds", d.header_timeout_seconds),
            "memory_proxy.header_timeout_seconds",
        ),
        max_header_bytes=check.positive_int(
            raw.get("max_header_bytes", d.max_header_bytes), "memory_proxy.max_header_bytes"
        ),
        body_timeout_seconds=check.positive_number(
            raw.get("body_timeout_seconds", d.body_timeout_seconds),
            "memory_proxy.body_timeout_seconds",
        ),
        keep_alive_timeout_seconds=check.positive_number(
            raw.get("keep_alive_timeout_seconds", d.keep_alive_timeout_seconds),
            "memory_proxy.keep_alive_timeout_seconds",
        ),
        max_connections=check.positive_int(
            raw.get("max_connections", d.max_connections), "memory_proxy.max_connections"
        ),
        stream_keepalive_seconds=check.positive_number(
            raw.get("stream_keepalive_seconds", d.stream_keepalive_seconds),
            "memory_proxy.stream_keepalive_seconds",
        ),
        agent_conversation_format=_conversation_format(
            raw.get("agent_conversation_format", d.agent_conversation_format), check
        ),
        wildcard_models=_wildcard_models(raw.get("wildcard_models") or {}, check),
    )


def _conversation_format(value: Any, check: _Checker) -> str:
    where = "memory_proxy.agent_conversation_format"
    if not isinstance(value, str) or "{agent}" not in value:
        raise check.error(where, "a string containing {agent} (and usually {session})", value)
    try:
        value.format(session="s", agent="a")
    except (KeyError, IndexError, ValueError) as exc:
        raise check.error(where, "only the fields {session} and {agent}", value) from exc
    return value


def _wildcard_models(raw: Any, check: _Checker) -> dict[str, tuple[str, ...]]:
    check.mapping(raw, "memory_proxy.wildcard_models")
    models: dict[str, tuple[str, ...]] = {}
    for route, names in raw.items():
        where = f"memory_proxy.wildcard_models.{route}"
        if not isinstance(names, list) or not all(
            isinstance(n, str) and n and "*" not in n for n in names
        ):
            raise check.error(where, "a list of concrete model ids (no '*')", names)
        models[str(route)] = tuple(names)
    return models


def _resolve_env(
    node: Any,
    keypath: tuple[str | int, ...],
    environ: Mapping[str, str],
    check: _Checker,
    secrets: set[str],
) -> Any:
    """Replace every ``os.environ/VAR`` string in the tree with the variable's value."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            resolved = _resolve_env(value, (*keypath, str(key)), environ, check, secrets)
            if resolved is not _MISSING:
                out[key] = resolved
        return out
    if isinstance(node, list):
        return [_resolve_env(v, (*keypath, i), environ, check, secrets) for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith(ENV_PREFIX):
        var = node[len(ENV_PREFIX) :]
        value = environ.get(var)
        if value is None:
            if _is_optional(keypath):
                return _MISSING
            raise ConfigError(
                f"{check.path}: {_format_keypath(keypath)}: environment variable {var} "
                f"is not set (the value is '{node}')"
            )
        # A value taken from the environment is treated as a secret: it never reaches logs.
        secrets.add(value)
        return value
    return node


_MISSING: Any = object()


def _is_optional(keypath: tuple[str | int, ...]) -> bool:
    for pattern in _OPTIONAL_ENV_KEYS:
        if len(pattern) == len(keypath) and all(
            p == "*" or p == str(k) for p, k in zip(pattern, keypath, strict=True)
        ):
            return True
    return False


def _format_keypath(keypath: tuple[str | int, ...]) -> str:
    out = ""
    for part in keypath:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "<root>"


class _Checker:
    """Type checks that raise one ConfigError naming file, key path and expectation."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, where: str, expected: str, got: Any) -> ConfigError:
        shown = got if isinstance(got, str) else type(got).__name__ if got is not None else "null"
        if isinstance(got, bool | int | float):
            shown = repr(got)
        return ConfigError(f"{self.path}: {where or '<root>'}: expected {expected}, got {shown!s}")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(where, "a mapping", value)
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(where, "true or false", value)
        return value

    def optional_str(self, value: Any, where: str) -> str | None:
        if value is not None and not isinstance(value, str):
            raise self.error(where, "a string", value)
        return value

    def _number(self, value: Any, where: str, expected: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(where, expected, value)
        return float(value)

    def positive_number(self, value: Any, where: str) -> float:
        number = self._number(value, where, "a number > 0")
        if number <= 0:
            raise self.error(where, "a number > 0", value)
        return number

    def non_negative_number(self, value: Any, where: str) -> float:
        number = self._number(value, where, "a number >= 0")
        if number < 0:
            raise self.error(where, "a number >= 0", value)
        return number

    def positive_int(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(where, "a whole number > 0", value)
        return value

    def non_negative_int(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(where, "a whole number >= 0", value)
        return value
