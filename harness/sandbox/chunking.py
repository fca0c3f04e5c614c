"""How a reply is cut into stream deltas, shared by both formats."""

from __future__ import annotations

import re

__all__ = ["ARGUMENT_PIECE_CHARS", "WORDS_PER_CHUNK", "piece_chunks", "word_chunks"]

WORDS_PER_CHUNK = 3
ARGUMENT_PIECE_CHARS = 16


def word_chunks(text: str, words: int = WORDS_PER_CHUNK) -> list[str]:
    """``text`` in pieces of ``words`` words, each keeping its trailing whitespace.

    Joining the pieces gives ``text`` back exactly.
    """
    tokens = re.findall(r"\s*\S+\s*", text) or ([text] if text else [])
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


def piece_chunks(text: str, size: int = ARGUMENT_PIECE_CHARS) -> list[str]:
    """``text`` in fixed-size pieces, like tool-argument JSON arrives from a model."""
    return [text[i : i + size] for i in range(0, len(text), size)]
