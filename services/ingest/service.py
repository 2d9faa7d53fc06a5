"""Wires one channel's ingestion service: NATS publisher and the gRPC API."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from services.ingest.api import SERVICE_NAME, IngestApi, generic_handler
from services.ingest.pipeline import IngestPolicy
from services.ingest.settings import IngestSettings
from tsunagu.bus.connection import connect
from tsunagu.bus.publisher import InteractionPublisher
from tsunagu.bus.streams import StreamLimits, ensure_streams
from tsunagu.rpc import GrpcServer


class IngestService:
    """`async with IngestService(settings) as service:` serves until the block ends.

    Stop order: health NOT_SERVING → in-flight calls finish (their PubAcks included) → NATS.
    """

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self.server: GrpcServer

    async def __aenter__(self) -> Self:
        s = self.settings
        try:
            nc = await connect(s.nats_url, name=f"tsunagu-ingest-{s.channel}")
            self._stack.push_async_callback(nc.drain)
            js = nc.jetstream()
            await ensure_streams(
                js,
                StreamLimits(
                    replicas=s.stream_replicas,
                    duplicate_window_seconds=s.duplicate_window_seconds,
                ),
            )
            api = IngestApi(
                InteractionPublisher(js, ack_timeout=s.publish_ack_timeout_seconds),
                policy=IngestPolicy(
                    channel=s.channel_number,
                    default_region=s.default_region,
                    tenant_regions=s.tenant_regions,
                    max_text_bytes=s.max_text_bytes,
                    max_event_bytes=s.max_event_bytes,
                ),
                clock=lambda: datetime.now(UTC),
                max_batch_items=s.max_batch_items,
            )
            self.server = GrpcServer(
                host=s.host,
                port=s.port,
                register=lambda _server: None,
                handlers=[generic_handler(api)],
                service_names=[SERVICE_NAME],
            )
            await self.server.start()
            self._stack.push_async_callback(self.server.stop, s.shutdown_grace_seconds)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
