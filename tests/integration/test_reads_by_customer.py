"""Reads of a few customers' documents ask by `customer_id` equality, one read per customer
sent together, and keep to the tenant in memory (real store): not a `customer_id $in`, which
the embedded store answers by scanning the whole collection, unless there are many."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from services.timeline.store.by_customer import EQUALITY_READS, find_by_customers
from services.timeline.store.documents import Document
from tests.integration.counted_store import SentFinds


@pytest.fixture
async def listened(
    mongodb_uri: str, database_name: str
) -> AsyncIterator[tuple[AsyncCollection[Document], SentFinds]]:
    finds = SentFinds()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_uri, tz_aware=True, event_listeners=[finds]
    )
    coll = client[database_name]["interactions"]
    await coll.create_index("customer_id", name="customer")
    await coll.insert_many(
        [
            *(
                {"_id": f"a/e{k}", "tenant": "a", "customer_id": f"cus_{k % 3}", "n": k}
                for k in range(9)
            ),
            # Another tenant's entry naming a customer of tenant a (a forged id).
            {"_id": "b/e0", "tenant": "b", "customer_id": "cus_0", "n": 100},
        ]
    )
    yield coll, finds
    await client.drop_database(database_name)
    await client.close()


async def test_each_customer_is_read_by_equality_and_another_tenants_entries_stay_out(
    listened: tuple[AsyncCollection[Document], SentFinds],
) -> None:
    coll, finds = listened
    finds.sent.clear()
    found = await find_by_customers(coll, "a", ["cus_0", "cus_2", "cus_0", "nobody"])

    assert sorted(doc["n"] for doc in found) == [0, 2, 3, 5, 6, 8]
    assert {doc["tenant"] for doc in found} == {"a"}
    # One read per customer asked (duplicates asked once), each an equality: no `$in`.
    asked = finds.filters("interactions")
    assert sorted(f["customer_id"] for f in asked) == ["cus_0", "cus_2", "nobody"], asked
    assert all(set(f) == {"customer_id"} for f in asked), asked
    assert await find_by_customers(coll, "a", []) == []


async def test_a_projection_of_some_fields_keeps_tenant_to_scope_them(
    listened: tuple[AsyncCollection[Document], SentFinds],
) -> None:
    coll, _ = listened
    found = await find_by_customers(coll, "b", ["cus_0", "cus_1"], {"n": 1})
    assert [doc["n"] for doc in found] == [100]
    assert "customer_id" not in found[0]


async def test_more_customers_than_the_equality_reads_are_read_with_one_in_list(
    listened: tuple[AsyncCollection[Document], SentFinds],
) -> None:
    coll, finds = listened
    finds.sent.clear()
    wanted = ["cus_0", "cus_1", *(f"absent{k}" for k in range(EQUALITY_READS))]
    found = await find_by_customers(coll, "a", wanted)

    assert sorted(doc["n"] for doc in found) == [0, 1, 3, 4, 6, 7]
    assert {doc["tenant"] for doc in found} == {"a"}
    [asked] = finds.filters("interactions")
    assert asked == {"customer_id": {"$in": wanted}}, asked
    # At the bound, still one equality each.
    finds.sent.clear()
    await find_by_customers(coll, "a", wanted[:EQUALITY_READS])
    assert len(finds.filters("interactions")) == EQUALITY_READS
