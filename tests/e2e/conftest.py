"""The whole system as real processes, started once for the e2e tier."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import _quiet_sink
from tsunagu.local.stack import LocalStack, StackPorts
from tsunagu.local.traces import traces_env


class StackLog:
    """Every line every process of the stack printed, for tests that read the logs."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, name: str, line: str) -> None:
        self.lines.append(f"[{name}] {line}")
        _quiet_sink(name, line)


@pytest.fixture(scope="session")
def stack_log() -> StackLog:
    return StackLog()


@pytest.fixture(scope="session")
async def stack(session_dir: Path, stack_log: StackLog) -> AsyncIterator[LocalStack]:
    async with LocalStack(
        session_dir / "e2e",
        ports=StackPorts.free(),
        tenant_database="e2e",
        mongodb_uri=os.environ.get("MONGODB_URI"),
        sink=stack_log,
        # Consumer lag is read from JetStream this often: tests wait for it, not 5 s. Spans
        # kept as `make run` keeps them, written within 0.1 s rather than 5 s.
        extra_env={
            "TSUNAGU_TIMELINE_METRICS_SAMPLE_SECONDS": "0.5",
            **traces_env(session_dir / "e2e"),
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
    ) as running:
        yield running
