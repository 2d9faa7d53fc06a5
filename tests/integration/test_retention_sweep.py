"""The retention sweep on the real store: what expired goes, the rest stays, reads delete
nothing, and a TTL index an earlier version made is replaced by a plain one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import ASCENDING, AsyncMongoClient, IndexModel

from services.timeline.audit.model import Access, chained
from services.timeline.interactions.entries import interaction_document
from services.timeline.store.documents import Document
from services.timeline.stores import TimelineStore
from tests import builders

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
KEPT = timedelta(days=30)


@pytest.fixture
async def client(mongodb_uri: str) -> AsyncIterator[AsyncMongoClient[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    yield client
    await client.close()


def _store(client: AsyncMongoClient[Document], name: str) -> TimelineStore:
    # "kept" tenants keep interactions 30 days; the others until erased.
    return TimelineStore(
        client[name],
        retention=lambda tenant: KEPT if tenant == "kept" else None,
        audit_retention=timedelta(days=400),
    )


async def _append(store: TimelineStore, tenant: str, hours: int) -> str:
    chat = builders.chat(tenant, at=T0 + timedelta(hours=hours))
    doc = interaction_document(
        chat,
        customer_id="cus_1",
        occurred_at=T0 + timedelta(hours=hours),
        recorded_at=T0 + timedelta(hours=hours),
        identifiers=[],
    )
    assert await store.interactions.insert_interactions([doc])
    return chat.event_id


async def _event_ids(client: AsyncMongoClient[Document], name: str, tenant: str) -> set[str]:
    log = client[name]["interactions"]
    return {doc["event_id"] async for doc in log.find({"tenant": tenant}, {"event_id": 1})}


async def test_a_sweep_deletes_what_ran_out_before_its_instant_and_nothing_else(
    client: AsyncMongoClient[Document], database_name: str
) -> None:
    store = _store(client, database_name)
    await store.ensure_indexes()
    first, second, third = [await _append(store, "kept", hours) for hours in (0, 1, 2)]
    forever = await _append(store, "forever", 0)

    # Half an hour after the first ran out: only the first goes.
    deleted = await store.interactions.delete_expired(T0 + KEPT + timedelta(minutes=30))
    assert deleted == 1
    assert await _event_ids(client, database_name, "kept") == {second, third}
    assert first not in await _event_ids(client, database_name, "kept")
    # A year on: every entry of the tenant with retention, none of the other's.
    assert await store.interactions.delete_expired(T0 + timedelta(days=365)) == 2
    assert await _event_ids(client, database_name, "kept") == set()
    assert await _event_ids(client, database_name, "forever") == {forever}


async def test_reads_delete_nothing_only_the_sweep_does(
    client: AsyncMongoClient[Document], database_name: str
) -> None:
    # The entry ran out long ago. A TTL index would have the embedded store delete it at the
    # first read (it purges before every read); a plain index leaves it to the sweep.
    store = _store(client, database_name)
    await store.ensure_indexes()
    event_id = await _append(store, "kept", 0)
    for _ in range(3):
        assert await _event_ids(client, database_name, "kept") == {event_id}
    assert await store.interactions.delete_expired(datetime.now(UTC)) == 1
    assert await _event_ids(client, database_name, "kept") == set()


async def test_ttl_indexes_an_earlier_version_made_are_replaced_by_plain_ones(
    client: AsyncMongoClient[Document], database_name: str
) -> None:
    db = client[database_name]
    await db["interactions"].create_indexes(
        [IndexModel([("expire_at", ASCENDING)], name="expire_at", expireAfterSeconds=0)]
    )
    await db["audit_log"].create_indexes(
        [IndexModel([("at", ASCENDING)], name="retention", expireAfterSeconds=3600)]
    )
    store = _store(client, database_name)
    await store.ensure_indexes()
    await store.ensure_indexes()  # idempotent
    for collection, field in (("interactions", "expire_at"), ("audit_log", "at")):
        indexes = await db[collection].index_information()
        on_field = [info for info in indexes.values() if next(iter(info["key"]))[0] == field]
        assert len(on_field) == 1, indexes
        assert "expireAfterSeconds" not in on_field[0], indexes


async def test_audit_records_older_than_the_retention_are_swept_from_the_old_end(
    client: AsyncMongoClient[Document], database_name: str
) -> None:
    store = _store(client, database_name)
    await store.ensure_indexes()
    access = Access(
        subject="agent-1",
        customer_id="cus_1",
        operation="read_timeline",
        fields=[],
        client_address="127.0.0.1",
        reason="",
        roles=["agent"],
    )
    previous = "0" * 64
    records = []
    for sequence, days in enumerate((500, 401, 10), start=1):
        record = chained(
            "acme", sequence, access, at=T0 - timedelta(days=days), previous_hash=previous
        )
        previous = record["hash"]
        records.append(record)
    await store.audit.append(records)

    assert await store.audit.delete_expired(T0) == 2
    left = [doc["sequence"] async for doc in store.audit.in_order("acme")]
    assert left == [3]
