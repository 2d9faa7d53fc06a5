"""Starts and stops the timeline service in order; `bootstrap` builds what it runs."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Self

from nats.aio.client import Client

from services.timeline.bootstrap import Timeline, bootstrap
from services.timeline.consumer import InteractionConsumer
from services.timeline.recorder import TimelineRecorder
from services.timeline.settings import TimelineSettings
from services.timeline.stores import TimelineStore, open_store
from tsunagu.bus.connection import connect_as
from tsunagu.bus.streams import require_streams
from tsunagu.bus.subjects import DEAD_LETTER_STREAM, IDENTITY_STREAM, INTERACTIONS_STREAM
from tsunagu.rpc import GrpcServer

log = logging.getLogger(__name__)


class TimelineService:
    """The running timeline: `async with TimelineService(settings) as service:`.

    Start order: store (indexes) → NATS (streams) → unfinished merges and splits (they
    announce identity changes on JetStream, so after NATS) → gRPC API → consumer.
    Stop order: health NOT_SERVING → consumer drains → gRPC drains → NATS → MongoDB.
    While running, readiness (health of `tsunagu.v1.TimelineService`) is NOT_SERVING whenever
    the consumer holds its messages through a store or NATS outage; liveness (`""`) stays
    SERVING until shutdown.
    """

    def __init__(self, settings: TimelineSettings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self.store: TimelineStore
        self.timeline: Timeline
        self.server: GrpcServer
        self.nc: Client

    @property
    def recorder(self) -> TimelineRecorder:
        return self.timeline.core.recorder

    @property
    def consumer(self) -> InteractionConsumer:
        return self.timeline.consumer

    async def __aenter__(self) -> Self:
        s = self.settings
        try:
            mongo, self.store = open_store(s)
            self._stack.push_async_callback(mongo.close)
            await self.store.ensure_indexes()
            self.nc = await connect_as(s, name="tsunagu-timeline")
            self._stack.push_async_callback(self.nc.drain)
            js = self.nc.jetstream()
            # Provisioning (python -m tsunagu.bus.provision) owns the streams' configuration.
            await require_streams(
                js,
                (INTERACTIONS_STREAM, DEAD_LETTER_STREAM, IDENTITY_STREAM),
                wait_seconds=s.stream_wait_seconds,
            )
            self.timeline = bootstrap(s, store=self.store, bus=self.nc)
            merges, splits = await self.timeline.core.finish_interrupted()
            if merges or splits:
                log.warning("finished %d merges and %d splits left half-done", merges, splits)

            self.server = self.timeline.server
            await self.server.start()
            self._stack.push_async_callback(self.server.stop, s.shutdown_grace_seconds)
            await self.consumer.start()
            self._stack.push_async_callback(self.consumer.stop, s.shutdown_grace_seconds)
            await self._stack.enter_async_context(self.timeline.gauges)
            await self._stack.enter_async_context(self.timeline.retention)
            # Runs first on the way out: balancers stop sending reads while the consumer drains.
            self._stack.push_async_callback(self.server.not_serving)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    @property
    def failed(self) -> asyncio.Future[BaseException]:
        return self.consumer.failed

    async def __aexit__(self, *_exc_info: object) -> None:
        await self._stack.aclose()
