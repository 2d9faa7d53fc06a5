"""Wires the timeline service together: store, recorder, consumer and gRPC API."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import grpc
from nats.aio.client import Client
from pymongo import AsyncMongoClient, WriteConcern

from services.timeline.api import TimelineApi
from services.timeline.consumer import ConsumerOptions, InteractionConsumer
from services.timeline.identity.events import IdentityChangePublisher
from services.timeline.recorder import TimelineRecorder
from services.timeline.settings import TimelineSettings
from services.timeline.store import TimelineStore
from services.timeline.store.documents import Document
from tsunagu.bus.connection import connect
from tsunagu.bus.streams import require_streams
from tsunagu.bus.subjects import DEAD_LETTER_STREAM, IDENTITY_STREAM, INTERACTIONS_STREAM
from tsunagu.rpc import GrpcServer
from tsunagu.v1 import timeline_pb2, timeline_pb2_grpc

log = logging.getLogger(__name__)


class TimelineService:
    """The running timeline: `async with TimelineService(settings) as service:`.

    Start order: store (indexes, unfinished merges) → NATS (streams) → gRPC API → consumer.
    Stop order: health NOT_SERVING → consumer drains → gRPC drains → NATS → MongoDB.
    """

    def __init__(self, settings: TimelineSettings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self.store: TimelineStore
        self.recorder: TimelineRecorder
        self.consumer: InteractionConsumer
        self.server: GrpcServer
        self.nc: Client

    async def __aenter__(self) -> Self:
        s = self.settings
        try:
            mongo: AsyncMongoClient[Document] = AsyncMongoClient(
                s.mongodb_uri, tz_aware=True, serverSelectionTimeoutMS=10_000
            )
            self._stack.push_async_callback(mongo.close)
            db = mongo.get_database(
                s.mongodb_database, write_concern=WriteConcern(w=_write_concern(s))
            )
            self.store = TimelineStore(db)
            await self.store.ensure_indexes()
            self.nc = await connect(s.nats_url, name="tsunagu-timeline")
            self._stack.push_async_callback(self.nc.drain)
            js = self.nc.jetstream()
            # Provisioning (python -m tsunagu.bus.provision) owns the streams' configuration.
            await require_streams(js, (INTERACTIONS_STREAM, DEAD_LETTER_STREAM, IDENTITY_STREAM))
            self.recorder = TimelineRecorder(
                self.store,
                region_for=s.region_for,
                clock=lambda: datetime.now(UTC),
                identity_for=s.identity_for,
                case_policy_for=s.case_policy_for,
                announce_identity=IdentityChangePublisher(js),
            )
            merges = await self.recorder.resolver.complete_pending_merges()
            splits = await self.recorder.splitter.complete_pending_splits()
            if merges or splits:
                log.warning("finished %d merges and %d splits left half-done", merges, splits)

            api = TimelineApi(
                self.store,
                self.recorder.resolver,
                region_for=s.region_for,
                suggestions=self.recorder.suggestions,
            )

            def register(server: grpc.aio.Server) -> None:
                timeline_pb2_grpc.add_TimelineServiceServicer_to_server(api, server)

            self.server = GrpcServer(
                host=s.host,
                port=s.port,
                register=register,
                service_names=[
                    timeline_pb2.DESCRIPTOR.services_by_name["TimelineService"].full_name
                ],
            )
            await self.server.start()
            self._stack.push_async_callback(self.server.stop, s.shutdown_grace_seconds)

            self.consumer = InteractionConsumer(
                self.nc,
                js,
                self.recorder,
                options=ConsumerOptions(
                    durable=s.consumer_name,
                    subject_filter=s.subject_filter,
                    fetch_batch=s.fetch_batch,
                    max_ack_pending=s.max_ack_pending,
                    ack_wait_seconds=s.ack_wait_seconds,
                    max_deliver=s.max_deliver,
                ),
            )
            await self.consumer.start()
            self._stack.push_async_callback(self.consumer.stop, s.shutdown_grace_seconds)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    @property
    def failed(self) -> asyncio.Future[BaseException]:
        return self.consumer.failed

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()


def _write_concern(settings: TimelineSettings) -> int | str:
    value = settings.mongodb_write_concern
    return int(value) if value.isdigit() else value
