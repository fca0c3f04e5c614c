"""Reading a live ``/metrics`` in tests: scrape, then look samples up by name and labels."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Scrape", "scrape", "wait_for_sample"]


@dataclass(frozen=True)
class Scrape:
    text: str
    samples: tuple[tuple[str, Mapping[str, str], float], ...]

    def value(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
        return sum(
            v
            for n, lbls, v in self.samples
            if n == name and all(lbls.get(k) == want for k, want in labels.items())
        )

    def label_values(self, name: str, label: str) -> set[str]:
        return {lbls[label] for n, lbls, _ in self.samples if n == name and label in lbls}

    @classmethod
    def of(cls, text: str) -> Scrape:
        """A scrape of an exposition text (from ``/metrics`` or ``generate_latest``)."""
        samples = tuple(
            (s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        )
        return cls(text, samples)

    @property
    def names(self) -> set[str]:
        return {n for n, _, _ in self.samples}


def scrape(url: str, key: str | None) -> Scrape:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    reply = httpx.get(url.rstrip("/") + "/metrics", headers=headers, timeout=10)
    reply.raise_for_status()
    return Scrape.of(reply.text)


def wait_for_sample(
    url: str, key: str | None, check: Callable[[Scrape], bool], timeout: float = 20.0
) -> Scrape:
    """Scrape until ``check`` holds; the last scrape when it does, AssertionError if never."""
    deadline = time.monotonic() + timeout
    while True:
        current = scrape(url, key)
        if check(current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics never met the condition:\n{current.text}")
        time.sleep(0.05)
