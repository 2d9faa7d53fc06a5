"""Issue 12's export: one customer with thousands of interactions, exported as JSON and CSV.

Baseline: the least an export can do, reading every page of the same timeline straight from
the timeline's gRPC API (`ListInteractions`, 200 a page) without building anything. The
export (`exportCustomer` over GraphQL as a privacy officer) adds the profile, cases, merges,
the audit trail, the JSON and CSV documents and the audit record.
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from gql import GraphQLRequest

from bench.stack import chat_and_timeline, submit_batches, wait_stored
from bench.targets import Row
from tsunagu.local.graphql import http_session
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import interaction_pb2, timeline_pb2, timeline_pb2_grpc

EXPORT = """query ($id: ID!) { exportCustomer(customerId: $id, reason: "bench") {
  interactionCount document interactionsCsv } }"""
# The size ("a 10,000-interaction customer"); the quick run a smoke test of it.
FULL_SIZE = 10_000
QUICK_SIZE = 300
_RUNS = 3
_BATCH = 256
BOUND_S = 5.0


def size_for(events: int) -> int:
    """The customer's size for a run whose end-to-end measure has ``events`` (quick: small)."""
    return QUICK_SIZE if events < 1_000 else FULL_SIZE


def _message(tenant: str, visitor: str, at: datetime, n: int) -> interaction_pb2.Interaction:
    item = interaction_pb2.Interaction(
        event_id=str(uuid.uuid4()),
        tenant=tenant,
        channel=interaction_pb2.CHANNEL_CHAT,
        kind=interaction_pb2.KIND_MESSAGE,
        direction=interaction_pb2.DIRECTION_INBOUND,
        actor=interaction_pb2.Actor(type=interaction_pb2.ACTOR_TYPE_CUSTOMER),
        identifiers=[
            interaction_pb2.Identifier(
                kind=interaction_pb2.IDENTIFIER_KIND_CHAT_VISITOR, value=visitor
            )
        ],
        content=interaction_pb2.Content(text=f"message {n}: where is my parcel, it is late again"),
        chat=interaction_pb2.ChatDetail(session_id=f"s-{visitor}"),
    )
    item.occurred_at.FromDatetime(at)
    return item


async def _seed(stack: LocalStack, tenant: str, count: int) -> str:
    visitor = f"export-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=29) / max(1, count)
    items = [_message(tenant, visitor, start + i * step, i) for i in range(count)]
    async with chat_and_timeline(stack) as (ingest, timeline):
        # The customer exists before the rest arrives, so nothing is resolved concurrently.
        await submit_batches(ingest, items[:1], 1)
        await wait_stored(timeline, tenant, [items[0].event_id], limit_s=60)
        await submit_batches(ingest, items[1:], _BATCH)
        owners = await wait_stored(timeline, tenant, [i.event_id for i in items], limit_s=1800)
    customers = set(owners.values())
    if len(customers) != 1:
        raise RuntimeError(f"seeded interactions landed on {len(customers)} customers")
    return customers.pop()


async def _read_pages(
    timeline: timeline_pb2_grpc.TimelineServiceAsyncStub, tenant: str, customer: str
) -> int:
    read, after = 0, ""
    while True:
        page = await timeline.ListInteractions(
            timeline_pb2.ListInteractionsRequest(
                tenant=tenant, customer_id=customer, page_size=200, after=after
            )
        )
        read += len(page.entries)
        if not page.has_more:
            return read
        after = page.next_cursor


async def export_timing(stack: LocalStack, tenant: str, count: int) -> dict[str, Any]:
    """Seconds to export a ``count``-interaction customer, and to read its pages raw."""
    customer = await _seed(stack, tenant, count)
    raw, exported = [], []
    authorization = f"Bearer {stack.issuer.mint(tenant=tenant, roles=['privacy_officer'])}"
    async with (
        chat_and_timeline(stack) as (_, timeline),
        # Generous: the export is what is measured; a busy machine must not cut it off.
        http_session(
            stack.graphql_url, authorization=authorization, timeout_seconds=600
        ) as session,
    ):
        for _ in range(_RUNS):
            started = time.perf_counter()
            read = await _read_pages(timeline, tenant, customer)
            raw.append(time.perf_counter() - started)
            started = time.perf_counter()
            result = await session.execute(_request(customer))
            exported.append(time.perf_counter() - started)
    answer = result["exportCustomer"]
    return {
        "interactions": count,
        "read_raw": read,
        "exported": answer["interactionCount"],
        "document_bytes": len(answer["document"].encode()),
        "csv_bytes": len(answer["interactionsCsv"].encode()),
        "raw_pages_s": statistics.median(raw),
        "export_s": statistics.median(exported),
    }


def _request(customer: str) -> GraphQLRequest:
    return GraphQLRequest(EXPORT, variable_values={"id": customer})


def export_row(result: dict[str, Any]) -> Row:
    """The export's row of the table."""
    export = result["export"]
    seconds = export["export_s"]
    complete = export["exported"] == export["interactions"]
    return Row(
        f"export of a {export['interactions']:,}-interaction customer (JSON + CSV, issue 12)",
        f"{seconds:.2f} s ({export['document_bytes'] / 1e6:.1f} MB)",
        f"raw pages {export['raw_pages_s']:.2f} s",
        seconds / export["raw_pages_s"] if export["raw_pages_s"] else None,
        f"≤ {BOUND_S:.0f} s, complete",
        seconds <= BOUND_S and complete,
    )
