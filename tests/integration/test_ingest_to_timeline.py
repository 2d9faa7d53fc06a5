"""Ingestion → JetStream → timeline → MongoDB, with real servers and real gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests import builders
from tests.grpc_credentials import CallerSet, channel_for
from tsunagu.v1 import (
    ingest_pb2,
    ingest_pb2_grpc,
    interaction_pb2,
    timeline_pb2,
    timeline_pb2_grpc,
)

Result = ingest_pb2.SubmitResult
Starter = Callable[..., AbstractAsyncContextManager[Any]]


async def wait_for_events(
    timeline: timeline_pb2_grpc.TimelineServiceAsyncStub, tenant: str, event_ids: list[str]
) -> dict[str, str]:
    """Poll LookupEvents until every event is stored; returns event id → customer id."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        found = await timeline.LookupEvents(
            timeline_pb2.LookupEventsRequest(tenant=tenant, event_ids=event_ids)
        )
        stored = {f.event_id: f.customer_id for f in found.found}
        if len(stored) == len(set(event_ids)):
            return stored
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"events not stored in time: {set(event_ids) - set(stored)}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def system(run_timeline: Starter, run_ingest: Starter, callers: CallerSet) -> Any:
    """Timeline plus chat, voice and email ingestion, and stubs to talk to them."""
    async with (
        run_timeline() as timeline,
        run_ingest("chat") as chat,
        run_ingest("voice") as voice,
        run_ingest("email") as email,
    ):
        channels = {
            name: channel_for(
                svc.server.address,
                callers.service if name == "timeline" else callers.adapter(name),
            )
            for name, svc in [
                ("timeline", timeline),
                ("chat", chat),
                ("voice", voice),
                ("email", email),
            ]
        }
        stubs: dict[str, Any] = {
            name: ingest_pb2_grpc.IngestServiceStub(ch)
            for name, ch in channels.items()
            if name != "timeline"
        }
        stubs["timeline"] = timeline_pb2_grpc.TimelineServiceStub(channels["timeline"])
        stubs["chat_channel"] = channels["chat"]
        yield stubs
        for ch in channels.values():
            await ch.close(grace=None)


