"""The stack every benchmark runs on: submitting through it, waiting until events are stored."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import grpc

from bench.usage import counts_env
from tsunagu.grpc_channels import open_channel
from tsunagu.local.stack import LocalStack, StackPorts
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc, interaction_pb2, timeline_pb2, timeline_pb2_grpc

# The benchmarks' tenant: the stack's chat adapter and tools tokens are issued for it.
TENANT = "bench"
# Between two `LookupEvents` polls. Each poll is a read of the store the rate is bound by
# (and of the customers' merge pointers): at 20 polls/s they were a fifth of the store's
# commands in a 400 events/s run. A rate is then timed to within this, on runs of 10 s and more.
POLL_SECONDS = 0.2


@asynccontextmanager
async def bench_stack() -> AsyncIterator[LocalStack]:
    """Real processes on free ports in a temporary directory: chat ingestion only.

    GraphQL callers authenticate with `stack.issuer.mint(tenant=..., roles=...)`, a token of
    the benchmark's tenant. MONGODB_URI, when set, replaces the embedded store. The timeline
    counts its store commands into the data directory (`bench.usage` reads them).
    """
    with tempfile.TemporaryDirectory(prefix="tsunagu-bench-") as tmp:
        async with LocalStack(
            Path(tmp),
            extra_env=counts_env(Path(tmp)),
            ports=StackPorts.free(),
            channels=("chat",),
            mongodb_uri=os.environ.get("MONGODB_URI"),
            sink=lambda _name, _line: None,
            adapter_tenants=(TENANT,),
        ) as stack:
            yield stack


@asynccontextmanager
async def chat_and_timeline(
    stack: LocalStack,
) -> AsyncIterator[
    tuple[ingest_pb2_grpc.IngestServiceAsyncStub, timeline_pb2_grpc.TimelineServiceAsyncStub]
]:
    """gRPC stubs of the stack's chat ingestion and of its timeline, with their tokens."""
    async with (
        chat_channel(stack) as ingest,
        open_channel(stack.timeline_address, token=stack.grpc_callers.tools) as timeline,
    ):
        yield (
            ingest_pb2_grpc.IngestServiceStub(ingest),
            timeline_pb2_grpc.TimelineServiceStub(timeline),
        )


def chat_channel(stack: LocalStack) -> grpc.aio.Channel:
    """A channel to the stack's chat ingestion as its chat adapter."""
    return open_channel(stack.ingest_addresses["chat"], token=stack.grpc_callers.adapter("chat"))


async def wait_stored(
    timeline: timeline_pb2_grpc.TimelineServiceAsyncStub,
    tenant: str,
    event_ids: Sequence[str],
    *,
    limit_s: float,
) -> dict[str, str]:
    """Poll `LookupEvents` until every event is stored; event id → customer id."""
    deadline = time.perf_counter() + limit_s
    owners: dict[str, str] = {}
    pending = list(event_ids)
    while pending:
        chunk = pending[:500]
        found = await timeline.LookupEvents(
            timeline_pb2.LookupEventsRequest(tenant=tenant, event_ids=chunk)
        )
        owners.update({f.event_id: f.customer_id for f in found.found})
        pending = [e for e in pending if e not in owners]
        if pending and time.perf_counter() > deadline:
            raise TimeoutError(f"{len(pending)} events not stored in {limit_s}s")
        if len(found.found) < len(chunk):
            await asyncio.sleep(POLL_SECONDS)
    return owners


async def submit_batches(
    ingest: ingest_pb2_grpc.IngestServiceAsyncStub,
    items: Sequence[interaction_pb2.Interaction],
    batch: int,
) -> None:
    """`SubmitBatch` the items `batch` at a time; raises if any is not accepted."""
    for offset in range(0, len(items), batch):
        response = await ingest.SubmitBatch(
            ingest_pb2.SubmitBatchRequest(interactions=items[offset : offset + batch])
        )
        refused = [
            r for r in response.results if r.status != ingest_pb2.SubmitResult.STATUS_ACCEPTED
        ]
        if refused:
            raise RuntimeError(f"SubmitBatch refused: {refused[:3]}")
