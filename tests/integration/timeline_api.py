"""The timeline's gRPC API over a store and its core, on a free port, for tests that call it as
the gateway does (a service caller)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from services.timeline.api import TimelineApi
from services.timeline.bootstrap import Core
from services.timeline.stores import TimelineStore
from tests.grpc_credentials import CallerSet, channel_for
from tsunagu.grpc_auth import admit_kind
from tsunagu.rpc import GrpcServer
from tsunagu.v1 import timeline_pb2_grpc


@asynccontextmanager
async def serving_timeline(
    store: TimelineStore,
    core: Core,
    callers: CallerSet,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsyncIterator[timeline_pb2_grpc.TimelineServiceAsyncStub]:
    """A stub of the API, served for the block (Japanese phone numbers)."""
    api = TimelineApi(
        store, core.resolver, region_for=lambda _t: "JP", suggestions=core.suggestions, clock=clock
    )
    server = GrpcServer(
        host="127.0.0.1",
        port=0,
        register=lambda s: timeline_pb2_grpc.add_TimelineServiceServicer_to_server(api, s),
        service_names=["tsunagu.v1.TimelineService"],
        security=callers.security(admit_kind("service")),
    )
    await server.start()
    channel = channel_for(server.address, callers.service)
    try:
        yield timeline_pb2_grpc.TimelineServiceStub(channel)
    finally:
        await channel.close(grace=None)
        await server.stop(1)
