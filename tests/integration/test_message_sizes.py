"""gRPC message limits agree end to end: ingest takes a full batch, the gateway reads every page.

Issue 9, finding 8: ingest and the timeline accepted 16 MiB messages and the gateway's client
4 MiB, so nine valid 474 KiB web forms made a customer's default timeline page fail with
RESOURCE_EXHAUSTED. Real timeline, real ingestion, the gateway's own timeline client.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from gateway.timeline_client import TimelineClient
from tests import builders
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.test_ingest_to_timeline import wait_for_events
from tsunagu.contracts.limits import MAX_EVENT_BYTES, MAX_TEXT_BYTES
from tsunagu.v1 import (
    ingest_pb2,
    ingest_pb2_grpc,
    interaction_pb2,
    timeline_pb2,
    timeline_pb2_grpc,
)

Starter = Callable[..., AbstractAsyncContextManager[Any]]
pb = interaction_pb2

EMAIL = "sizes@example.com"
# More of the largest events than one response can carry, and than gRPC's default 4 MiB.
EVENTS = 20


def largest_form(tenant: str, minutes_ago: int) -> pb.Interaction:
    """A valid web form within a few KiB of the contract's event limit."""
    form = builders._base(
        tenant,
        pb.CHANNEL_WEB,
        pb.KIND_FORM_SUBMISSION,
        datetime.now(UTC) - timedelta(minutes=minutes_ago),
    )
    form.identifiers.append(pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=EMAIL))
    form.web_form.form_id = "contact"
    form.content.text = "Contact form"
    value = MAX_TEXT_BYTES - 64
    while form.ByteSize() + value + 64 < MAX_EVENT_BYTES - 8 * 1024:
        form.web_form.fields.add(name=f"field{len(form.web_form.fields)}", value="x" * value)
    rest = MAX_EVENT_BYTES - 8 * 1024 - form.ByteSize() - 64
    form.web_form.fields.add(name="rest", value="y" * rest)
    assert MAX_EVENT_BYTES - 16 * 1024 < form.ByteSize() < MAX_EVENT_BYTES
    return form


async def test_a_timeline_of_the_largest_events_pages_through_the_gateway_client(
    run_timeline: Starter, run_ingest: Starter, tenant: str, callers: CallerSet
) -> None:
    forms = [largest_form(tenant, minutes_ago=EVENTS - i) for i in range(EVENTS)]
    async with (
        run_timeline() as timeline,
        run_ingest("web") as web,
        channel_for(web.server.address, callers.adapter("web")) as ingest_channel,
        channel_for(timeline.server.address, callers.service) as timeline_channel,
        TimelineClient(
            address=timeline.server.address, timeout_seconds=30, token=callers.service
        ) as client,
    ):
        ingest = ingest_pb2_grpc.IngestServiceStub(ingest_channel)
        for form in forms:
            result = (await ingest.Submit(ingest_pb2.SubmitRequest(interaction=form))).result
            assert result.status == ingest_pb2.SubmitResult.STATUS_ACCEPTED, result.reason
        timeline_stub = timeline_pb2_grpc.TimelineServiceStub(timeline_channel)
        stored = await wait_for_events(timeline_stub, tenant, [f.event_id for f in forms])
        (customer_id,) = set(stored.values())

        seen: list[str] = []
        after = None
        pages = 0
        while True:
            # The gateway's default timeline page asks for 20: far more than fit in bytes.
            page = await client.list_interactions(tenant, customer_id, page_size=20, after=after)
            assert page is not None
            assert page.entries, "a page with more to come is never empty"
            seen += [e.interaction.event_id for e in page.entries]
            if not pages:
                assert page.ByteSize() > 4 * 1024 * 1024, "beyond gRPC's default receive limit"
            pages += 1
            if not page.has_more:
                break
            after = page.next_cursor
        assert pages > 1, "the byte budget stops the first page early"
        assert seen == [f.event_id for f in reversed(forms)], "each event once, newest first"

        # By-id reads cannot page: more than fits is refused plainly, not cut short silently.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await timeline_stub.GetInteractions(
                timeline_pb2.GetInteractionsRequest(tenant=tenant, event_ids=seen)
            )
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "ask for fewer" in (refused.value.details() or "")


async def test_ingest_takes_a_full_batch_and_refuses_a_larger_one_and_keeps_serving(
    run_ingest: Starter, tenant: str, callers: CallerSet
) -> None:
    async with (
        run_ingest("web", max_batch_items=2) as web,
        channel_for(web.server.address, callers.adapter("web")) as web_channel,
    ):
        ingest = ingest_pb2_grpc.IngestServiceStub(web_channel)
        full = ingest_pb2.SubmitBatchRequest(
            interactions=[largest_form(tenant, minutes_ago=i) for i in (3, 2)]
        )
        response = await ingest.SubmitBatch(full)
        assert [r.status for r in response.results] == [ingest_pb2.SubmitResult.STATUS_ACCEPTED] * 2

        oversized = ingest_pb2.SubmitBatchRequest(
            interactions=[largest_form(tenant, minutes_ago=i) for i in (6, 5, 4)]
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ingest.SubmitBatch(oversized)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in (refused.value.details() or "")

        after = largest_form(tenant, minutes_ago=1)
        result = (await ingest.Submit(ingest_pb2.SubmitRequest(interaction=after))).result
        assert result.status == ingest_pb2.SubmitResult.STATUS_ACCEPTED, result.reason
