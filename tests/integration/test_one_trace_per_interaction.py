"""One trace per interaction: adapter → ingest → JetStream → timeline → MongoDB → notice → push.

The three services run in this process with real servers (gRPC ingest, nats-server, the
MongoDB-wire store, the timeline's consumer, the gateway over HTTP and WebSocket) and share
one in-memory span exporter, as separate processes share one collector.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from gateway.app import bootstrap
from gateway.bus import GatewayBus
from gateway.server import create_server
from tests import builders
from tests.action_keys import session_action_keys
from tests.grpc_credentials import CallerSet, channel_for
from tests.identity_provider import identity_provider
from tests.integration.test_ingest_to_timeline import submit, wait_for_events
from tests.unit.test_gateway_http import IDP
from tsunagu.local.processes import NatsServer
from tsunagu.telemetry import instrument_libraries
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc, timeline_pb2_grpc

Starter = Callable[..., AbstractAsyncContextManager[Any]]

PHONE = "090-7777-1234"
PHONE_DIGITS = "7777"  # in every form the number takes: as typed, E.164, digits only
EMAIL = "hanako.trace@example.com"
NAME = "Trace Hanako"
TEXT = "my parcel 4417 never arrived"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process finishes during the test, with gRPC instrumented."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentors = instrument_libraries()
    try:
        yield exporter
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        exporter.shutdown()  # later tests' spans are dropped, not kept in memory


@asynccontextmanager
async def gateway(
    nats_server: NatsServer, timeline_address: str, timeline_token: str
) -> AsyncIterator[tuple[str, GatewayBus]]:
    """The gateway under uvicorn against the real timeline; yields its GraphQL URL and bus."""
    async with identity_provider(IDP):
        config = IDP.settings(
            port=0,
            timeline_address=timeline_address,
            nats_url=nats_server.url,
            grpc_timeout_seconds=10.0,
            timeline_token=SecretStr(timeline_token),
        )
        bus = GatewayBus(
            url=nats_server.url, publish_timeout_seconds=5, signer=session_action_keys().signer
        )
        async with create_server(bootstrap(config, bus=bus), config) as server:
            yield server.graphql_url, bus


async def push_of(
    gateway: tuple[str, GatewayBus], token: str, customer_id: str, submit_event: Any
) -> dict[str, Any]:
    """Subscribe to the customer's timeline, run `submit_event`, return the push it causes."""
    url, bus = gateway
    ws_url = url.replace("http://", "ws://")
    async with connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as socket:
        init = {"type": "connection_init", "payload": {"authorization": token}}
        await socket.send(json.dumps(init))
        assert json.loads(await socket.recv()) == {"type": "connection_ack"}
        query = f'subscription {{ timelineUpdated(customerId: "{customer_id}") {{ eventId }} }}'
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        async with asyncio.timeout(30):  # generous: two cores shared by many test runs
            while bus.active_followers != 1:  # noqa: ASYNC110 - a counter the gateway owns
                await asyncio.sleep(0.02)
            await submit_event()
            message: dict[str, Any] = json.loads(await socket.recv())
        return message


def _hex(span: ReadableSpan) -> tuple[int, int]:
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


def _one(found: list[ReadableSpan], what: str) -> ReadableSpan:
    assert len(found) == 1, f"expected one {what}, got {[s.name for s in found]}"
    return found[0]


async def _spans_until(
    exporter: InMemorySpanExporter, done: Callable[[list[ReadableSpan]], bool]
) -> list[ReadableSpan]:
    async with asyncio.timeout(30):
        while not done(list(exporter.get_finished_spans())):  # noqa: ASYNC110 - spans end in other tasks
            await asyncio.sleep(0.05)
    return list(exporter.get_finished_spans())


def _with_event(spans: list[ReadableSpan], name: str, event_id: str) -> list[ReadableSpan]:
    return [
        s
        for s in spans
        if s.name == name and (s.attributes or {}).get("tsunagu.event_id") == event_id
    ]


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    """The span's parent, grandparent, ... as far as they were recorded."""
    found = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        found.append(span)
    return found


def _child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return span.parent is not None and span.parent.span_id == _hex(parent)[1]


