"""Stream provisioning has one owner; services only check that their streams exist.

Each test gets a nats-server of its own, without streams, as a fresh cluster would be.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.ingest.bootstrap import bootstrap
from services.ingest.settings import IngestSettings
from tests.conftest import _quiet_sink
from tsunagu.bus.connection import connect
from tsunagu.bus.provision import DONE_LINE, ProvisionSettings, provision
from tsunagu.bus.streams import (
    PROVISION_COMMAND,
    TIMELINE_OUTCOMES_STREAM,
    Provisioned,
    StreamLimits,
    StreamsMissing,
    ensure_streams,
)
from tsunagu.bus.subjects import (
    DEAD_LETTER_STREAM,
    IDENTITY_STREAM,
    INTERACTIONS_STREAM,
    TIMELINE_UPDATED_STREAM,
)
from tsunagu.local.processes import NatsServer

REPO = Path(__file__).resolve().parents[2]
STREAMS = (
    INTERACTIONS_STREAM,
    DEAD_LETTER_STREAM,
    IDENTITY_STREAM,
    TIMELINE_UPDATED_STREAM,
    TIMELINE_OUTCOMES_STREAM,
)
DAY = 24 * 3600.0


@pytest.fixture
async def bare_nats(tmp_path: Path) -> AsyncIterator[NatsServer]:
    async with NatsServer(tmp_path / "nats", sink=_quiet_sink, name="bare-nats") as server:
        yield server


def test_the_provisioning_command_creates_every_stream(bare_nats: NatsServer) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tsunagu.bus.provision"],
        cwd=REPO,
        env={"TSUNAGU_STREAMS_NATS_URL": bare_nats.url, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(DONE_LINE), done.stdout
    for name in STREAMS:
        assert f"{name} created" in done.stdout


def test_the_provisioning_command_refuses_bad_limits_naming_them() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tsunagu.bus.provision"],
        cwd=REPO,
        env={"TSUNAGU_STREAMS_REPLICAS": "0", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("invalid settings"), done.stderr
    assert "  replicas:" in done.stderr


async def test_provisioning_twice_with_the_same_limits_changes_nothing(
    bare_nats: NatsServer,
) -> None:
    settings = ProvisionSettings(nats_url=bare_nats.url)
    await provision(settings)
    nc = await connect(bare_nats.url, name="test")
    try:
        js = nc.jetstream()
        before = {name: await js.stream_info(name) for name in STREAMS}
        again = await ensure_streams(js, settings.limits)
        after = {name: await js.stream_info(name) for name in STREAMS}
    finally:
        await nc.drain()
    assert again == dict.fromkeys(STREAMS, Provisioned.UNCHANGED)
    for name in STREAMS:
        assert after[name].config == before[name].config
        # Still the stream created first, not one deleted and declared again.
        assert after[name].created == before[name].created


async def test_provisioning_with_changed_limits_updates_the_streams(bare_nats: NatsServer) -> None:
    nc = await connect(bare_nats.url, name="test")
    try:
        js = nc.jetstream()
        first = await ensure_streams(js, StreamLimits())
        changed = await ensure_streams(
            js,
            StreamLimits(
                max_age_seconds=7 * DAY, duplicate_window_seconds=DAY, notice_max_age_seconds=60
            ),
        )
        interactions = await js.stream_info(INTERACTIONS_STREAM)
        dead_letters = await js.stream_info(DEAD_LETTER_STREAM)
        notices = await js.stream_info(TIMELINE_UPDATED_STREAM)
    finally:
        await nc.drain()
    assert first == dict.fromkeys(STREAMS, Provisioned.CREATED)
    assert changed == dict.fromkeys(STREAMS, Provisioned.UPDATED)
    assert interactions.config.max_age == pytest.approx(7 * DAY)
    assert interactions.config.duplicate_window == pytest.approx(DAY)
    assert dead_letters.config.max_age == pytest.approx(7 * DAY)
    # The notice capture keeps its own, short age.
    assert notices.config.max_age == pytest.approx(60)


def _ingest_settings(nats: NatsServer, wait_seconds: float) -> IngestSettings:
    return IngestSettings(
        channel="chat",
        host="127.0.0.1",
        port=0,
        nats_url=nats.url,
        stream_wait_seconds=wait_seconds,
    )


async def test_a_service_without_provisioned_streams_fails_naming_them(
    bare_nats: NatsServer,
) -> None:
    service = bootstrap(_ingest_settings(bare_nats, wait_seconds=1.0))
    with pytest.raises(StreamsMissing) as refused:
        await service.open()
    assert refused.value.names == [INTERACTIONS_STREAM]
    assert PROVISION_COMMAND in str(refused.value)
    # Failing start-up left nothing behind: the NATS connection is closed again.
    assert service.bus.client.is_closed


def test_python_m_services_ingest_without_streams_exits_1_with_the_reason(
    bare_nats: NatsServer,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.ingest"],
        cwd=REPO,
        env={
            "PATH": "",
            "TSUNAGU_INGEST_CHANNEL": "chat",
            "TSUNAGU_INGEST_PORT": "0",
            "TSUNAGU_INGEST_NATS_URL": bare_nats.url,
            "TSUNAGU_INGEST_STREAM_WAIT_SECONDS": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ingest-chat: cannot start: JetStream stream(s) INTERACTIONS do not exist" in done.stderr
    assert PROVISION_COMMAND in done.stderr
    assert "Traceback" not in done.stderr
    assert " ready on " not in done.stdout


class _LogHeard(logging.Handler):
    """Sets `heard` when a record containing `text` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.INFO)
        self.text = text
        self.heard = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.heard.set()


async def test_a_service_waits_for_streams_provisioned_after_it_started(
    bare_nats: NatsServer,
) -> None:
    logger = logging.getLogger("tsunagu.bus.streams")
    waiting = _LogHeard("waiting for stream(s) INTERACTIONS")
    logger.addHandler(waiting)
    level = logger.level
    logger.setLevel(logging.INFO)
    service = bootstrap(_ingest_settings(bare_nats, wait_seconds=60.0))
    starting = asyncio.create_task(service.open())
    try:
        await asyncio.wait_for(waiting.heard.wait(), 30)
        assert not starting.done(), "the service started without its stream"
        await provision(ProvisionSettings(nats_url=bare_nats.url))
        await asyncio.wait_for(starting, 30)
        async with grpc.aio.insecure_channel(service.server.address) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        logger.removeHandler(waiting)
        logger.setLevel(level)
        if not starting.done():
            starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await service.close()
