"""Subscriptions over a real WebSocket (graphql-transport-ws), fed by a real nats-server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from gateway.app import bootstrap
from gateway.bus import GatewayBus, SlowConsumer
from gateway.server import create_server
from tests.action_keys import ActionKeys, session_action_keys
from tests.identity_provider import identity_provider
from tests.unit.test_gateway_http import IDP, TOKEN
from tests.unit.test_gateway_schema import TENANT, FakeTimeline, running_fake_timeline
from tsunagu.bus.notices import MAX_NOTICE_BYTES, customer_subject, encode_notice
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import timeline_pb2
from tsunagu.v1.notices_pb2 import TimelineUpdated


@pytest.fixture(scope="module")
async def announcer(nats_server: NatsServer) -> AsyncIterator[Client]:
    """Publishes notices the way the timeline does after a commit."""
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.drain()


@asynccontextmanager
async def live_gateway(
    nats_server: NatsServer, **settings: Any
) -> AsyncIterator[tuple[FakeTimeline, GatewayBus, str]]:
    """The gateway under uvicorn, with its bus at hand to count live subscriptions, and its
    WebSocket URL; `settings` override."""
    async with running_fake_timeline() as (fake, timeline_address), identity_provider(IDP):
        config = IDP.settings(
            port=0,
            timeline_address=timeline_address,
            nats_url=nats_server.url,
            grpc_timeout_seconds=2.0,
            **settings,
        )
        bus = GatewayBus(
            url=nats_server.url, publish_timeout_seconds=2, signer=session_action_keys().signer
        )
        server = create_server(bootstrap(config, bus=bus), config)
        async with server:
            yield fake, bus, server.graphql_url.replace("http://", "ws://")


@pytest.fixture(scope="module")
async def live(nats_server: NatsServer) -> AsyncIterator[tuple[FakeTimeline, GatewayBus, str]]:
    async with live_gateway(nats_server, max_query_depth=6) as served:
        yield served


@asynccontextmanager
async def agent_socket(url: str, token: str = TOKEN) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws connection, acknowledged for the test agent (or `token`'s)."""
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as socket:
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": token}})
        )
        assert json.loads(await socket.recv()) == {"type": "connection_ack"}
        yield socket


@pytest.fixture
async def ws(live: tuple[FakeTimeline, GatewayBus, str]) -> AsyncIterator[ClientConnection]:
    async with agent_socket(live[2]) as socket:
        yield socket


