"""The whole system as real processes, started once for the e2e tier."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import _quiet_sink
from tsunagu.local.stack import LocalStack, StackPorts


@pytest.fixture(scope="session")
async def stack(session_dir: Path) -> AsyncIterator[LocalStack]:
    async with LocalStack(
        session_dir / "e2e",
        ports=StackPorts.free(),
        tenant_database="e2e",
        mongodb_uri=os.environ.get("MONGODB_URI"),
        sink=_quiet_sink,
    ) as running:
        yield running
