"""Traffic that fits the user's proxy: the corpus's model names mapped to the ones the
proxy serves, given (``--model-map corpus=target,...``) or by provider from its config.

The bundled corpus names the sandbox's models (``gpt-4o``, ``claude-sonnet-4.5``). Sent
to a proxy whose config serves ``gpt-4o-mini`` it gets ``404 model 'gpt-4o' is not served
here``, which says nothing about the proxy. A model the config serves (by name, or by a
wildcard route) is kept; otherwise it is mapped to the config's first model of the same
provider. Only models of requests expected to succeed are mapped automatically (the
corpus's unknown-model requests must stay unknown). An explicit map wins.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.corpus import CorpusEntry
from memory_proxy.config import Deployment, load_config
from memory_proxy.errors import ConfigError

__all__ = [
    "ModelMapError",
    "apply_model_map",
    "auto_model_map",
    "corpus_models",
    "fit_models",
    "parse_model_map",
    "provider_of",
]

_OPENAI = re.compile(r"^(gpt-|chatgpt-|o\d|text-|davinci|babbage)")


class ModelMapError(ConfigError):
    """A ``--model-map`` that does not parse."""


def parse_model_map(text: str | None) -> dict[str, str]:
    """``gpt-4o=gpt-4o-mini,claude-sonnet-4.5=claude-haiku`` as a mapping. Pure."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        source, sep, target = (s.strip() for s in part.partition("="))
        if not sep or not source or not target:
            raise ModelMapError(f"--model-map {part.strip()!r}: expected CORPUS_MODEL=TARGET")
        mapping[source] = target
    return mapping


def provider_of(model: str) -> str | None:
    """The provider a model id belongs to, as far as its name tells. Pure."""
    name = model.split("/", 1)[-1].lower()
    if "/" in model:
        return model.split("/", 1)[0].lower()
    if name.startswith("claude"):
        return "anthropic"
    if _OPENAI.match(name):
        return "openai"
    return None


def corpus_models(entries: Sequence[CorpusEntry]) -> list[str]:
    """The model names the entries ask for, in first-seen order. Pure."""
    seen: dict[str, None] = {}
    for entry in entries:
        model = entry.body.get("model") if isinstance(entry.body, dict) else None
        if isinstance(model, str):
            seen.setdefault(model)
    return list(seen)


def _served(model: str, deployments: Sequence[Deployment]) -> bool:
    return any(
        fnmatch.fnmatchcase(model, d.model_name) if d.is_wildcard else model == d.model_name
        for d in deployments
    )


def auto_model_map(
    models: Sequence[str], deployments: Sequence[Deployment]
) -> tuple[dict[str, str], list[str]]:
    """Each model the deployments do not serve, mapped to a served one of its provider;
    and one line per model saying what happens to it. Pure."""
    mapping: dict[str, str] = {}
    lines = []
    for model in models:
        if _served(model, deployments):
            lines.append(f"{model}: served as is")
            continue
        provider = provider_of(model)
        match = next(
            (
                d.model_name
                for d in deployments
                if not d.is_wildcard and provider is not None and d.provider.lower() == provider
            ),
            None,
        )
        if match is None:
            lines.append(
                f"{model}: not served, and no {provider or 'same-provider'} model in the "
                "config to map it to (its requests will fail; give --model-map)"
            )
            continue
        mapping[model] = match
        lines.append(f"{model} -> {match} (same provider: {provider})")
    return mapping, lines


def apply_model_map(
    entries: Sequence[CorpusEntry], mapping: Mapping[str, str]
) -> list[CorpusEntry]:
    """The entries with each mapped model replaced in their bodies. Pure."""
    if not mapping:
        return list(entries)
    out = []
    for entry in entries:
        body = entry.body
        model = body.get("model") if isinstance(body, dict) else None
        if isinstance(model, str) and model in mapping:
            entry = dataclasses.replace(entry, body={**body, "model": mapping[model]})
        out.append(entry)
    return out


def fit_models(
    entries: Sequence[CorpusEntry], explicit: Mapping[str, str], config_path: str | Path | None
) -> tuple[list[CorpusEntry], list[str]]:
    """The entries with their models fitted to the proxy, and the lines to print: the
    explicit map, else (with a readable config) the automatic one."""
    models = corpus_models(entries)
    # Only what must succeed is fitted: an entry that asks for an unknown model on purpose
    # (it expects the 404) keeps it.
    wanted = corpus_models([e for e in entries if e.expects_success])
    lines: list[str] = []
    mapping: dict[str, str] = {}
    if config_path is not None and Path(config_path).is_file():
        try:
            deployments = load_config(config_path).deployments
        except ConfigError as exc:
            lines.append(f"models: not mapped by provider ({exc})")
        else:
            mapping, auto = auto_model_map(wanted, deployments)
            lines.extend(f"models: {line}" for line in auto if not _given(line, explicit))
    for source, target in explicit.items():
        mapping[source] = target
        used = "" if source in models else " (the corpus does not use it)"
        lines.append(f"models: {source} -> {target} (--model-map){used}")
    return apply_model_map(entries, mapping), lines


def _given(line: str, explicit: Mapping[str, str]) -> bool:
    return any(
        line.startswith(f"{source}:") or line.startswith(f"{source} ->") for source in explicit
    )
