"""The timeline's NATS consumer under hostile messages published straight to JetStream.

Every message here bypasses ingestion and its validation: it is what a buggy or hostile
producer on the bus can put on `interactions.<tenant>.<channel>`. A message the timeline can
never record must land on `INTERACTIONS_DLQ` with the error in its headers, and must never
stop the interactions behind it from being recorded.

The consumer handles messages one by one in stream order, so once an interaction published
after a bad message is recorded, the bad message has been dealt with: no test waits for
something not to happen.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import APIError, NotFoundError

from services.timeline.consumer import InteractionConsumer
from services.timeline.service import TimelineService
from tests import builders
from tests.action_keys import session_action_keys
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.test_ingest_to_timeline import wait_for_events
from tsunagu.bus.publisher import InteractionPublisher
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import timeline_pb2, timeline_pb2_grpc

Starter = Callable[..., AbstractAsyncContextManager[Any]]

DLQ_STREAM = "INTERACTIONS_DLQ"
ERROR_HEADER = "Tsunagu-Error"
SEQUENCE_HEADER = "Tsunagu-Original-Sequence"
REASON_HEADER = "Tsunagu-Dead-Letter-Reason"


@dataclass
class Bus:
    """A running timeline for one tenant, a JetStream client and the timeline's gRPC API."""

    tenant: str
    service: TimelineService
    nc: Client
    js: JetStreamContext
    timeline: timeline_pb2_grpc.TimelineServiceAsyncStub

    @property
    def chat_subject(self) -> str:
        return f"interactions.{self.tenant}.chat"

    async def publish(
        self, data: bytes, *, subject: str = "", headers: dict[str, str] | None = None
    ) -> int:
        """Publish raw bytes to the interactions stream; returns the stream sequence."""
        ack = await self.js.publish(subject or self.chat_subject, data, headers=headers)
        assert ack.stream == "INTERACTIONS"
        return ack.seq

    async def publish_action(self, action: pb.Interaction) -> int:
        """Publish an agent action on its tenant's agent-desk subject, signed like the gateway."""
        return await self.publish(
            action.SerializeToString(),
            subject=agent_desk_subject(action.tenant),
            headers=session_action_keys().headers(action),
        )

    async def recorded(self, event_ids: list[str], *, tenant: str = "") -> dict[str, str]:
        """`wait_for_events`, failing at once (not at its deadline) if the consumer crashed."""
        waiting = asyncio.ensure_future(
            wait_for_events(self.timeline, tenant or self.tenant, event_ids)
        )
        watched: set[asyncio.Future[Any]] = {waiting, self.service.failed}
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if self.service.failed.done():
            waiting.cancel()
            crash = self.service.failed.result()
            pytest.fail(f"the timeline consumer crashed: {crash!r} {crash}")
        return waiting.result()

    async def stored(self, event_ids: list[str], *, tenant: str = "") -> set[str]:
        found = await self.timeline.LookupEvents(
            timeline_pb2.LookupEventsRequest(tenant=tenant or self.tenant, event_ids=event_ids)
        )
        return {f.event_id for f in found.found}

    async def dead_letters(self, subject: str = "") -> list[RawStreamMsg]:
        """Every message on the dead-letter stream for `dlq.<subject>`, oldest first."""
        filter_subject = f"dlq.{subject or self.chat_subject}"
        found: list[RawStreamMsg] = []
        seq = 1
        while True:
            try:
                msg = await self.js.get_msg(DLQ_STREAM, seq=seq, subject=filter_subject, next=True)
            except NotFoundError:
                return found
            found.append(msg)
            assert msg.seq is not None
            seq = msg.seq + 1


@asynccontextmanager
async def open_bus(
    run_timeline: Starter, nats_server: NatsServer, tenant: str, callers: CallerSet
) -> AsyncIterator[Bus]:
    # A short grace keeps the shutdown of a consumer quick.
    async with run_timeline(shutdown_grace_seconds=1) as service:
        nc = await nats.connect(nats_server.url)
        timeline_channel = channel_for(service.server.address, callers.service)
        try:
            yield Bus(
                tenant=tenant,
                service=service,
                nc=nc,
                js=nc.jetstream(),
                timeline=timeline_pb2_grpc.TimelineServiceStub(timeline_channel),
            )
        finally:
            await timeline_channel.close(grace=None)
            await nc.close()


def header(msg: RawStreamMsg, name: str) -> str:
    value = (msg.headers or {}).get(name, "")
    assert isinstance(value, str)
    return value


def agent_note(tenant: str, customer_id: str) -> pb.Interaction:
    note = pb.Interaction(
        event_id=str(uuid.uuid4()),
        tenant=tenant,
        channel=pb.CHANNEL_AGENT_DESK,
        kind=pb.KIND_NOTE,
        direction=pb.DIRECTION_INTERNAL,
        actor=pb.Actor(type=pb.ACTOR_TYPE_AGENT, id="agent-7", display_name="Suzuki"),
    )
    note.occurred_at.FromDatetime(datetime.now(UTC) - timedelta(seconds=1))
    note.agent_action.customer_id = customer_id
    note.agent_action.note.text = "Called back about the late delivery"
    return note


