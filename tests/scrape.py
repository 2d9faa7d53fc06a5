"""Reading a process's /metrics over HTTP, as Prometheus would, for tests that assert on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape: every sample by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include `labels` (0 if none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def has(self, name: str, **labels: str) -> bool:
        return any(
            s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
            for s in self.samples
        )


async def scrape(url: str) -> Scrape:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    response.raise_for_status()
    return Scrape(response.text)


async def scrape_until(url: str, check: Callable[[Scrape], bool], *, seconds: float = 30) -> Scrape:
    """Scrape until `check` holds (the timeline records asynchronously, gauges are sampled)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await scrape(url)
        if check(result):
            return result
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"never true within {seconds}s; last scrape of {url}:\n{result.samples}")
        await asyncio.sleep(0.2)
