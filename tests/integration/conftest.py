"""Fixtures the integration tests share beyond tests/conftest.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from services.insights.settings import InsightsSettings
from services.timeline.store.command_counts import CommandCounts
from services.timeline.stores import TimelineStore
from tests.conftest import service_nats
from tests.grpc_credentials import CallerSet
from tests.integration.insights_fixtures import insights_settings
from tests.integration.test_consumer_faults import Bus, Starter, open_bus
from tests.integration.timeline_db import timeline_db
from tsunagu.bus.permissions import PROVISION
from tsunagu.bus.provision import ProvisionSettings, provision
from tsunagu.bus.server_config import LocalNatsUsers
from tsunagu.local.processes import NatsServer

log = logging.getLogger(__name__)


def nats_sink(name: str, line: str) -> None:
    """Where a test's own nats-server writes its lines: the debug log."""
    log.debug("[%s] %s", name, line)


@pytest.fixture
async def own_nats(tmp_path: Path, nats_users: LocalNatsUsers) -> AsyncIterator[NatsServer]:
    """This test's own nats-server, provisioned, to stop and restart (same port and store dir)."""
    async with NatsServer(tmp_path / "nats", sink=nats_sink, users=nats_users) as server:
        await provision(ProvisionSettings(**service_nats(server, PROVISION)))
        yield server


@pytest.fixture
async def bus(
    run_timeline: Starter, nats_server: NatsServer, tenant: str, callers: CallerSet
) -> AsyncIterator[Bus]:
    """A running timeline of this test's tenant, with a JetStream client and its gRPC API."""
    async with open_bus(run_timeline, nats_server, tenant, callers) as opened:
        yield opened


@pytest.fixture
async def counted(
    mongodb_uri: str, database_name: str
) -> AsyncIterator[tuple[TimelineStore, CommandCounts]]:
    """A fresh timeline database whose client counts every command it sends."""
    counts = CommandCounts()
    async with timeline_db(mongodb_uri, database_name, [counts]) as store:
        yield store, counts


@pytest.fixture
def insights_config(
    nats_server: NatsServer, mongodb_uri: str, database_name: str, tenant: str, callers: CallerSet
) -> InsightsSettings:
    """Settings of an insights service of this test: its database, consumer and tenant."""
    return insights_settings(
        nats_server=nats_server,
        mongodb_uri=mongodb_uri,
        database_name=database_name,
        tenant=tenant,
        callers=callers,
    )


@pytest.fixture
async def operator(nats_server: NatsServer) -> AsyncIterator[Client]:
    """A NATS client with the operator's rights (it may publish what the timeline would)."""
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()