def agent_desk_subject(tenant: str) -> str:
    return f"interactions.{tenant}.agent_desk"


async def test_garbage_bytes_are_dead_lettered_and_the_next_interaction_is_recorded(
    bus: Bus,
) -> None:
    garbage = b"\x08\x96\x01 definitely not a protobuf \xff\xff\xff\xff"
    sequence = await bus.publish(garbage)
    good = builders.chat(bus.tenant)
    await bus.publish(good.SerializeToString())

    await bus.recorded([good.event_id])
    [dead] = await bus.dead_letters()
    assert dead.data == garbage  # the original bytes, replayable once the cause is fixed
    assert "not a tsunagu.v1.Interaction" in header(dead, ERROR_HEADER)
    assert header(dead, SEQUENCE_HEADER) == str(sequence)


async def test_interaction_with_invalid_utf8_is_dead_lettered_and_the_next_one_is_recorded(
    bus: Bus,
) -> None:
    placeholder = builders.chat(bus.tenant, text="PLACEHOLDER")
    broken = placeholder.SerializeToString().replace(b"PLACEHOLDER", b"bad \xff\xfe text")
    sequence = await bus.publish(broken)
    good = builders.chat(bus.tenant, visitor="visitor-2")
    await bus.publish(good.SerializeToString())

    await bus.recorded([good.event_id])
    assert await bus.stored([placeholder.event_id]) == set()
    [dead] = await bus.dead_letters()
    assert dead.data == broken
    assert "UTF-8" in header(dead, ERROR_HEADER)
    assert header(dead, SEQUENCE_HEADER) == str(sequence)


async def test_agent_action_for_an_unknown_customer_is_dead_lettered_naming_the_customer(
    bus: Bus,
) -> None:
    unknown = f"cus_{uuid.uuid4().hex}"
    note = agent_note(bus.tenant, unknown)
    subject = agent_desk_subject(bus.tenant)
    sequence = await bus.publish_action(note)
    good = builders.chat(bus.tenant)
    await bus.publish(good.SerializeToString())

    await bus.recorded([good.event_id])
    assert await bus.stored([note.event_id]) == set()
    [dead] = await bus.dead_letters(subject)
    assert unknown in header(dead, ERROR_HEADER)
    assert header(dead, REASON_HEADER) == "refused"
    assert header(dead, SEQUENCE_HEADER) == str(sequence)
    assert pb.Interaction.FromString(dead.data or b"") == note


async def test_agent_action_about_a_customer_of_another_tenant_is_dead_lettered(
    bus: Bus, tenant: str
) -> None:
    # A real customer of another tenant, recorded by the same timeline's recorder.
    other_tenant = f"{tenant}-other"
    stranger = await bus.service.recorder.record(builders.chat(other_tenant, phone="090-3333-4444"))
    # And one of this tenant, so the contrast shows agent actions themselves work.
    own = builders.chat(tenant, phone="090-5555-6666")
    await bus.publish(own.SerializeToString())
    own_customer = (await bus.recorded([own.event_id]))[own.event_id]

    subject = agent_desk_subject(tenant)
    intrusive = agent_note(tenant, stranger.customer_id)
    legitimate = agent_note(tenant, own_customer)
    await bus.publish_action(intrusive)
    await bus.publish_action(legitimate)

    owners = await bus.recorded([legitimate.event_id])
    assert owners[legitimate.event_id] == own_customer
    assert await bus.stored([intrusive.event_id]) == set()
    assert await bus.stored([intrusive.event_id], tenant=other_tenant) == set()
    [dead] = await bus.dead_letters(subject)
    assert stranger.customer_id in header(dead, ERROR_HEADER)
    assert pb.Interaction.FromString(dead.data or b"").event_id == intrusive.event_id


async def test_interactions_without_tenant_or_event_id_are_dead_lettered(bus: Bus) -> None:
    no_tenant = builders.chat(bus.tenant)
    no_tenant.tenant = ""
    no_event_id = builders.chat(bus.tenant)
    no_event_id.event_id = ""
    sequences = [
        await bus.publish(no_tenant.SerializeToString()),
        await bus.publish(no_event_id.SerializeToString()),
    ]
    good = builders.chat(bus.tenant)
    await bus.publish(good.SerializeToString())

    await bus.recorded([good.event_id])
    dead = await bus.dead_letters()
    assert [header(d, SEQUENCE_HEADER) for d in dead] == [str(s) for s in sequences]
    assert [pb.Interaction.FromString(d.data or b"") for d in dead] == [no_tenant, no_event_id]
    for letter in dead:
        assert "without tenant or event_id" in header(letter, ERROR_HEADER)


