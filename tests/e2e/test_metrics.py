"""Every process's /metrics, scraped over HTTP after real traffic, moves as the traffic did."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import httpx
import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from tests import builders
from tests.e2e.agent_desk import TENANT, execute, found, http_session, submit, ws_session
from tests.scrape import Scrape, scrape, scrape_until
from tsunagu.bus.connection import connect
from tsunagu.bus.subjects import DEAD_LETTER_STREAM, INTERACTIONS_STREAM, interaction_subject
from tsunagu.grpc_channels import open_channel
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc, interaction_pb2

EVENTS = "tsunagu_ingest_events_total"
STORED = "tsunagu_timeline_freshness_stored_seconds_count"
ANNOUNCED = "tsunagu_timeline_freshness_announced_seconds_count"
OPERATIONS = "tsunagu_graphql_operation_duration_seconds_count"
ACTIVE = "tsunagu_graphql_subscriptions_active"
PUSHES = "tsunagu_graphql_subscription_pushes_total"

CUSTOMER = """
query Customer($visitor: String!) {
  customerByIdentifier(kind: CHAT_VISITOR, value: $visitor) { id }
}
"""
LIVE = """
subscription Live($customerId: ID!) {
  timelineUpdated(customerId: $customerId) { eventId }
}
"""


def _delta(after: Scrape, before: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


async def _answer(stack: LocalStack, interaction: interaction_pb2.Interaction) -> str:
    """What ingest-chat answers a Submit: the result's status, or the gRPC error code."""
    token = stack.grpc_callers.adapter("chat")
    async with open_channel(stack.ingest_addresses["chat"], token=token) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        try:
            response = await stub.Submit(ingest_pb2.SubmitRequest(interaction=interaction))
        except grpc.aio.AioRpcError as error:
            return str(error.code().name)
    return ingest_pb2.SubmitResult.Status.Name(response.result.status)


def test_every_process_printed_its_metrics_url(stack: LocalStack) -> None:
    assert set(stack.metrics.urls) == {
        "timeline",
        "insights",
        "gateway",
        *(f"ingest-{channel}" for channel in stack.channels),
    }


async def test_ingest_and_timeline_count_the_events_sent(stack: LocalStack) -> None:
    ingest_url = stack.metrics.urls["ingest-chat"]
    timeline_url = stack.metrics.urls["timeline"]
    # Earlier tests' events are all stored: nothing pending, nothing in flight.
    idle = await scrape_until(
        timeline_url,
        lambda s: (
            s.has("tsunagu_timeline_consumer_pending", consumer="timeline")
            and s.value("tsunagu_timeline_consumer_pending") == 0
            and s.value("tsunagu_timeline_consumer_ack_pending") == 0
        ),
    )
    ingest_before = await scrape(ingest_url)

    events = [builders.chat(TENANT, visitor=f"metrics-{i}") for i in range(3)]
    for event in events:
        await submit(stack, "chat", event)
    assert await _answer(stack, events[0]) == "STATUS_DUPLICATE"  # a retry
    nameless = builders.chat(TENANT)
    nameless.event_id = ""
    assert await _answer(stack, nameless) == "INVALID_ARGUMENT"

    ingest = await scrape(ingest_url)
    assert _delta(ingest, ingest_before, EVENTS, channel="chat", outcome="accepted") == 3
    assert _delta(ingest, ingest_before, EVENTS, channel="chat", outcome="duplicate") == 1
    refused = {"outcome": "rejected", "reason": "event_id_invalid"}
    assert _delta(ingest, ingest_before, EVENTS, channel="chat", **refused) == 1
    publishes = "tsunagu_ingest_publish_duration_seconds_count"
    assert _delta(ingest, ingest_before, publishes, channel="chat") == 4  # the refused one never

    # JetStream drops the retry by its message id: the timeline sees three events.
    timeline = await scrape_until(
        timeline_url,
        lambda s: _delta(s, idle, ANNOUNCED) >= 3 and _delta(s, idle, STORED) >= 3,
    )
    assert _delta(timeline, idle, STORED) == 3
    assert _delta(timeline, idle, ANNOUNCED) == 3
    assert _delta(timeline, idle, "tsunagu_timeline_batch_size_sum") == 3
    assert _delta(timeline, idle, "tsunagu_timeline_batch_duration_seconds_count") >= 1
    assert (
        _delta(timeline, idle, "tsunagu_store_command_duration_seconds_count", command="insert")
        >= 1
    )
    assert timeline.value("tsunagu_timeline_dead_letter_depth") == 0


