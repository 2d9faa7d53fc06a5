"""Shared fixtures: a real nats-server and MongoDB-wire store per session, isolated per test."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from tsunagu.bus.provision import ProvisionSettings, provision
from tsunagu.local.processes import MongoWireStore, NatsServer

log = logging.getLogger("tests")


def _quiet_sink(name: str, line: str) -> None:
    log.debug("[%s] %s", name, line)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tsunagu")


@pytest.fixture(scope="session")
async def nats_server(session_dir: Path) -> AsyncIterator[NatsServer]:
    """A nats-server with the streams provisioned, as the provisioning step does before deploys."""
    async with NatsServer(session_dir / "nats", sink=_quiet_sink) as server:
        await provision(ProvisionSettings(nats_url=server.url))
        yield server


@pytest.fixture(scope="session")
async def mongodb_uri(session_dir: Path) -> AsyncIterator[str]:
    """MONGODB_URI when set (a real MongoDB), else the embedded nx-27017 store."""
    if uri := os.environ.get("MONGODB_URI"):
        yield uri
        return
    async with MongoWireStore(session_dir / "store", sink=_quiet_sink) as store:
        yield store.uri


@pytest.fixture
def tenant() -> str:
    """A tenant of this test only: subjects, keys and the consumer filter all carry it."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def database_name() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def run_timeline(
    nats_server: NatsServer, mongodb_uri: str, database_name: str, tenant: str
) -> Callable[..., AbstractAsyncContextManager[object]]:
    """Start a real TimelineService in this process, consuming only this test's tenant."""
    from services.timeline.service import TimelineService
    from services.timeline.settings import TimelineSettings

    @asynccontextmanager
    async def start(**overrides: object) -> AsyncIterator[TimelineService]:
        settings = TimelineSettings(
            host="127.0.0.1",
            port=0,
            nats_url=nats_server.url,
            mongodb_uri=mongodb_uri,
            mongodb_database=database_name,
            consumer_name=f"timeline-{tenant}",
            subject_filter=f"interactions.{tenant}.>",
            **overrides,  # type: ignore[arg-type]
        )
        async with TimelineService(settings) as service:
            yield service

    return start


@pytest.fixture
def run_ingest(
    nats_server: NatsServer,
) -> Callable[..., AbstractAsyncContextManager[object]]:
    """Start a real ingestion service for one channel in this process, on a free port."""
    from services.ingest.bootstrap import bootstrap
    from services.ingest.service import IngestService
    from services.ingest.settings import IngestSettings

    @asynccontextmanager
    async def start(channel: str, **overrides: object) -> AsyncIterator[IngestService]:
        settings = IngestSettings(
            channel=channel,
            host="127.0.0.1",
            port=0,
            nats_url=nats_server.url,
            **overrides,  # type: ignore[arg-type]
        )
        async with bootstrap(settings) as service:
            yield service

    return start
