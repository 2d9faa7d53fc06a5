"""Real processes keep their spans as `make run` does; one event's trace reads back whole."""

from __future__ import annotations

import asyncio
import sys

import pytest
from gql import GraphQLRequest

from tests import builders
from tests.e2e.agent_desk import (
    POLL_SECONDS,
    execute,
    http_session,
    submit,
    unique_phone,
    ws_session,
)
from tsunagu.local.stack import LocalStack
from tsunagu.local.traces import Span, read_spans, spans_of_event

TENANT = "demo"
TEXT = "the courier left my parcel at 4417"

SCREEN_POP = "query ($v: String!) { customerByIdentifier(kind: PHONE, value: $v) { id } }"
LIVE = "subscription ($id: ID!) { timelineUpdated(customerId: $id) { eventId } }"

# The spans one pushed event leaves in each process's file, as (service, name).
EXPECTED = {
    ("tsunagu-ingest-chat", "/tsunagu.v1.IngestService/Submit"),
    ("tsunagu-ingest-chat", "interactions publish"),
    ("tsunagu-timeline", "interactions process"),
    ("tsunagu-timeline", "interaction settle"),
    ("tsunagu-timeline", "timeline.updated publish"),
    ("tsunagu-gateway", "subscription push"),
}


async def _customer_of(stack: LocalStack, phone: str) -> str:
    async with http_session(stack) as session:
        async with asyncio.timeout(30):  # generous: two cores shared by many test runs
            while True:
                found = (await execute(session, SCREEN_POP, v=phone))["customerByIdentifier"]
                if found is not None:
                    return str(found["id"])
                await asyncio.sleep(POLL_SECONDS)  # within the gateway's rate limit


async def _pushed_event(stack: LocalStack, customer_id: str, visitor: str) -> str:
    """Write in the chat until the customer's subscription pushes; the pushed event's id."""
    async with ws_session(stack) as live:
        updates: asyncio.Queue[str] = asyncio.Queue()

        async def listen() -> None:
            request = GraphQLRequest(LIVE, variable_values={"id": customer_id})
            async for update in live.subscribe(request):
                await updates.put(update["timelineUpdated"]["eventId"])

        listener = asyncio.create_task(listen())
        try:
            # No protocol message says "subscribed": resend until the first push arrives.
            for _ in range(20):
                await submit(stack, "chat", builders.chat(TENANT, visitor=visitor, text=TEXT))
                try:
                    return await asyncio.wait_for(updates.get(), timeout=1)
                except TimeoutError:
                    continue
        finally:
            listener.cancel()
    pytest.fail("the subscription never pushed")


async def _spans_until_complete(stack: LocalStack, event_id: str) -> list[Span]:
    async with asyncio.timeout(30):
        while True:
            spans = spans_of_event(read_spans(stack.data_dir / "traces"), event_id)
            if {(s.service, s.name) for s in spans} >= EXPECTED:
                return spans
            await asyncio.sleep(0.1)


async def test_one_pushed_event_is_one_trace_across_the_processes_files(
    stack: LocalStack,
) -> None:
    suffix, phone = unique_phone("090-66")
    visitor = f"v-trace-{suffix}"
    await submit(stack, "chat", builders.chat(TENANT, visitor=visitor, phone=phone, text=TEXT))
    event_id = await _pushed_event(stack, await _customer_of(stack, phone), visitor)

    spans = await _spans_until_complete(stack, event_id)

    own = {s.trace_id for s in spans if s.name != "interactions process"}
    assert len(own) == 1, "ingest, timeline and gateway spans of the event share one trace"
    batch = next(s for s in spans if s.name == "interactions process")
    publish = next(s for s in spans if s.name == "interactions publish")
    assert publish.span_id in {link["span_id"] for link in batch.links}

    printed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tsunagu.local",
        "trace",
        event_id,
        "--data-dir",
        str(stack.data_dir),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await printed.communicate()
    assert printed.returncode == 0
    waterfall = out.decode()
    assert waterfall.startswith(f"event {event_id}: ")
    for service, name in EXPECTED:
        assert any(service in line and name in line for line in waterfall.splitlines()), name
    recorded = waterfall + " ".join(str(s.attributes) for s in spans)
    # The number as typed, and its national digits (E.164 ends in them).
    for personal in (phone, phone.replace("-", "")[1:], "parcel", "courier"):
        assert personal not in recorded
