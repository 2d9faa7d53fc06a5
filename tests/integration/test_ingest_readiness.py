"""Ingest readiness follows its NATS connection; liveness stays up while NATS is away.

Each test runs its own nats-server, stops it and starts it again on the same port with the
same JetStream store, as a NATS pod restart would.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.ingest.api import SERVICE_NAME
from services.ingest.bootstrap import bootstrap
from services.ingest.settings import IngestSettings
from tests.conftest import _quiet_sink
from tsunagu.bus.connection import connect
from tsunagu.bus.streams import ensure_streams
from tsunagu.bus.subjects import INTERACTIONS_STREAM
from tsunagu.local.processes import NatsServer

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
LIVENESS = ""
# Generous: two shared cores, and nats-py retries every half second.
DEADLINE_SECONDS = 60.0


async def status_of(
    address: str, service: str
) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    async with grpc.aio.insecure_channel(address) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10
        )
    return answer.status


async def wait_for_status(address: str, service: str, wanted: int) -> None:
    """Watch `service`'s health until it is `wanted` (fails after DEADLINE_SECONDS)."""
    async with grpc.aio.insecure_channel(address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=service), timeout=DEADLINE_SECONDS
        )
        async for answer in watch:
            if answer.status == wanted:
                watch.cancel()
                return
    raise AssertionError(f"{service or 'liveness'} never became {wanted}")


async def test_ingest_is_not_ready_while_nats_is_down_and_ready_again_once_it_is_back(
    tmp_path: Path,
) -> None:
    store = tmp_path / "nats"
    first = NatsServer(store, sink=_quiet_sink, name="nats-first")
    async with first:
        client = await connect(first.url, name="provision")
        await ensure_streams(client.jetstream())
        await client.drain()
        settings = IngestSettings(
            channel="chat", host="127.0.0.1", port=0, nats_url=first.url, stream_wait_seconds=10
        )
        service = bootstrap(settings)
        await service.open()
    try:
        # `first` has stopped: the service is still alive, but no longer ready.
        address = service.server.address
        await wait_for_status(address, SERVICE_NAME, NOT_SERVING)
        assert await status_of(address, LIVENESS) == SERVING

        async with NatsServer(store, port=first.port, sink=_quiet_sink, name="nats-again"):
            await wait_for_status(address, SERVICE_NAME, SERVING)
            assert await status_of(address, LIVENESS) == SERVING
    finally:
        await service.close()


async def test_ingest_is_not_ready_while_its_stream_is_missing(tmp_path: Path) -> None:
    async with NatsServer(tmp_path / "nats", sink=_quiet_sink, name="nats") as server:
        client = await connect(server.url, name="operator")
        js = client.jetstream()
        try:
            await ensure_streams(js)
            settings = IngestSettings(channel="chat", host="127.0.0.1", port=0, nats_url=server.url)
            async with bootstrap(settings) as service:
                address = service.server.address
                assert await status_of(address, SERVICE_NAME) == SERVING

                # Connected all along, but nothing to publish to: found by the periodic check.
                await js.delete_stream(INTERACTIONS_STREAM)
                await wait_for_status(address, SERVICE_NAME, NOT_SERVING)
                assert await status_of(address, LIVENESS) == SERVING

                await ensure_streams(js)
                await wait_for_status(address, SERVICE_NAME, SERVING)
        finally:
            await client.drain()
