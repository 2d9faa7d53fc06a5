"""One channel's running ingestion service: the order its parts start and stop in."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack

from services.ingest.readiness import PublishReadiness
from tsunagu.bus.connection import NatsConnection
from tsunagu.bus.streams import require_streams
from tsunagu.lifecycle import Lifecycle
from tsunagu.rpc import GrpcServer


class IngestService(Lifecycle):
    """`async with bootstrap(settings) as service:` serves until the block ends.

    Start order: NATS → the streams it publishes to exist → gRPC API (health SERVING) →
    readiness follows NATS and the streams from then on (`readiness`).
    Stop order: health NOT_SERVING → in-flight calls finish (their PubAcks included) → NATS.
    """

    def __init__(
        self,
        *,
        bus: NatsConnection,
        server: GrpcServer,
        readiness: PublishReadiness,
        streams: Sequence[str],
        stream_wait_seconds: float,
        shutdown_grace_seconds: float,
    ) -> None:
        self.bus = bus
        self.server = server
        self.readiness = readiness
        self._streams = tuple(streams)
        self._stream_wait = stream_wait_seconds
        self._grace = shutdown_grace_seconds
        self._stack = AsyncExitStack()

    async def open(self) -> None:
        try:
            await self.bus.open()
            self._stack.push_async_callback(self.bus.close)
            await require_streams(self.bus.jetstream, self._streams, wait_seconds=self._stream_wait)
            await self.server.start()
            self._stack.push_async_callback(self.server.stop, self._grace)
            await self.readiness.open()
            self._stack.push_async_callback(self.readiness.close)
        except BaseException:
            await self._stack.aclose()
            raise

    async def close(self) -> None:
        await self._stack.aclose()