def varint(value: int) -> bytes:
    """Protobuf base-128 length prefix."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


async def submit(stub: Any, interaction: interaction_pb2.Interaction) -> Result:
    response = await stub.Submit(ingest_pb2.SubmitRequest(interaction=interaction))
    result: Result = response.result
    return result


async def test_chat_then_call_from_the_same_number_is_one_customer(
    system: Any, tenant: str
) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=20)
    chat = builders.chat(tenant, phone="090-1234-5678", name="Sato Hanako", at=t0)
    call = builders.call(tenant, from_number="+81 90 1234 5678", at=t0 + timedelta(minutes=10))
    assert (await submit(system["chat"], chat)).status == Result.STATUS_ACCEPTED
    assert (await submit(system["voice"], call)).status == Result.STATUS_ACCEPTED

    owners = await wait_for_events(system["timeline"], tenant, [chat.event_id, call.event_id])
    assert owners[chat.event_id] == owners[call.event_id]

    popped = await system["timeline"].ResolveIdentifier(
        timeline_pb2.ResolveIdentifierRequest(
            tenant=tenant,
            identifier=interaction_pb2.Identifier(
                kind=interaction_pb2.IDENTIFIER_KIND_PHONE, value="(090) 1234-5678"
            ),
        )
    )
    customer = popped.customer
    assert customer.id == owners[chat.event_id]
    assert customer.display_name == "Sato Hanako"
    assert customer.interaction_count == 2
    assert set(customer.channels) == {interaction_pb2.CHANNEL_CHAT, interaction_pb2.CHANNEL_VOICE}

    page = await system["timeline"].ListInteractions(
        timeline_pb2.ListInteractionsRequest(tenant=tenant, customer_id=customer.id)
    )
    assert [e.interaction.event_id for e in page.entries] == [call.event_id, chat.event_id]
    assert page.entries[0].interaction.conversation_ref == "call:call-1"


async def test_same_event_id_twice_is_stored_once(system: Any, tenant: str) -> None:
    chat = builders.chat(tenant, phone="090-2222-3333")
    first = await submit(system["chat"], chat)
    again = await submit(system["chat"], chat)
    assert first.status == Result.STATUS_ACCEPTED
    assert again.status == Result.STATUS_DUPLICATE
    assert again.stream_sequence == first.stream_sequence

    other = builders.chat(tenant, phone="090-2222-3333", text="second message")
    batch = await system["chat"].SubmitBatch(
        ingest_pb2.SubmitBatchRequest(interactions=[other, other, chat])
    )
    assert [r.status for r in batch.results] == [
        Result.STATUS_ACCEPTED,
        Result.STATUS_DUPLICATE,
        Result.STATUS_DUPLICATE,
    ]
    owners = await wait_for_events(system["timeline"], tenant, [chat.event_id, other.event_id])
    page = await system["timeline"].ListInteractions(
        timeline_pb2.ListInteractionsRequest(tenant=tenant, customer_id=owners[chat.event_id])
    )
    assert sorted(e.interaction.event_id for e in page.entries) == sorted(
        [chat.event_id, other.event_id]
    )


async def test_two_tenants_with_the_same_event_id_are_both_stored(
    system: Any, tenant: str, run_timeline: Starter
) -> None:
    other_tenant = f"{tenant}x"
    ours = builders.chat(tenant, phone="090-4444-5555", text="ours")
    theirs = builders.chat(other_tenant, phone="090-4444-5555", text="theirs")
    theirs.event_id = ours.event_id

    assert (await submit(system["chat"], ours)).status == Result.STATUS_ACCEPTED
    assert (await submit(system["chat"], theirs)).status == Result.STATUS_ACCEPTED
    assert (await submit(system["chat"], theirs)).status == Result.STATUS_DUPLICATE

    async with run_timeline(
        consumer_name=f"timeline-{other_tenant}", subject_filter=f"interactions.{other_tenant}.>"
    ):
        for owner, event in [(tenant, ours), (other_tenant, theirs)]:
            owners = await wait_for_events(system["timeline"], owner, [event.event_id])
            page = await system["timeline"].ListInteractions(
                timeline_pb2.ListInteractionsRequest(
                    tenant=owner, customer_id=owners[event.event_id]
                )
            )
            assert [e.interaction.content.text for e in page.entries] == [event.content.text]


async def test_email_linking_two_customers_merges_them_and_keeps_every_interaction(
    system: Any, tenant: str
) -> None:
    t0 = datetime.now(UTC) - timedelta(days=2)
    by_phone = builders.chat(tenant, visitor="v-a", phone="090-1111-2222", at=t0)
    by_email = builders.email(tenant, from_address="Hanako@Example.jp", at=t0 + timedelta(hours=1))
    await submit(system["chat"], by_phone)
    await submit(system["email"], by_email)
    owners = await wait_for_events(
        system["timeline"], tenant, [by_phone.event_id, by_email.event_id]
    )
    assert owners[by_phone.event_id] != owners[by_email.event_id]

    # The chat's signed-in session vouches for its visitor and the account's address (an
    # e-mail cannot vouch for a phone number in its text, and unverified links merge nobody).
    linking = builders.verified(
        builders.chat(tenant, visitor="v-a", email="hanako@example.jp", at=t0 + timedelta(days=1))
    )
    await submit(system["chat"], linking)
    await wait_for_events(system["timeline"], tenant, [linking.event_id])
    owners = await wait_for_events(
        system["timeline"], tenant, [by_phone.event_id, by_email.event_id, linking.event_id]
    )
    assert len(set(owners.values())) == 1
    survivor = owners[by_phone.event_id]
    customers = await system["timeline"].GetCustomers(
        timeline_pb2.GetCustomersRequest(tenant=tenant, customer_ids=[survivor])
    )
    merged = customers.customers[0]
    assert merged.interaction_count == 3
    assert len(merged.merged_ids) == 1
    # The merged-away id still answers, with the survivor.
    via_old = await system["timeline"].GetCustomers(
        timeline_pb2.GetCustomersRequest(tenant=tenant, customer_ids=list(merged.merged_ids))
    )
    assert via_old.customers[0].id == survivor
    page = await system["timeline"].ListInteractions(
        timeline_pb2.ListInteractionsRequest(tenant=tenant, customer_id=survivor)
    )
    assert [e.interaction.event_id for e in page.entries] == [
        linking.event_id,
        by_email.event_id,
        by_phone.event_id,
    ]


async def test_invalid_submit_names_the_field(system: Any, tenant: str) -> None:
    bad = builders.chat(tenant)
    bad.ClearField("event_id")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await submit(system["chat"], bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "event_id" in (caught.value.details() or "")
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    assert detail.field_violations[0].field == "event_id"


async def test_event_of_another_channel_is_refused(system: Any, tenant: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await submit(system["voice"], builders.chat(tenant))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("channel")


async def test_batch_with_bad_items_stores_the_good_ones(system: Any, tenant: str) -> None:
    good = [builders.chat(tenant, visitor=f"v{i}") for i in range(3)]
    missing_tenant = builders.chat(tenant)
    missing_tenant.tenant = ""
    unknown_kind = builders.chat(tenant)
    unknown_kind.kind = 999  # type: ignore[assignment]
    oversized = builders.chat(tenant, text="x" * (70 * 1024))
    items = [good[0], missing_tenant, good[1], unknown_kind, oversized, good[2]]
    request = ingest_pb2.SubmitBatchRequest(interactions=items).SerializeToString()
    # An item with invalid UTF-8 in a string field, spliced in as raw bytes: protobuf refuses
    # to decode it, and it must not take the rest of the batch down with it.
    broken = builders.chat(tenant, text="PLACEHOLDER").SerializeToString()
    broken = broken.replace(b"PLACEHOLDER", b"bad \xff\xfe text")
    raw = request + b"\x0a" + varint(len(broken)) + broken

    raw_call = system["chat_channel"].unary_unary(
        "/tsunagu.v1.IngestService/SubmitBatch",
        request_serializer=lambda b: b,
        response_deserializer=ingest_pb2.SubmitBatchResponse.FromString,
    )
    response = await raw_call(raw)
    statuses = [r.status for r in response.results]
    assert statuses == [
        Result.STATUS_ACCEPTED,
        Result.STATUS_REJECTED,
        Result.STATUS_ACCEPTED,
        Result.STATUS_REJECTED,
        Result.STATUS_REJECTED,
        Result.STATUS_ACCEPTED,
        Result.STATUS_REJECTED,
    ]
    reasons = {r.index: (r.field, r.reason) for r in response.results}
    assert reasons[1][0] == "tenant"
    assert reasons[3][0] == "kind"
    assert reasons[4][0] == "content.text"
    assert "UTF-8" in reasons[6][1] or "utf-8" in reasons[6][1].lower()
    await wait_for_events(system["timeline"], tenant, [g.event_id for g in good])
