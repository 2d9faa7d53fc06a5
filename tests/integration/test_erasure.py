"""eraseCustomer through the timeline's gRPC API: shredded keys, masked reads, no plaintext on
disk (store and JetStream), anonymous counts kept, identifiers suppressed, hostile input refused.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests import builders
from tests.byte_search import hits, wait_until_on_disk
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.sealed_services import sealed_services
from tests.integration.test_ingest_to_timeline import submit, wait_for_events
from tsunagu.v1 import (
    erasure_pb2,
    erasure_pb2_grpc,
    ingest_pb2,
    timeline_pb2,
)

Starter = Callable[..., AbstractAsyncContextManager[Any]]
OFFICER = erasure_pb2.ErasureActor(subject="po-1", display_name="Privacy Officer")


@pytest.fixture
async def system(
    run_timeline: Starter, run_ingest: Starter, callers: CallerSet, tmp_path: Path
) -> AsyncIterator[dict[str, Any]]:
    async with sealed_services(
        run_timeline=run_timeline,
        run_ingest=run_ingest,
        callers=callers,
        key_file=tmp_path / "keys.json",
        channels=("chat", "voice"),
    ) as services:
        # An adapter's credential, pointed at the timeline: it may not erase.
        adapter = channel_for(services.timeline_address, callers.adapter("chat"))
        yield {
            "timeline": services.timeline,
            "erasure": services.erasure,
            "chat": services.ingest["chat"],
            "voice": services.ingest["voice"],
            "adapter_erasure": erasure_pb2_grpc.ErasureServiceStub(adapter),
        }
        await adapter.close(grace=None)


def _person() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "phone": builders.unique_mobile(),
        "email": f"yuki.{tag}@example.jp",
        "sentence": f"The lighthouse {tag} blinks in Morse for my cat",
    }


async def _accepted(stub: Any, event: Any) -> None:
    result = await submit(stub, event)
    assert result.status == ingest_pb2.SubmitResult.STATUS_ACCEPTED


async def test_erasure_shreds_masks_suppresses_and_leaves_no_plaintext_on_disk(
    system: dict[str, Any], tenant: str, session_dir: Path
) -> None:
    person = _person()
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    chat = builders.chat(
        tenant,
        text=person["sentence"],
        phone=person["phone"],
        email=person["email"],
        name="Yamada Yuki",
        visitor=f"v-{uuid.uuid4().hex[:8]}",
        at=t0,
    )
    call = builders.call(tenant, from_number=person["phone"], at=t0 + timedelta(minutes=5))
    await _accepted(system["chat"], chat)
    await _accepted(system["voice"], call)
    owners = await wait_for_events(system["timeline"], tenant, [chat.event_id, call.event_id])
    customer_id = owners[chat.event_id]
    assert owners[call.event_id] == customer_id
    nats_dir, store_dir = session_dir / "nats", session_dir / "store"
    # Before erasure: all of it is ciphertext (or a blind index) on both disks. The event
    # ids are stored in the clear: once the second is on disk, so is everything before it.
    await wait_until_on_disk(store_dir, call.event_id)
    assert hits(store_dir, person.values()) == {}
    assert hits(nats_dir, person.values()) == {}

    erased = await system["erasure"].EraseCustomer(
        erasure_pb2.EraseCustomerRequest(
            tenant=tenant, customer_id=customer_id, reason="APPI art. 35 request #42", actor=OFFICER
        )
    )

    certificate = erased.certificate
    assert certificate.customer_ids == [customer_id]
    assert certificate.by.subject == "po-1"
    assert certificate.key_ids
    assert all(k.startswith(f"dek/{customer_id}/") for k in certificate.key_ids)
    assert certificate.counts.contacts == 2
    assert dict(certificate.counts.contacts_by_channel) == {"chat": 1, "voice": 1}
    assert certificate.suppressed_identifiers >= 2
    entries = await system["timeline"].GetInteractions(
        timeline_pb2.GetInteractionsRequest(tenant=tenant, event_ids=[chat.event_id, call.event_id])
    )
    assert {e.interaction.content.text for e in entries.entries} == {"[erased]"}
    profile = await system["timeline"].GetCustomers(
        timeline_pb2.GetCustomersRequest(tenant=tenant, customer_ids=[customer_id])
    )
    assert profile.customers[0].display_name == ""
    assert list(profile.customers[0].identifiers) == []
    assert profile.customers[0].interaction_count == 2
    assert hits(store_dir, person.values()) == {}
    assert hits(nats_dir, person.values()) == {}

    # The same phone again: a new customer, flagged, not re-joined to the erased history.
    again = builders.call(tenant, from_number=person["phone"], call_id="call-2")
    await _accepted(system["voice"], again)
    newcomer = (await wait_for_events(system["timeline"], tenant, [again.event_id]))[again.event_id]
    assert newcomer != customer_id
    status = await system["erasure"].GetErasureStatus(
        erasure_pb2.GetErasureStatusRequest(tenant=tenant, customer_id=newcomer)
    )
    assert status.previously_erased
    old = await system["erasure"].GetErasureStatus(
        erasure_pb2.GetErasureStatusRequest(tenant=tenant, customer_id=customer_id)
    )
    assert [c.id for c in old.certificates] == [certificate.id]

    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await system["erasure"].EraseCustomer(
            erasure_pb2.EraseCustomerRequest(
                tenant=tenant, customer_id=customer_id, reason="again", actor=OFFICER
            )
        )
    assert twice.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"tenant": "bad tenant"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"tenant": ""}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"customer_id": ""}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"customer_id": "c" * 300}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"reason": ""}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"reason": "   "}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"reason": "r" * 1001}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"actor": erasure_pb2.ErasureActor()}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"actor": erasure_pb2.ErasureActor(subject="x" * 300)}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"customer_id": "cus_nobody"}, grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_malformed_or_unknown_erasure_requests_are_refused(
    system: dict[str, Any], tenant: str, change: dict[str, Any], code: grpc.StatusCode
) -> None:
    fields: dict[str, Any] = {
        "tenant": tenant,
        "customer_id": "cus_x",
        "reason": "request",
        "actor": OFFICER,
        **change,
    }
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await system["erasure"].EraseCustomer(erasure_pb2.EraseCustomerRequest(**fields))
    assert refused.value.code() == code


async def test_an_adapter_cannot_erase(system: dict[str, Any], tenant: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await system["adapter_erasure"].EraseCustomer(
            erasure_pb2.EraseCustomerRequest(
                tenant=tenant, customer_id="cus_x", reason="r", actor=OFFICER
            )
        )
    assert refused.value.code() in {
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }


async def test_without_keys_erasure_is_refused_as_a_precondition(
    run_timeline: Starter, callers: CallerSet, tenant: str
) -> None:
    async with run_timeline() as timeline:
        channel = channel_for(timeline.server.address, callers.service)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await erasure_pb2_grpc.ErasureServiceStub(channel).EraseCustomer(
                    erasure_pb2.EraseCustomerRequest(
                        tenant=tenant, customer_id="cus_x", reason="r", actor=OFFICER
                    )
                )
        finally:
            await channel.close(grace=None)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