async def test_one_event_is_one_trace_from_the_adapter_to_the_agents_screen(
    *,
    spans: InMemorySpanExporter,
    run_timeline: Starter,
    run_ingest: Starter,
    nats_server: NatsServer,
    tenant: str,
    callers: CallerSet,
) -> None:
    token = IDP.bearer(tenant=tenant, subject="agent-7")
    first = builders.chat(tenant, phone=PHONE, email=EMAIL, name=NAME, text=TEXT)
    second = builders.chat(tenant, phone=PHONE, email=EMAIL, name=NAME, text=TEXT)
    async with (
        run_timeline() as timeline,
        run_ingest("chat") as chat,
        gateway(nats_server, timeline.server.address, callers.service) as live,
        channel_for(chat.server.address, callers.adapter("chat")) as adapter_channel,
        channel_for(timeline.server.address, callers.service) as timeline_channel,
    ):
        adapter = ingest_pb2_grpc.IngestServiceStub(adapter_channel)
        assert (await submit(adapter, first)).status == ingest_pb2.SubmitResult.STATUS_ACCEPTED
        owners = await wait_for_events(
            timeline_pb2_grpc.TimelineServiceStub(timeline_channel), tenant, [first.event_id]
        )

        async def submit_second() -> None:
            assert (await submit(adapter, second)).status == ingest_pb2.SubmitResult.STATUS_ACCEPTED

        graphql_url = live[0]
        pushed = await push_of(live, token, owners[first.event_id], submit_second)
        assert pushed["payload"]["data"]["timelineUpdated"]["eventId"] == second.event_id

        # A screen-pop by the phone number: the number is an argument, never an attribute.
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                graphql_url,
                headers={"authorization": token},
                json={
                    "query": "query ScreenPop($v: String!) {"
                    " customerByIdentifier(kind: PHONE, value: $v) { id }"
                    f' alias: customerByIdentifier(kind: EMAIL, value: "{EMAIL}") {{ id }} }}',
                    "variables": {"v": PHONE},
                },
            )
        assert response.json()["data"]["customerByIdentifier"]["id"] == owners[first.event_id]

    finished = await _spans_until(
        spans,
        lambda found: (
            bool(_with_event(found, "subscription push", second.event_id))
            and any(s.name == "GraphQL ScreenPop" for s in found)
        ),
    )
    by_id = {_hex(s)[1]: s for s in finished}

    publish = _one(_with_event(finished, "interactions publish", second.event_id), "publish span")
    trace_id = _hex(publish)[0]
    assert publish.kind is SpanKind.PRODUCER
    # The adapter's call (a client span here) → the ingest server span → the publish span.
    calls = [(s.kind, s.name) for s in _ancestors(publish, by_id)]
    assert calls[-2:] == [
        (SpanKind.SERVER, "/tsunagu.v1.IngestService/Submit"),
        (SpanKind.CLIENT, "/tsunagu.v1.IngestService/Submit"),
    ]
    ingest_call = _ancestors(publish, by_id)[-2]

    # The timeline: the event's own span is the publish span's child, in the same trace.
    settle = _one(_with_event(finished, "interaction settle", second.event_id), "settle span")
    assert settle.kind is SpanKind.CONSUMER
    assert _child_of(settle, publish)
    assert (settle.attributes or {})["tsunagu.outcome"] == "recorded"
    # The batch that recorded it is linked to the publish span (and its child when alone).
    batch = _one(
        [
            s
            for s in finished
            if s.name == "interactions process"
            and any(link.context.span_id == _hex(publish)[1] for link in s.links)
        ],
        "batch span linked to the publish span",
    )
    assert batch.kind is SpanKind.CONSUMER
    assert any(link.context.span_id == _hex(batch)[1] for link in settle.links)
    # Its MongoDB writes are spans under the batch span.
    writes = [
        s
        for s in finished
        if _hex(s)[0] == _hex(batch)[0]
        and (s.attributes or {}).get("db.system.name") == "mongodb"
        and (s.attributes or {}).get("db.collection.name") == "interactions"
        and s.kind is SpanKind.CLIENT
    ]
    assert any(s.attributes and s.attributes["db.operation.name"] == "insert" for s in writes)

    # The notice carries the trace on; the gateway's push continues it.
    notice = _one(_with_event(finished, "timeline.updated publish", second.event_id), "notice")
    assert notice.kind is SpanKind.PRODUCER
    assert _child_of(notice, settle)
    push = _one(_with_event(finished, "subscription push", second.event_id), "push span")
    assert _child_of(push, notice)
    assert {_hex(s)[0] for s in (ingest_call, publish, settle, notice, push)} == {trace_id}

    # GraphQL operations are traced, and so are the gateway's calls to the timeline under them.
    operation = _one([s for s in finished if s.name == "GraphQL ScreenPop"], "operation span")
    assert operation.kind is SpanKind.SERVER
    resolved = [
        s
        for s in finished
        if _hex(s)[0] == _hex(operation)[0]
        and s.name == "/tsunagu.v1.TimelineService/ResolveIdentifier"
    ]
    assert {s.kind for s in resolved} == {SpanKind.CLIENT, SpanKind.SERVER}

    # Nothing personal in any attribute, event or status of any span.
    for span in finished:
        recorded = json.dumps(
            {
                "attributes": dict(span.attributes or {}),
                "events": [dict(e.attributes or {}) for e in span.events],
                "status": span.status.description,
                "name": span.name,
            },
            default=str,
        )
        for secret in (PHONE_DIGITS, EMAIL, "hanako", NAME, TEXT, "parcel"):
            assert secret.lower() not in recorded.lower(), f"{secret!r} in {span.name}: {recorded}"