async def receive(socket: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(20):  # generous: two cores shared by many test runs
        message: dict[str, Any] = json.loads(await socket.recv())
    return message


async def subscribe(socket: ClientConnection, id_: str, query: str) -> None:
    await socket.send(json.dumps({"id": id_, "type": "subscribe", "payload": {"query": query}}))


async def until_following(bus: GatewayBus, count: int) -> None:
    async with asyncio.timeout(20):  # generous: two cores shared by many test runs
        while bus.active_followers != count:  # noqa: ASYNC110 - a counter the server owns
            await asyncio.sleep(0.01)


async def announce(
    nc: Client,
    customer: str,
    event_id: str,
    *,
    tenant: str = TENANT,
    channel: pb.Channel.ValueType = pb.CHANNEL_CHAT,
    kind: pb.Kind.ValueType = pb.KIND_MESSAGE,
    **fields: Any,
) -> None:
    """Publish a `tsunagu.v1.TimelineUpdated` the way the timeline does after a commit."""
    notice = TimelineUpdated(
        tenant=tenant,
        customer_id=customer,
        event_id=event_id,
        channel=channel,
        kind=kind,
        occurred_at=Timestamp(seconds=int(OCCURRED_AT.timestamp())),
        **fields,
    )
    await publish_raw(nc, customer_subject(TENANT, customer), encode_notice(notice))


async def publish_raw(nc: Client, subject: str, payload: bytes) -> None:
    await nc.publish(subject, payload)
    await nc.flush()


OCCURRED_AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

TIMELINE_UPDATED = """subscription {
  timelineUpdated(customerId: "c-1") {
    customerId eventId kind channel occurredAt caseId mergedInto
    entry { eventId text channel }
  }
}"""


async def test_timeline_updated_pushes_the_stored_entry_and_follows_a_merge(
    live: tuple[FakeTimeline, GatewayBus, str], ws: ClientConnection, announcer: Client
) -> None:
    fake, bus, _ = live
    await subscribe(ws, "t1", TIMELINE_UPDATED)
    await until_following(bus, 1)

    # Another tenant's notice on the same customer id, and another customer: never delivered.
    await publish_raw(
        announcer,
        customer_subject("globex", "c-1"),
        encode_notice(TimelineUpdated(tenant="globex", customer_id="c-1", event_id="ev-foreign")),
    )
    await announce(announcer, "c-2", "ev-other")
    await announce(announcer, "c-1", "ev-chat", case_id="case-1")
    first = await receive(ws)
    # The chat merged c-1 into c-2: the notice on c-1's subject says so, then c-2 is followed.
    await announce(
        announcer,
        "c-1",
        "ev-call",
        merged_into="c-2",
        channel=pb.CHANNEL_VOICE,
        kind=pb.KIND_CALL_ENDED,
    )
    merged = await receive(ws)
    await announce(announcer, "c-2", "ev-note", channel=pb.CHANNEL_AGENT_DESK, kind=pb.KIND_HANDOFF)
    after = await receive(ws)

    assert first == {
        "id": "t1",
        "type": "next",
        "payload": {
            "data": {
                "timelineUpdated": {
                    "customerId": "c-1",
                    "eventId": "ev-chat",
                    "kind": "MESSAGE",
                    "channel": "CHAT",
                    "occurredAt": "2025-03-01T09:00:00+00:00",
                    "caseId": "case-1",
                    "mergedInto": None,
                    "entry": {"eventId": "ev-chat", "text": "解約したいです", "channel": "CHAT"},
                }
            }
        },
    }
    merged_update = merged["payload"]["data"]["timelineUpdated"]
    assert (merged_update["eventId"], merged_update["customerId"]) == ("ev-call", "c-2")
    assert merged_update["mergedInto"] == "c-2"
    assert after["payload"]["data"]["timelineUpdated"]["eventId"] == "ev-note"
    # These notices came without their entry: each push read it back by event id.
    assert {"ev-chat", "ev-call", "ev-note"} <= read_back(fake)

    await ws.send(json.dumps({"id": "t1", "type": "complete"}))
    await until_following(bus, 0)


def read_back(fake: FakeTimeline) -> set[str]:
    """Event ids the gateway asked the timeline for with ``GetInteractions``."""
    return {id_ for request in fake.calls("GetInteractions") for id_ in request.event_ids}


def stored_entry(event_id: str, text: str) -> timeline_pb2.TimelineEntry:
    return timeline_pb2.TimelineEntry(
        customer_id="c-1",
        case_id="case-1",
        interaction=pb.Interaction(
            event_id=event_id,
            tenant=TENANT,
            channel=pb.CHANNEL_SMS,
            kind=pb.KIND_MESSAGE,
            occurred_at=Timestamp(seconds=int(OCCURRED_AT.timestamp())),
            content=pb.Content(text=text),
        ),
    )


ENTRIES = {
    # The fake timeline does not know this event: only the notice can supply the entry.
    "carried by the notice": (
        stored_entry("ev-fresh", "届いたばかりのSMS"),
        {"eventId": "ev-fresh", "text": "届いたばかりのSMS", "channel": "SMS"},
        False,
    ),
    # The codec leaves an entry this large out of the notice; the stored one is read back.
    "too large for a notice": (
        stored_entry("ev-chat", "x" * MAX_NOTICE_BYTES),
        {"eventId": "ev-chat", "text": "解約したいです", "channel": "CHAT"},
        True,
    ),
}


@pytest.mark.parametrize("name", ENTRIES)
async def test_a_push_uses_the_notices_entry_and_reads_back_only_one_left_out(
    live: tuple[FakeTimeline, GatewayBus, str],
    ws: ClientConnection,
    announcer: Client,
    name: str,
) -> None:
    fake, bus, _ = live
    entry, expected, read_back_expected = ENTRIES[name]
    event_id = entry.interaction.event_id
    await subscribe(ws, "e1", TIMELINE_UPDATED)
    await until_following(bus, 1)

    await announce(announcer, "c-1", event_id, channel=entry.interaction.channel, entry=entry)
    pushed = await receive(ws)

    assert pushed["payload"]["data"]["timelineUpdated"]["entry"] == expected
    assert (event_id in read_back(fake)) is read_back_expected
    await ws.send(json.dumps({"id": "e1", "type": "complete"}))
    await until_following(bus, 0)


UNREADABLE = {
    "garbage": b"\xff\xfe not a protobuf",
    "old JSON notice": json.dumps(
        {"tenant": TENANT, "customer_id": "c-1", "event_id": "ev-json", "kind": "message"}
    ).encode(),
    "no ids": b"",
    "oversized": TimelineUpdated(
        tenant=TENANT, customer_id="c-1", event_id="ev-huge", merged_ids=["m" * 100] * 700
    ).SerializeToString(),
    "another tenant's notice on this tenant's subject": TimelineUpdated(
        tenant="globex", customer_id="c-1", event_id="ev-forged"
    ).SerializeToString(),
}


async def test_unreadable_or_foreign_notices_are_dropped_and_every_subscriber_goes_on(
    live: tuple[FakeTimeline, GatewayBus, str], ws: ClientConnection, announcer: Client
) -> None:
    _, bus, url = live
    await subscribe(ws, "u1", TIMELINE_UPDATED)
    async with agent_socket(url) as other:
        await subscribe(other, "u2", TIMELINE_UPDATED)
        await until_following(bus, 2)

        for payload in UNREADABLE.values():
            await publish_raw(announcer, customer_subject(TENANT, "c-1"), payload)
        await announce(announcer, "c-1", "ev-chat")
        pushed = [await receive(ws), await receive(other)]

        assert [p["payload"]["data"]["timelineUpdated"]["eventId"] for p in pushed] == [
            "ev-chat",
            "ev-chat",
        ]
        assert [p["id"] for p in pushed] == ["u1", "u2"]
        assert bus.active_followers == 2
    await ws.send(json.dumps({"id": "u1", "type": "complete"}))
    await until_following(bus, 0)


async def test_case_updated_pushes_only_the_watched_case_with_its_state(
    live: tuple[FakeTimeline, GatewayBus, str], ws: ClientConnection, announcer: Client
) -> None:
    _, bus, _ = live
    query = """subscription {
      caseUpdated(caseId: "case-1") {
        caseId eventId kind channel status case { id escalationLevel customer { id } }
        entry { eventId }
      }
    }"""
    await subscribe(ws, "c1", query)
    await until_following(bus, 1)

    await announce(announcer, "c-1", "ev-elsewhere", case_id="case-13")
    await announce(
        announcer,
        "c-1",
        "ev-note",
        case_id="case-1",
        channel=pb.CHANNEL_AGENT_DESK,
        kind=pb.KIND_ESCALATION,
        case_status=timeline_pb2.CASE_STATUS_ESCALATED,
    )
    pushed = await receive(ws)

    assert pushed["payload"]["data"]["caseUpdated"] == {
        "caseId": "case-1",
        "eventId": "ev-note",
        "kind": "ESCALATION",
        "channel": "AGENT_DESK",
        "status": "ESCALATED",
        "case": {"id": "case-1", "escalationLevel": 2, "customer": {"id": "c-1"}},
        "entry": {"eventId": "ev-note"},
    }


async def test_disconnecting_ends_the_nats_subscription(
    live: tuple[FakeTimeline, GatewayBus, str],
) -> None:
    _, bus, url = live
    async with agent_socket(url) as socket:
        await subscribe(socket, "a", TIMELINE_UPDATED)
        await subscribe(socket, "b", TIMELINE_UPDATED.replace("c-1", "c-2"))
        await until_following(bus, 2)

    await until_following(bus, 0)


REFUSED = {
    "unknown customer": (
        'subscription { timelineUpdated(customerId: "nobody") { eventId } }',
        "NOT_FOUND",
    ),
    "unknown field": (
        'subscription { timelineUpdated(customerId: "c-1") { shoeSize } }',
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "too deep": (
        'subscription { caseUpdated(caseId: "case-1") { case { customer { openCase { '
        "customer { openCase { customer { id } } } } } } } }",
        "GRAPHQL_VALIDATION_FAILED",
    ),
}


@pytest.mark.parametrize("name", REFUSED)
async def test_a_refused_subscription_is_an_error_and_the_connection_keeps_serving(
    live: tuple[FakeTimeline, GatewayBus, str], ws: ClientConnection, name: str
) -> None:
    _, bus, _ = live
    query, code = REFUSED[name]

    await subscribe(ws, "bad", query)
    refused = await receive(ws)
    if refused["type"] == "next":  # refused while starting: errors, then complete
        assert await receive(ws) == {"id": "bad", "type": "complete"}
    await subscribe(ws, "ok", '{ customer(id: "c-1") { id } }')
    served = await receive(ws)

    errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
    assert refused["id"] == "bad"
    assert [error["extensions"]["code"] for error in errors] == [code]
    assert served == {"id": "ok", "type": "next", "payload": {"data": {"customer": {"id": "c-1"}}}}
    assert bus.active_followers == 0


async def test_a_follower_that_falls_too_far_behind_is_cut_off(
    nats_server: NatsServer, announcer: Client, action_keys: ActionKeys
) -> None:
    async with (
        GatewayBus(
            url=nats_server.url, publish_timeout_seconds=1, signer=action_keys.signer
        ) as bus,
        bus.follow(TENANT, "c-slow", queue_size=2) as follower,
    ):
        # Nobody reads the follower: past two unread notices it must be cut off. Announce
        # until it is (three are enough when all arrive), so a notice a busy machine loses
        # or delays cannot hang the test; the deadline is generous for two shared cores.
        number = 0
        async with asyncio.timeout(60):
            while not follower.cut_off:
                await announce(announcer, "c-slow", f"ev-{number}")
                await announcer.flush()
                number += 1
                if number >= 3:
                    await asyncio.sleep(0.05)

        with pytest.raises(SlowConsumer):
            await anext(follower)
    assert bus.active_followers == 0