async def test_gateway_times_operations_counts_errors_and_follows_subscriptions(
    stack: LocalStack,
) -> None:
    url = stack.metrics.urls["gateway"]
    visitor = "metrics-live"
    await submit(stack, "chat", builders.chat(TENANT, visitor=visitor))
    async with http_session(stack) as agent:
        customer_id = (await found(agent, CUSTOMER, visitor=visitor))["customerByIdentifier"]["id"]
        before = await scrape(url)
        await execute(agent, CUSTOMER, visitor=visitor)
        with pytest.raises(TransportQueryError):
            await execute(agent, "query Nope { nope }")
    # A document that does not parse (gql would refuse to send it): no operation type.
    token = stack.issuer.mint(tenant=TENANT, roles=["agent"])
    async with httpx.AsyncClient(timeout=10) as client:
        unparsed = await client.post(
            stack.graphql_url,
            json={"query": "{ customer("},
            headers={"authorization": f"Bearer {token}"},
        )
    assert unparsed.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    after = await scrape(url)
    assert _delta(after, before, OPERATIONS, operation="query") == 2
    assert _delta(after, before, OPERATIONS, operation="unknown") == 1
    errors = "tsunagu_graphql_errors_total"
    assert _delta(after, before, errors, code="GRAPHQL_VALIDATION_FAILED", operation="query") == 1
    assert _delta(after, before, errors, code="GRAPHQL_PARSE_FAILED", operation="unknown") == 1

    async with ws_session(stack) as live:
        updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def listen() -> None:
            request = GraphQLRequest(LIVE, variable_values={"customerId": customer_id})
            async for update in live.subscribe(request):
                await updates.put(update["timelineUpdated"])

        listener = asyncio.create_task(listen())
        try:
            await scrape_until(url, lambda s: s.value(ACTIVE) == before.value(ACTIVE) + 1)
            sent = 0
            received = None
            # The gauge rises as the operation starts, a moment before it follows the customer:
            # send again should the first event fall into that moment.
            while received is None and sent < 5:
                sent += 1
                await submit(stack, "chat", builders.chat(TENANT, visitor=visitor))
                try:
                    received = await asyncio.wait_for(updates.get(), timeout=5)
                except TimeoutError:
                    continue
            assert received is not None, "the subscription never pushed"
        finally:
            listener.cancel()
    pushed = await scrape_until(url, lambda s: s.value(ACTIVE) == before.value(ACTIVE))
    assert 1 <= _delta(pushed, before, PUSHES) <= sent


async def test_timeline_counts_dead_letters_by_reason_and_shows_the_depth(
    stack: LocalStack,
) -> None:
    url = stack.metrics.urls["timeline"]
    depth = "tsunagu_timeline_dead_letter_depth"
    before = await scrape_until(url, lambda s: s.has(depth))
    nc = await connect(stack.nats_url, name="tests-metrics")
    try:
        js = nc.jetstream()
        # Not an Interaction at all: only a producer that bypasses ingestion could send it.
        subject = interaction_subject(TENANT, interaction_pb2.CHANNEL_CHAT)
        await js.publish(subject, b"\xff not protobuf", stream=INTERACTIONS_STREAM)
        after = await scrape_until(url, lambda s: s.value(depth) == before.value(depth) + 1)
        dead = "tsunagu_timeline_dead_letters_total"
        assert _delta(after, before, dead, reason="malformed") == 1
        assert _delta(after, before, dead) == 1
        # Replayed or deleted by an operator: the depth falls back.
        info = await js.stream_info(DEAD_LETTER_STREAM)
        await js.delete_msg(DEAD_LETTER_STREAM, info.state.last_seq)
        await scrape_until(url, lambda s: s.value(depth) == before.value(depth))
    finally:
        await nc.drain()
