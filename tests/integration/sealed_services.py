"""The timeline and some ingestion channels sharing one key file, with stubs to call them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from tests.grpc_credentials import CallerSet, channel_for
from tsunagu.v1 import erasure_pb2_grpc, ingest_pb2_grpc, timeline_pb2_grpc

Starter = Callable[..., AbstractAsyncContextManager[Any]]


@dataclass
class Services:
    """Stubs of the running services; `ingest[channel]` for each channel started."""

    timeline_address: str
    timeline: timeline_pb2_grpc.TimelineServiceAsyncStub
    erasure: erasure_pb2_grpc.ErasureServiceAsyncStub
    ingest: dict[str, ingest_pb2_grpc.IngestServiceAsyncStub] = field(default_factory=dict)


@asynccontextmanager
async def sealed_services(
    *,
    run_timeline: Starter,
    run_ingest: Starter,
    callers: CallerSet,
    key_file: Path | None,
    channels: tuple[str, ...] = ("chat",),
) -> AsyncIterator[Services]:
    """Start them with encryption on (`key_file`), or off (None: the plaintext control)."""
    keys: dict[str, Any] = {} if key_file is None else {"key_file": key_file}
    async with AsyncExitStack() as stack:
        timeline = await stack.enter_async_context(run_timeline(**keys))
        opened: list[grpc.aio.Channel] = []

        def channel(address: str, token: str) -> grpc.aio.Channel:
            opened.append(channel_for(address, token))
            return opened[-1]

        to_timeline = channel(timeline.server.address, callers.service)
        services = Services(
            timeline_address=timeline.server.address,
            timeline=timeline_pb2_grpc.TimelineServiceStub(to_timeline),
            erasure=erasure_pb2_grpc.ErasureServiceStub(to_timeline),
        )
        for name in channels:
            ingest = await stack.enter_async_context(run_ingest(name, **keys))
            services.ingest[name] = ingest_pb2_grpc.IngestServiceStub(
                channel(ingest.server.address, callers.adapter(name))
            )
        try:
            yield services
        finally:
            for each in opened:
                await each.close(grace=None)
