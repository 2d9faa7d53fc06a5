"""Wires (`bootstrap`) and runs (`InsightsService`) the insights service in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Self

import grpc
from nats.aio.client import Client

from services.insights.api import InsightsApi
from services.insights.at_risk_notices import AtRiskAnnouncer
from services.insights.case_index import CaseIndex
from services.insights.feed import FeedOptions, OutcomeFeed
from services.insights.projector import Changed, Projector
from services.insights.reader import MetricsReader
from services.insights.settings import InsightsSettings, now
from services.insights.solutions import Solutions
from services.insights.store import InsightsStore, open_store
from services.insights.timeline_reads import TimelineReads
from services.insights.voice import Voices
from services.insights.words import ReadMany, Words
from tsunagu.bus.connection import connect_as
from tsunagu.bus.streams import TIMELINE_OUTCOMES_STREAM, require_streams
from tsunagu.grpc_auth import admit_kind
from tsunagu.rpc import MAX_QUERY_REQUEST_BYTES, GrpcServer
from tsunagu.v1 import insights_pb2, insights_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = insights_pb2.DESCRIPTOR.services_by_name["InsightsService"].full_name


@dataclass(frozen=True, slots=True)
class Insights:
    """What the running service holds."""

    projector: Projector
    reader: MetricsReader
    server: GrpcServer


def bootstrap(
    settings: InsightsSettings,
    *,
    store: InsightsStore,
    read_many: ReadMany,
    changed: Changed | None = None,
    clock: Callable[[], float] = now,
) -> Insights:
    """Build the read model, its reader and the gRPC server (nothing starts here)."""
    index = CaseIndex(store)
    words = Words(read_many)
    voices = Voices(store, words)
    solutions = Solutions(store, words)
    projector = Projector(
        store,
        read_many=read_many,
        follow_up_due_seconds=settings.follow_up_due.total_seconds(),
        changed=changed,
        saved=index.put,
        voices=voices,
        solutions=solutions,
    )
    reader = MetricsReader(
        store,
        index=index,
        voices=voices,
        calendar_for=settings.calendar_for,
        targets_for=settings.targets_for,
        clock=clock,
    )
    api = InsightsApi(reader, voices, solutions)

    def register(server: grpc.aio.Server) -> None:
        insights_pb2_grpc.add_InsightsServiceServicer_to_server(api, server)

    server = GrpcServer(
        host=settings.host,
        port=settings.port,
        register=register,
        service_names=[SERVICE_NAME],
        max_receive_bytes=MAX_QUERY_REQUEST_BYTES,
        # Service identities only (the gateway); a caller limited to tenants names only those.
        security=settings.server_security(admit=admit_kind("service")),
    )
    return Insights(projector, reader, server)


class InsightsService:
    """The running service: `async with InsightsService(settings) as service:`.

    Start: store (indexes) → NATS (the outcomes mirror exists) → timeline reads → gRPC →
    feed. Stop: NOT_SERVING → feed drains → gRPC drains → NATS → store.
    """

    def __init__(self, settings: InsightsSettings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self.store: InsightsStore
        self.insights: Insights
        self.server: GrpcServer
        self.feed: OutcomeFeed
        self.nc: Client

    async def __aenter__(self) -> Self:
        s = self.settings
        try:
            mongo, self.store = open_store(s)
            self._stack.push_async_callback(mongo.close)
            await self.store.ensure_indexes()
            await self.store.drop_stored_words()
            self.nc = await connect_as(s, name="tsunagu-insights")
            self._stack.push_async_callback(self.nc.drain)
            js = self.nc.jetstream()
            await require_streams(
                js, (TIMELINE_OUTCOMES_STREAM,), wait_seconds=s.stream_wait_seconds
            )
            timeline = TimelineReads(
                s.timeline_address,
                token=s.timeline_token.get_secret_value(),
                timeout_seconds=s.timeline_timeout_seconds,
            )
            await self._stack.enter_async_context(timeline)
            self.insights = bootstrap(
                s,
                store=self.store,
                read_many=timeline.entries,
                changed=AtRiskAnnouncer(self.nc),
            )
            self.server = self.insights.server
            await self.server.start()
            self._stack.push_async_callback(self.server.stop, s.shutdown_grace_seconds)
            self.feed = OutcomeFeed(
                js,
                self.insights.projector,
                options=FeedOptions(
                    durable=s.consumer_name,
                    subject_filter=s.subject_filter,
                    fetch_batch=s.fetch_batch,
                    linger_seconds=s.feed_linger_seconds,
                    ack_wait_seconds=s.ack_wait_seconds,
                    max_deliver=s.max_deliver,
                ),
                readiness=self.server.set_ready,
            )
            await self.feed.start()
            self._stack.push_async_callback(self.feed.stop, s.shutdown_grace_seconds)
            self._stack.push_async_callback(self.server.not_serving)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    @property
    def failed(self) -> asyncio.Future[BaseException]:
        return self.feed.failed

    async def __aexit__(self, *_exc_info: object) -> None:
        await self._stack.aclose()
