"""The stack every benchmark runs on, and waiting until the timeline stored given events."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from tsunagu.local.stack import LocalStack, StackPorts
from tsunagu.v1 import timeline_pb2, timeline_pb2_grpc


@asynccontextmanager
async def bench_stack(tenant: str) -> AsyncIterator[LocalStack]:
    """Real processes on free ports in a temporary directory: chat ingestion only.

    The gateway's development principal belongs to `tenant`, so GraphQL sees the
    benchmark's customers. MONGODB_URI, when set, replaces the embedded store.
    """
    with tempfile.TemporaryDirectory(prefix="tsunagu-bench-") as tmp:
        async with LocalStack(
            Path(tmp),
            ports=StackPorts.free(),
            channels=("chat",),
            mongodb_uri=os.environ.get("MONGODB_URI"),
            sink=lambda _name, _line: None,
            extra_env={"TSUNAGU_GATEWAY_DEV_TENANT": tenant},
        ) as stack:
            yield stack


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
            await asyncio.sleep(0.05)
    return owners
