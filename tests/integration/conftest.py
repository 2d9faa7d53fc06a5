"""Fixtures the integration tests share beyond tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.grpc_credentials import CallerSet
from tests.integration.test_consumer_faults import Bus, Starter, open_bus
from tsunagu.local.processes import NatsServer


@pytest.fixture
async def bus(
    run_timeline: Starter, nats_server: NatsServer, tenant: str, callers: CallerSet
) -> AsyncIterator[Bus]:
    """A running timeline of this test's tenant, with a JetStream client and its gRPC API."""
    async with open_bus(run_timeline, nats_server, tenant, callers) as opened:
        yield opened
