"""The memory proxy: LLM traffic with a memory user id per request, via the litellm SDK."""

__version__ = "0.1.0"
