"""Store conformance: every MongoDB operation the timeline issues, on the store in use.

Runs against `MONGODB_URI` when set (a real MongoDB) and the embedded nx-27017 store otherwise.
Where the embedded store deviates from MongoDB, the test is marked `real_mongodb` and names the
deviation, so that nobody bends the data model to a stand-in's bug (docs/store-compat.md).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from services.timeline.identity.documents import Claim, MergeEntry
from services.timeline.interactions.model import InteractionDoc
from services.timeline.profiles.profile import new_customer
from services.timeline.store.command_counts import CommandCounts
from services.timeline.store.documents import Document, interaction_key
from services.timeline.stores import TimelineStore
from tests.integration.counted_store import SentFinds, commands_sent
from tests.integration.timeline_db import timeline_db

ON_REAL_MONGODB = bool(os.environ.get("MONGODB_URI"))
real_mongodb_only = pytest.mark.skipif(
    not ON_REAL_MONGODB, reason="embedded store deviation; set MONGODB_URI to check"
)

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(mongodb_uri: str, database_name: str) -> AsyncIterator[TimelineStore]:
    async with timeline_db(mongodb_uri, database_name) as store:
        yield store


def interaction(
    tenant: str, event_id: str, customer: str, at: datetime, channel: str = "chat"
) -> InteractionDoc:
    return {
        "_id": interaction_key(tenant, event_id),
        "tenant": tenant,
        "event_id": event_id,
        "customer_id": customer,
        "origin_customer_id": customer,
        "channel": channel,
        "kind": "message",
        "direction": "inbound",
        "occurred_at": at,
        "recorded_at": at,
        "conversation_ref": "",
        "identifiers": [],
        "raw": b"\x0a\x01x",
        "projected": False,
    }


async def index_keys(store: TimelineStore) -> dict[tuple[str, ...], bool]:
    """Index field sequences of the interactions collection → unique flag."""
    return {
        tuple(ix["key"]): bool(ix.get("unique"))
        async for ix in await store.db["interactions"].list_indexes()
    }


async def test_ensure_indexes_is_idempotent(store: TimelineStore) -> None:
    await store.ensure_indexes()
    keys = await index_keys(store)
    assert keys[("tenant", "event_id")] is True
    assert ("tenant", "customer_id", "timeline_key") in keys
    assert ("customer_id",) in keys


@real_mongodb_only
async def test_indexes_keep_their_names_and_directions(store: TimelineStore) -> None:
    """nx-27017 deviation: index names are replaced and every key is stored ascending."""
    indexes = {ix["name"]: ix async for ix in await store.db["interactions"].list_indexes()}
    assert dict(indexes["tenant_customer_timeline_key"]["key"])["timeline_key"] == -1


async def test_unique_event_id_per_tenant(store: TimelineStore) -> None:
    assert await store.interactions.insert_interaction(interaction("a", "e1", "c1", T0))
    assert not await store.interactions.insert_interaction(interaction("a", "e1", "c1", T0))
    # The same event id in another tenant is another event.
    assert await store.interactions.insert_interaction(interaction("b", "e1", "c9", T0))


async def test_dates_round_trip_as_aware_datetimes(store: TimelineStore) -> None:
    await store.interactions.insert_interaction(interaction("a", "e1", "c1", T0))
    doc = await store.db["interactions"].find_one({"_id": interaction_key("a", "e1")})
    assert doc is not None
    assert doc["occurred_at"] == T0
    assert doc["occurred_at"].tzinfo is not None


async def test_timeline_page_order_cursor_and_filters(store: TimelineStore) -> None:
    for i in range(6):
        # Two events share each timestamp: the event id breaks the tie.
        at = T0 + timedelta(minutes=i // 2)
        await store.interactions.insert_interaction(
            interaction("a", f"e{i}", "c1", at, channel="chat" if i % 2 else "voice")
        )
    await store.interactions.insert_interaction(interaction("a", "other", "c2", T0))
    page = await store.interactions.list_interactions("a", "c1", limit=3)
    assert [d["event_id"] for d in page] == ["e5", "e4", "e3"]
    last = page[-1]
    rest = await store.interactions.list_interactions(
        "a", "c1", limit=10, before=(last["occurred_at"], "e3")
    )
    assert [d["event_id"] for d in rest] == ["e2", "e1", "e0"]
    chats = await store.interactions.list_interactions("a", "c1", limit=10, channels=["chat"])
    assert [d["event_id"] for d in chats] == ["e5", "e3", "e1"]
    window = await store.interactions.list_interactions(
        "a", "c1", limit=10, since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2)
    )
    assert [d["event_id"] for d in window] == ["e3", "e2"]


async def test_paging_by_cursor_through_many_ties_and_a_window_misses_and_repeats_nothing(
    store: TimelineStore,
) -> None:
    same = T0 + timedelta(minutes=5)
    ids = [f"t{i}" for i in range(5)]  # five events at one instant
    for event_id in ids:
        await store.interactions.insert_interaction(interaction("a", event_id, "c1", same))
    for i in range(3):
        await store.interactions.insert_interaction(
            interaction("a", f"o{i}", "c1", T0 + timedelta(minutes=i))
        )
    seen: list[str] = []
    before = None
    while True:
        page = await store.interactions.list_interactions("a", "c1", limit=2, before=before)
        if not page:
            break
        seen += [d["event_id"] for d in page]
        before = (page[-1]["occurred_at"], page[-1]["event_id"])
    assert seen == ["t4", "t3", "t2", "t1", "t0", "o2", "o1", "o0"]
    # A cursor inside the tie, with an `until` that cuts the tie's instant off.
    cut = await store.interactions.list_interactions(
        "a", "c1", limit=10, before=(same, "t2"), until=T0 + timedelta(minutes=2)
    )
    assert [d["event_id"] for d in cut] == ["o1", "o0"]
    kept = await store.interactions.list_interactions(
        "a", "c1", limit=10, before=(same, "t2"), since=T0 + timedelta(minutes=1)
    )
    assert [d["event_id"] for d in kept] == ["t1", "t0", "o2", "o1"]


async def test_identity_claims_report_conflicts_and_insert_the_rest(store: TimelineStore) -> None:
    keys = [("phone", "+819011112222"), ("email", "a@example.jp")]
    assert await store.identities.claim_identities(Claim("a", "c1", keys[:1], "e1", T0)) == []
    conflicts = await store.identities.claim_identities(Claim("a", "c2", keys, "e2", T0))
    assert conflicts == [keys[0]]
    owners = await store.identities.identity_owners("a", keys)
    assert owners == {keys[0]: "c1", keys[1]: "c2"}
    assert await store.identities.identity_owners("b", keys) == {}


async def test_repointing_moves_only_that_tenants_documents(store: TimelineStore) -> None:
    await store.interactions.insert_interaction(interaction("a", "e1", "c1", T0))
    await store.interactions.insert_interaction(interaction("b", "e1", "c1", T0))
    await store.identities.claim_identities(Claim("a", "c1", [("phone", "+1")], "e1", T0))
    assert await store.interactions.repoint("a", ["c1"], "c3") == 1
    assert await store.identities.repoint_identities("a", ["c1"], "c3") == 1
    assert (await store.db["interactions"].find_one({"_id": interaction_key("b", "e1")}) or {})[
        "customer_id"
    ] == "c1"
    assert await store.identities.identity_owners("a", [("phone", "+1")]) == {("phone", "+1"): "c3"}


async def test_optimistic_replace_keeps_dates_and_refuses_stale_versions(
    store: TimelineStore,
) -> None:
    doc = new_customer(tenant="a", customer_id="c1", created_at=T0, first_contact_at=T0)
    assert await store.customers.insert_customer(doc)
    later = doc.copy()
    later["last_contact_at"] = T0 + timedelta(days=1)
    assert await store.customers.replace_customer(later, expected_version=0)
    assert not await store.customers.replace_customer(later, expected_version=0)
    stored = (await store.customers.get_customers("a", ["c1"]))["c1"]
    assert stored["version"] == 1
    assert isinstance(stored["last_contact_at"], datetime)
    # Still a date: range queries find it.
    assert await store.db["customers"].count_documents({"last_contact_at": {"$gt": T0}}) == 1


async def test_channel_counts_and_contact_bounds(store: TimelineStore) -> None:
    for i, channel in enumerate(["chat", "voice", "chat"]):
        await store.interactions.insert_interaction(
            interaction("a", f"e{i}", "c1", T0 + timedelta(hours=i), channel=channel)
        )
    assert await store.interactions.channel_counts("a", "c1") == {"chat": 2, "voice": 1}
    assert await store.interactions.contact_bounds("a", "c1") == (T0, T0 + timedelta(hours=2))
    assert await store.interactions.contact_bounds("a", "nobody") == (None, None)


async def test_lookup_events_and_projection_flag(store: TimelineStore) -> None:
    await store.interactions.insert_interaction(interaction("a", "e1", "c1", T0))
    stored = await store.interactions.interaction_state("a", "e1")
    assert stored is not None
    assert stored.get("projected") is False
    await store.interactions.mark_projected("a", ["e1"])
    # The timeline only relies on truthiness (see the boolean deviation below).
    projected = await store.interactions.interaction_state("a", "e1")
    assert projected is not None
    assert projected.get("projected")
    found = await store.interactions.lookup_events("a", ["e1", "missing"])
    assert [(d["event_id"], d["customer_id"]) for d in found] == [("e1", "c1")]


async def test_merge_ledger_entries_are_written_once(store: TimelineStore) -> None:
    entry: MergeEntry = {
        "_id": "m1",
        "tenant": "a",
        "survivor_id": "c1",
        "merged_ids": ["c2"],
        "rule": "manual",
        "actor": {"type": "agent", "id": "a1", "display_name": ""},
        "reason": "",
        "at": T0,
        "status": "pending",
        "evidence": {"event_id": "e1", "identifiers": []},
        "before": [],
    }
    await store.identities.record_merge(entry)
    await store.identities.record_merge(entry)
    assert [m["_id"] for m in await store.identities.merges_of("a", "c1")] == ["m1"]


async def test_a_timeline_page_is_a_range_of_the_compound_index_on_either_store(
    mongodb_uri: str, database_name: str
) -> None:
    """The page query as the store receives it: the compound index serves filter and order.

    On the embedded store a bare `tenant` equality read the customer's whole history and
    sorted it for every page; MongoDB names the index, the embedded store its SQLite copy.
    """
    finds = SentFinds()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_uri, tz_aware=True, event_listeners=[finds]
    )
    try:
        store = TimelineStore(client[database_name])
        await store.ensure_indexes()
        for i in range(4):
            at = T0 + timedelta(minutes=i)
            await store.interactions.insert_interaction(interaction("a", f"e{i}", "c1", at))
        # Another tenant's entry under the same customer id stays out of tenant a's pages.
        await store.interactions.insert_interaction(interaction("b", "e9", "c1", T0))
        finds.sent.clear()

        page = await store.interactions.list_interactions(
            "a", "c1", limit=2, before=(T0 + timedelta(minutes=3), "e3")
        )

        assert [d["event_id"] for d in page] == ["e2", "e1"]
        [sent] = [command for command in finds.sent if command["find"] == "interactions"]
        plan = str(
            await store.db["interactions"]
            .find(sent["filter"])
            .sort(list(sent["sort"].items()))
            .explain()
        )
        if ON_REAL_MONGODB:
            assert "tenant_customer_timeline_key" in plan
            assert "'SORT'" not in plan
        else:
            assert "idx_interactions_tenant_customer_id_timeline_key" in plan
            assert "TEMP B-TREE" not in plan
        everything = await store.interactions.list_interactions("a", "c1", limit=10)
        assert [d["event_id"] for d in everything] == ["e3", "e2", "e1", "e0"]
    finally:
        await client.drop_database(database_name)
        await client.close()


async def test_every_page_of_a_long_timeline_is_one_find_in_one_reply(
    counted: tuple[TimelineStore, CommandCounts],
) -> None:
    """An export reads every page: each costs one command, whatever its entries."""
    store, counts = counted
    await store.interactions.insert_interactions(
        [interaction("a", f"e{i:03}", "c1", T0 + timedelta(seconds=i)) for i in range(450)]
    )
    before = commands_sent(counts)

    read: list[str] = []
    cursor: tuple[datetime, str] | None = None
    while True:
        # As `ListInteractions` asks: a page of 200 and one more to tell whether more follow.
        page = await store.interactions.list_interactions("a", "c1", limit=201, before=cursor)
        read += [d["event_id"] for d in page[:200]]
        if len(page) <= 200:
            break
        cursor = (page[199]["occurred_at"], page[199]["event_id"])

    assert read == [f"e{i:03}" for i in reversed(range(450))]
    # No getMore: the default first reply (101 documents) cost a second round trip a page.
    assert commands_sent(counts) - before == Counter({"find:interactions": 3})


@real_mongodb_only
async def test_set_with_a_datetime_stores_a_date(store: TimelineStore) -> None:
    """nx-27017 deviation: `$set` with a datetime stores a string (date queries miss it)."""
    await store.db["customers"].insert_one({"_id": "c1", "tenant": "a"})
    await store.db["customers"].update_one({"_id": "c1"}, {"$set": {"at": T0}})
    assert await store.db["customers"].count_documents({"at": {"$gte": T0}}) == 1


@real_mongodb_only
async def test_timeline_query_uses_the_compound_index(store: TimelineStore) -> None:
    """nx-27017 deviation: compound indexes are never used by queries (full scans)."""
    plan = (
        await store.db["interactions"]
        .find({"tenant": "a", "customer_id": "c1", "timeline_key": {"$lt": "1"}})
        .sort([("timeline_key", -1)])
        .explain()
    )
    assert "tenant_customer_timeline_key" in str(plan)


@real_mongodb_only
async def test_set_with_a_boolean_stores_a_boolean(store: TimelineStore) -> None:
    """nx-27017 deviation: `$set` with True stores the integer 1."""
    await store.interactions.insert_interaction(interaction("a", "e1", "c1", T0))
    await store.interactions.mark_projected("a", ["e1"])
    projected = await store.interactions.interaction_state("a", "e1")
    assert projected is not None
    assert projected.get("projected") is True


async def test_interactions_stored_before_timeline_keys_are_given_theirs_at_start(
    store: TimelineStore,
) -> None:
    # As a store written by an earlier version holds them: no timeline key.
    for i in range(3):
        await store.db["interactions"].insert_one(
            dict(interaction("a", f"old{i}", "c1", T0 + timedelta(minutes=i)))
        )
    await store.interactions.insert_interaction(
        interaction("a", "new", "c1", T0 + timedelta(minutes=5))
    )

    await store.ensure_indexes()  # what the timeline runs at start

    # Pages are ranges of the key: without it the old entries fell out of order and out of
    # every cursor page.
    page = await store.interactions.list_interactions("a", "c1", limit=10)
    assert [d["event_id"] for d in page] == ["new", "old2", "old1", "old0"]
    older = await store.interactions.list_interactions(
        "a", "c1", limit=10, before=(T0 + timedelta(minutes=5), "new")
    )
    assert [d["event_id"] for d in older] == ["old2", "old1", "old0"]
    assert await store.interactions.backfill_timeline_keys() == 0  # nothing left to do
