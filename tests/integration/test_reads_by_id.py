"""Reads by `_id` ask the store by `_id` alone and keep to the tenant in memory: another
tenant's document never comes back, whatever id is asked for (real store)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from services.timeline.profiles.store import CustomerStore
from services.timeline.store.by_id import find_by_ids
from services.timeline.store.documents import Document
from services.timeline.store.versioned import by_ids


@pytest.fixture
async def collection(
    mongodb_uri: str, database_name: str
) -> AsyncIterator[AsyncCollection[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    coll = client[database_name]["customers"]
    await coll.insert_many(
        [
            {"_id": "cus_a1", "tenant": "a", "name": "A one", "version": 1},
            {"_id": "cus_a2", "tenant": "a", "name": "A two", "version": 1},
            {"_id": "cus_b1", "tenant": "b", "name": "B one", "version": 1},
        ]
    )
    yield coll
    await client.drop_database(database_name)
    await client.close()


async def test_another_tenants_document_is_never_returned_by_id(
    collection: AsyncCollection[Document],
) -> None:
    assert set(await by_ids(collection, "a", ["cus_a1", "cus_b1", "cus_a2", "missing"])) == {
        "cus_a1",
        "cus_a2",
    }
    assert await by_ids(collection, "a", ["cus_b1"]) == {}  # one id: asked by equality
    assert list(await by_ids(collection, "b", ["cus_a1", "cus_b1"])) == ["cus_b1"]


async def test_a_projection_of_some_fields_is_scoped_and_keeps_to_those_fields(
    collection: AsyncCollection[Document],
) -> None:
    found = await find_by_ids(collection, "a", ["cus_a1", "cus_b1"], {"_id": 1})
    assert [doc["_id"] for doc in found] == ["cus_a1"]
    assert "name" not in found[0]
    excluded = await find_by_ids(collection, "b", ["cus_a2", "cus_b1"], {"name": 0})
    assert [(doc["_id"], "name" in doc) for doc in excluded] == [("cus_b1", False)]


async def test_merge_pointers_are_read_without_the_profile_and_scoped_to_the_tenant(
    collection: AsyncCollection[Document],
) -> None:
    await collection.update_one({"_id": "cus_a1"}, {"$set": {"merged_into": "cus_a2"}})
    customers = CustomerStore(collection)
    assert await customers.merged_into("a", ["cus_a1", "cus_a2", "cus_b1", "missing"]) == {
        "cus_a1": "cus_a2",
        "cus_a2": "",
    }