async def test_same_event_published_twice_past_stream_deduplication_is_recorded_once(
    bus: Bus,
) -> None:
    chat = builders.chat(bus.tenant, phone="090-7777-8888")
    first = await bus.publish(chat.SerializeToString(), headers={"Nats-Msg-Id": "attempt-1"})
    second = await bus.publish(chat.SerializeToString(), headers={"Nats-Msg-Id": "attempt-2"})
    assert second != first  # the stream stored both: only the timeline can de-duplicate
    later = builders.chat(bus.tenant, visitor="someone-else")
    await bus.publish(later.SerializeToString())

    owners = await bus.recorded([chat.event_id, later.event_id])
    customer_id = owners[chat.event_id]
    customers = await bus.timeline.GetCustomers(
        timeline_pb2.GetCustomersRequest(tenant=bus.tenant, customer_ids=[customer_id])
    )
    assert customers.customers[0].interaction_count == 1
    page = await bus.timeline.ListInteractions(
        timeline_pb2.ListInteractionsRequest(tenant=bus.tenant, customer_id=customer_id)
    )
    assert [e.interaction.event_id for e in page.entries] == [chat.event_id]
    assert await bus.dead_letters() == []  # a redelivered event is not an error


async def test_burst_of_valid_interactions_survives_interleaved_garbage(bus: Bus) -> None:
    good = [builders.chat(bus.tenant, visitor=f"burst-{i}") for i in range(50)]
    garbage = [f"garbage #{i} \xff".encode("latin-1") * 3 for i in range(10)]
    pending = []
    for i, interaction in enumerate(good):
        if i % 5 == 0:  # a garbage message before every fifth good one; the last is good
            pending.append(await bus.js.publish_async(bus.chat_subject, garbage[i // 5]))
        pending.append(
            await bus.js.publish_async(bus.chat_subject, interaction.SerializeToString())
        )
    acks = await asyncio.gather(*pending)
    assert len({ack.seq for ack in acks}) == 60

    owners = await bus.recorded([g.event_id for g in good])
    assert len(set(owners.values())) == 50  # 50 visitors, 50 customers
    dead = await bus.dead_letters()
    assert [d.data for d in dead] == garbage
    assert all(header(d, ERROR_HEADER) for d in dead)


async def test_dead_letter_of_an_interaction_from_the_project_publisher_keeps_the_consumer_up(
    run_timeline: Starter, nats_server: NatsServer, tenant: str, callers: CallerSet
) -> None:
    async with open_bus(run_timeline, nats_server, tenant, callers) as bus:
        publisher = InteractionPublisher(bus.js, signer=session_action_keys().signer)
        unknown = f"cus_{uuid.uuid4().hex}"
        note = agent_note(tenant, unknown)
        await publisher.publish(note)
        good = builders.chat(tenant)
        await publisher.publish(good)

        await bus.recorded([good.event_id])
        [dead] = await bus.dead_letters(agent_desk_subject(tenant))
        assert unknown in header(dead, ERROR_HEADER)


async def test_garbage_message_of_the_maximum_size_is_dead_lettered_without_stopping_the_consumer(
    run_timeline: Starter, nats_server: NatsServer, tenant: str, callers: CallerSet
) -> None:
    async with open_bus(run_timeline, nats_server, tenant, callers) as bus:
        max_payload = bus.nc.max_payload  # the largest message the server accepts
        garbage = b"\xff" * (max_payload - 64)
        try:
            await bus.publish(garbage)
        except APIError:
            accepted = False  # a stream limit with room for the DLQ headers is a fix too
        else:
            accepted = True
        good = builders.chat(tenant)
        await bus.publish(good.SerializeToString())

        await bus.recorded([good.event_id])
        if accepted:
            [dead] = await bus.dead_letters()
            assert len(dead.data or b"") == len(garbage)


async def test_interaction_claiming_another_tenant_than_its_subject_is_not_recorded(
    run_timeline: Starter, nats_server: NatsServer, tenant: str, callers: CallerSet
) -> None:
    async with open_bus(run_timeline, nats_server, tenant, callers) as bus:
        victim = f"{tenant}-victim"
        forged = builders.chat(victim, phone="090-1212-3434", name="Forged Name")
        await bus.publish(forged.SerializeToString())  # on this tenant's subject
        good = builders.chat(tenant)
        await bus.publish(good.SerializeToString())

        await bus.recorded([good.event_id])
        assert await bus.stored([forged.event_id], tenant=victim) == set()
        [dead] = await bus.dead_letters()
        assert header(dead, ERROR_HEADER)


async def _health(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        return int(answer.status)


async def test_shutdown_reports_not_serving_before_the_consumer_drains(
    run_timeline: Starter, monkeypatch: pytest.MonkeyPatch
) -> None:
    address: list[str] = []
    during_drain: list[int] = []
    drain = InteractionConsumer.stop

    async def watched_stop(consumer: InteractionConsumer, grace_seconds: float) -> None:
        during_drain.append(await _health(address[0]))
        await drain(consumer, grace_seconds)

    monkeypatch.setattr(InteractionConsumer, "stop", watched_stop)
    async with run_timeline() as service:
        address.append(service.server.address)
        assert await _health(address[0]) == health_pb2.HealthCheckResponse.SERVING
    assert during_drain == [health_pb2.HealthCheckResponse.NOT_SERVING]
