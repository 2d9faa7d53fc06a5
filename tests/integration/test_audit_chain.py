"""The read audit on the real store and over real gRPC: chained, paged, verified, tamper-evident."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, cast

import grpc
import pytest

from services.timeline.audit.chain import AuditChain
from services.timeline.audit.model import Access, AuditDoc, record_hash
from services.timeline.stores import TimelineStore
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.timeline_db import timeline_db
from tsunagu.grpc_callers import issue_credential
from tsunagu.v1 import privacy_pb2, privacy_pb2_grpc

Starter = Callable[..., AbstractAsyncContextManager[Any]]


def _access(
    customer_id: str, *, subject: str = "agent-7", operation: str = "read_profile"
) -> Access:
    return Access(
        subject=subject,
        customer_id=customer_id,
        operation=operation,
        fields=[],
        client_address="192.0.2.10",
        reason="",
        roles=["agent"],
    )


def _proto(customer: str, **changes: Any) -> privacy_pb2.Access:
    access = privacy_pb2.Access(
        subject="agent-7",
        customer_id=customer,
        operation="read_profile",
        client_address="192.0.2.10",
        roles=["agent"],
    )
    for name, value in changes.items():
        if isinstance(value, list):
            getattr(access, name).extend(value)
        else:
            setattr(access, name, value)
    return access


@pytest.fixture
async def store(mongodb_uri: str, database_name: str) -> AsyncIterator[TimelineStore]:
    async with timeline_db(mongodb_uri, database_name) as opened:
        yield opened


@pytest.fixture
async def privacy(
    run_timeline: Starter, callers: CallerSet
) -> AsyncIterator[tuple[privacy_pb2_grpc.PrivacyServiceAsyncStub, Any]]:
    async with run_timeline() as timeline:
        channel = channel_for(timeline.server.address, callers.service)
        try:
            yield privacy_pb2_grpc.PrivacyServiceStub(channel), timeline.store
        finally:
            await channel.close(None)


async def test_two_replicas_appending_at_once_keep_one_unbroken_chain(
    store: TimelineStore, tenant: str
) -> None:
    # Two chains over one store: two timeline replicas, each with its own lock and head.
    replicas = [AuditChain(store.audit, clock=lambda: datetime.now(UTC)) for _ in range(2)]
    readers = [
        replicas[n % 2].append(tenant, [_access(f"cus-{n}"), _access(f"cus-{n}", operation="x")])
        for n in range(60)
    ]

    stored = await asyncio.gather(*readers)

    sequences = sorted(doc["sequence"] for batch in stored for doc in batch)
    assert sequences == list(range(1, 121))  # nothing lost, nothing doubled, no gap
    for n, batch in enumerate(stored):  # each reader got its own records, in its order
        assert [(doc["customer_id"], doc["operation"]) for doc in batch] == [
            (f"cus-{n}", "read_profile"),
            (f"cus-{n}", "x"),
        ]
    verdict = await replicas[0].verify(tenant)
    assert (verdict.intact, verdict.checked) == (True, 120)


async def test_accesses_are_recorded_listed_per_customer_and_paged(
    privacy: tuple[privacy_pb2_grpc.PrivacyServiceAsyncStub, Any], tenant: str
) -> None:
    stub, _ = privacy
    customer = f"cus_{uuid.uuid4().hex}"
    accesses = [_proto(customer), _proto("cus_other"), _proto(customer, operation="reveal")]

    recorded = await stub.RecordAccess(
        privacy_pb2.RecordAccessRequest(tenant=tenant, accesses=accesses)
    )
    first = await stub.ListAudit(
        privacy_pb2.ListAuditRequest(tenant=tenant, customer_id=customer, page_size=1)
    )
    second = await stub.ListAudit(
        privacy_pb2.ListAuditRequest(
            tenant=tenant, customer_id=customer, page_size=1, cursor=first.next_cursor
        )
    )
    everyone = await stub.ListAudit(privacy_pb2.ListAuditRequest(tenant=tenant))

    assert list(recorded.sequences) == [1, 2, 3]
    assert [r.access.operation for r in (*first.records, *second.records)] == [
        "reveal",
        "read_profile",
    ]
    assert (first.has_more, second.has_more) == (True, False)
    assert [r.sequence for r in everyone.records] == [3, 2, 1]
    record = everyone.records[-1]
    assert (record.access.subject, record.access.client_address) == ("agent-7", "192.0.2.10")
    assert record.previous_hash == "0" * 64
    assert everyone.records[-2].previous_hash == record.hash


async def test_editing_or_removing_a_stored_record_is_detected(
    privacy: tuple[privacy_pb2_grpc.PrivacyServiceAsyncStub, Any], tenant: str
) -> None:
    stub, store = privacy
    await stub.RecordAccess(
        privacy_pb2.RecordAccessRequest(
            tenant=tenant, accesses=[_proto(f"cus-{n}") for n in range(5)]
        )
    )
    verify = privacy_pb2.VerifyAuditChainRequest(tenant=tenant)
    assert (await stub.VerifyAuditChain(verify)).intact
    log = store.db["audit_log"]

    # Somebody with store access hides who read customer 2.
    await log.update_one({"tenant": tenant, "sequence": 3}, {"$set": {"subject": "nobody"}})
    edited = await stub.VerifyAuditChain(verify)
    # ... and recomputes that record's hash: the next record's link breaks instead.
    doc = await log.find_one({"tenant": tenant, "sequence": 3})
    assert doc is not None
    kept = {key: value for key, value in doc.items() if key not in {"_id", "customer_key"}}
    rehashed = record_hash(cast("AuditDoc", kept))
    await log.update_one({"_id": doc["_id"]}, {"$set": {"hash": rehashed}})
    relinked = await stub.VerifyAuditChain(verify)
    # ... or removes a record altogether.
    await log.delete_one({"tenant": tenant, "sequence": 2})
    removed = await stub.VerifyAuditChain(verify)

    assert (edited.intact, edited.first_broken_sequence, edited.problem) == (False, 3, "hash")
    assert (relinked.intact, relinked.first_broken_sequence, relinked.problem) == (False, 4, "link")
    assert (removed.intact, removed.first_broken_sequence, removed.problem) == (False, 2, "gap")


@pytest.mark.parametrize(
    ("request_", "mentioning"),
    [
        (privacy_pb2.RecordAccessRequest(tenant="no such tenant!"), "tenant"),
        (
            privacy_pb2.RecordAccessRequest(accesses=[_proto("c", subject="")]),
            "subject and operation",
        ),
        (privacy_pb2.RecordAccessRequest(accesses=[_proto("c", reason="x" * 1001)]), "reason"),
        (
            privacy_pb2.RecordAccessRequest(accesses=[_proto("c", customer_id="c" * 300)]),
            "customer_id",
        ),
        (privacy_pb2.RecordAccessRequest(accesses=[_proto("c")] * 1001), "at most 1000"),
        (privacy_pb2.RecordAccessRequest(accesses=[_proto("c", fields=["f"] * 33)]), "fields"),
        (privacy_pb2.ListAuditRequest(page_size=201), "page_size"),
        (privacy_pb2.ListAuditRequest(page_size=-1), "page_size"),
        (privacy_pb2.ListAuditRequest(cursor="../1"), "cursor"),
        (privacy_pb2.ListAuditRequest(cursor="9" * 40), "cursor"),
    ],
)
async def test_malformed_oversized_and_hostile_requests_are_refused_and_record_nothing(
    privacy: tuple[privacy_pb2_grpc.PrivacyServiceAsyncStub, Any],
    tenant: str,
    request_: Any,
    mentioning: str,
) -> None:
    stub, _ = privacy
    if not request_.tenant:
        request_.tenant = tenant
    call = (
        stub.RecordAccess
        if isinstance(request_, privacy_pb2.RecordAccessRequest)
        else stub.ListAudit
    )

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(request_)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert mentioning in (refused.value.details() or "")
    # Nothing of a refused batch is recorded, and good requests still are.
    good = privacy_pb2.RecordAccessRequest(tenant=tenant, accesses=[_proto("c")])
    assert list((await stub.RecordAccess(good)).sequences) == [1]


async def test_a_caller_of_one_tenant_cannot_read_or_write_anothers_audit(
    run_timeline: Starter, callers: CallerSet, tenant: str
) -> None:
    credential, token = issue_credential("gateway-of-one", kind="service", tenants=[tenant])
    async with run_timeline(callers=[*callers.credentials, credential]) as timeline:
        channel = channel_for(timeline.server.address, token)
        stub = privacy_pb2_grpc.PrivacyServiceStub(channel)
        try:
            for call in (
                stub.RecordAccess(
                    privacy_pb2.RecordAccessRequest(tenant="globex", accesses=[_proto("c")])
                ),
                stub.ListAudit(privacy_pb2.ListAuditRequest(tenant="globex")),
                stub.VerifyAuditChain(privacy_pb2.VerifyAuditChainRequest(tenant="globex")),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await call
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            own = await stub.ListAudit(privacy_pb2.ListAuditRequest(tenant=tenant))
        finally:
            await channel.close(None)
    assert list(own.records) == []
