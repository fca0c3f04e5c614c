"""Request bodies and tools the sandbox tests send."""

from __future__ import annotations

from typing import Any

__all__ = [
    "API_KEY",
    "WEATHER_SCHEMA",
    "anthropic_body",
    "anthropic_weather_tool",
    "openai_body",
    "openai_weather_tool",
]

API_KEY = "sk-ant-api03-TESTKEY-0123456789abcdef-wxyz"

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "detailed": {"type": "boolean"},
    },
    "required": ["city", "unit", "days"],
}


def anthropic_weather_tool() -> dict[str, Any]:
    return {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": WEATHER_SCHEMA,
    }


def openai_weather_tool() -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA},
    }


def anthropic_body(text: str = "Hello sandbox, how are you today?", **extra: Any) -> dict[str, Any]:
    return {
        "model": "sandbox-claude-sonnet",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def openai_body(text: str = "Hello sandbox, how are you today?", **extra: Any) -> dict[str, Any]:
    return {"model": "sandbox-gpt-4o", "messages": [{"role": "user", "content": text}], **extra}
