"""Shared fixtures: a real nats-server and MongoDB-wire store per session, isolated per test."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.action_keys import ActionKeys, session_action_keys
from tests.grpc_credentials import CallerSet, caller_set
from tests.work_units import StackScheduling, in_handout_order
from tsunagu.bus.permissions import PROVISION, TIMELINE, ingest_user
from tsunagu.bus.provision import ProvisionSettings, provision
from tsunagu.bus.server_config import LocalNatsUsers
from tsunagu.local.processes import MongoWireStore, NatsServer

if TYPE_CHECKING:
    from xdist.remote import Producer

log = logging.getLogger("tests")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In an xdist worker, the order the tests are handed out in (`tests.work_units`)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        in_handout_order(items)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> StackScheduling | None:
    """`--dist loadfile` keeps the browser tier in one worker too, so its stack starts once."""
    return StackScheduling(config, log) if config.getoption("dist") == "loadfile" else None


def _quiet_sink(name: str, line: str) -> None:
    log.debug("[%s] %s", name, line)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tsunagu")


@pytest.fixture(scope="session")
def nats_users(session_dir: Path) -> LocalNatsUsers:
    """The NATS users and passwords of the test session, generated as `make run` does."""
    return LocalNatsUsers(session_dir / "nats-users")


@pytest.fixture(scope="session")
def action_keys() -> ActionKeys:
    """The gateway's agent-action key pair of the test session; every test timeline trusts it."""
    return session_action_keys()


def service_nats(server: NatsServer, user: str) -> dict[str, Any]:
    """Settings that connect a service as its own least-privileged NATS user, as deployed."""
    login = server.users.login(user) if server.users is not None else None
    assert login is not None, "the test nats-server has users"
    return {"nats_url": server.address, "nats_user": login.user, "nats_password": login.password}


@pytest.fixture(scope="session")
async def nats_server(session_dir: Path, nats_users: LocalNatsUsers) -> AsyncIterator[NatsServer]:
    """A nats-server with users and the streams provisioned, as before a deploy.

    Its `url` carries the operator's credentials, so tests connect with `nats.connect(url)`.
    """
    async with NatsServer(session_dir / "nats", sink=_quiet_sink, users=nats_users) as server:
        await provision(ProvisionSettings(**service_nats(server, PROVISION)))
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
def callers(tenant: str) -> CallerSet:
    """gRPC callers of this test: adapters for its tenant (and `{tenant}x`), a service identity.

    `run_ingest` and `run_timeline` accept them; clients use `tests.grpc_credentials.channel`
    with `callers.adapter(channel)` or `callers.service`.
    """
    return caller_set([tenant, f"{tenant}x"])


@pytest.fixture
def database_name() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def run_timeline(  # pytest passes fixtures by name
    *,
    nats_server: NatsServer,
    mongodb_uri: str,
    database_name: str,
    tenant: str,
    callers: CallerSet,
    action_keys: ActionKeys,
) -> Callable[..., AbstractAsyncContextManager[object]]:
    """Start a real TimelineService in this process, consuming only this test's tenant."""
    from services.timeline.service import TimelineService
    from services.timeline.settings import TimelineSettings

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[TimelineService]:
        settings = TimelineSettings(
            host="127.0.0.1",
            port=0,
            **service_nats(nats_server, TIMELINE),
            mongodb_uri=mongodb_uri,
            mongodb_database=database_name,
            **{
                "action_verify_key_files": [action_keys.public],
                "consumer_name": f"timeline-{tenant}",
                "subject_filter": f"interactions.{tenant}.>",
                "callers": callers.credentials,
                **overrides,
            },
        )
        async with TimelineService(settings) as service:
            yield service

    return start


@pytest.fixture
def run_ingest(
    nats_server: NatsServer, callers: CallerSet
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
            **service_nats(nats_server, ingest_user(channel)),
            **{"callers": callers.credentials, **overrides},  # type: ignore[arg-type]
        )
        async with bootstrap(settings) as service:
            yield service

    return start


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something listens on, for tests of port clashes."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]
