"""The ingestion service's composition root: the only place its objects are built."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from services.ingest.api import SERVICE_NAME, IngestApi, generic_handler
from services.ingest.metrics import CountingPublisher, IngestCounts
from services.ingest.pipeline import IngestPolicy
from services.ingest.readiness import PublishReadiness
from services.ingest.service import IngestService
from services.ingest.settings import IngestSettings
from tsunagu.bus.connection import NatsConnection
from tsunagu.bus.subjects import INTERACTIONS_STREAM
from tsunagu.grpc_auth import admit_kind
from tsunagu.rpc import GrpcServer, batch_request_bytes

_POLICY_SETTINGS = {"default_region", "tenant_regions", "max_text_bytes", "max_event_bytes"}


def _now() -> datetime:
    return datetime.now(UTC)


def bootstrap(
    settings: IngestSettings,
    *,
    bus: NatsConnection | None = None,
    clock: Callable[[], datetime] | None = None,
) -> IngestService:
    """Wire one channel's ingestion service; nothing is started or connected yet.

    Args:
        settings: The parsed settings.
        bus: An unopened NATS connection; by default one to `settings.nats_url`.
        clock: Stamps `received_at`; by default the UTC wall clock.

    Returns:
        The service; `async with` starts it.
    """
    bus = bus or NatsConnection.for_settings(settings, name=f"tsunagu-ingest-{settings.channel}")
    counts = IngestCounts(settings.channel)
    api = IngestApi(
        CountingPublisher(
            bus.jetstream,
            ack_timeout=settings.publish_ack_timeout_seconds,
            counts=counts,
            # Personal data reaches the stream only sealed (docs/privacy.md).
            sealer=settings.bus_sealer(),
        ),
        policy=IngestPolicy(
            channel=settings.channel_number,
            # The policy's limits are settings of the same names.
            **settings.model_dump(include=_POLICY_SETTINGS),
        ),
        clock=clock or _now,
        max_batch_items=settings.max_batch_items,
        on_rejected=counts.rejected,
    )
    server = GrpcServer(
        host=settings.host,
        port=settings.port,
        register=lambda _server: None,
        handlers=[generic_handler(api)],
        service_names=[SERVICE_NAME],
        # Only adapters of this channel: the tenant of each event is checked by the API.
        security=settings.server_security(admit=admit_kind("adapter", channel=settings.channel)),
        # Exactly a full batch of the largest events: anything larger is refused by gRPC with
        # RESOURCE_EXHAUSTED before it is read into memory.
        max_receive_bytes=batch_request_bytes(settings.max_batch_items, settings.max_event_bytes),
    )
    streams = (INTERACTIONS_STREAM,)
    return IngestService(
        bus=bus,
        server=server,
        readiness=PublishReadiness(bus=bus, server=server, streams=streams),
        streams=streams,
        stream_wait_seconds=settings.stream_wait_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
    )
