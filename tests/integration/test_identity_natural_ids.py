"""Identities are keyed by `tenant/kind/value` and looked up by `_id` alone; those an earlier
version stored under a store-assigned `_id` are converted at start, or adopted by the claim they
refuse during a rolling upgrade (real store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from services.timeline.identity.documents import Claim
from services.timeline.recorder import Recorded
from services.timeline.store.documents import Document
from services.timeline.stores import TimelineStore
from tests import builders
from tests.integration.counted_store import SentFinds, recorder_over
from tsunagu.crypto import LocalKeyFile

T0 = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)  # BSON keeps ms


@pytest.fixture
async def client(
    mongodb_uri: str, database_name: str
) -> AsyncIterator[tuple[AsyncMongoClient[Document], SentFinds]]:
    finds = SentFinds()
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_uri, tz_aware=True, event_listeners=[finds]
    )
    yield mongo, finds
    await mongo.drop_database(database_name)
    await mongo.close()


def _legacy(tenant: str, kind: str, value: str, customer_id: str) -> Document:
    """An identity as an earlier version stored it: the store chose its `_id`."""
    return {
        "_id": ObjectId(),
        "tenant": tenant,
        "kind": kind,
        "value": value,
        "customer_id": customer_id,
        "customer_ids": [customer_id],
        "first_event_id": f"event-of-{customer_id}",
        "created_at": T0,
    }


async def test_a_batch_finds_its_customers_identifiers_by_id_alone(
    client: tuple[AsyncMongoClient[Document], SentFinds], database_name: str, tenant: str
) -> None:
    mongo, finds = client
    store = TimelineStore(mongo[database_name])
    await store.ensure_indexes()
    recorder = recorder_over(store)
    first = await recorder.record_batch(
        [builders.chat(tenant, visitor=f"v{k}", at=T0) for k in range(5)]
    )
    finds.sent.clear()

    again = await recorder.record_batch(
        [builders.chat(tenant, visitor=f"v{k}", at=T0 + timedelta(minutes=1)) for k in range(5)]
    )

    assert [o.customer_id for o in again if isinstance(o, Recorded)] == [
        o.customer_id for o in first if isinstance(o, Recorded)
    ]
    # The lookup of the batch's identifiers: one find, by `_id` alone (no scan on any store).
    filters = finds.filters("identities")
    assert [list(f) for f in filters] == [["_id"]], filters
    stored = await mongo[database_name]["identities"].find({"tenant": tenant}).to_list()
    assert sorted(d["_id"] for d in stored) == [f"{tenant}/chat_visitor/v{k}" for k in range(5)]


async def test_identities_of_an_earlier_version_get_their_natural_id_at_start_once(
    client: tuple[AsyncMongoClient[Document], SentFinds], database_name: str, tenant: str
) -> None:
    mongo, _ = client
    identities = mongo[database_name]["identities"]
    old = [_legacy(tenant, "email", f"p{k}@shop.example", f"cus_{k}") for k in range(7)]
    await identities.insert_many(old)
    store = TimelineStore(mongo[database_name])

    await store.ensure_indexes()

    stored = {d["_id"]: d async for d in identities.find({"tenant": tenant})}
    assert set(stored) == {f"{tenant}/email/p{k}@shop.example" for k in range(7)}
    for doc in old:
        assert stored[f"{tenant}/email/{doc['value']}"] == {
            **doc,
            "_id": f"{tenant}/email/{doc['value']}",
        }
    owners = await store.identities.identity_owners(tenant, [("email", "p3@shop.example")])
    assert owners == {("email", "p3@shop.example"): "cus_3"}
    # A second start reads the mark and converts nothing, even what it would convert.
    await identities.insert_one(_legacy(tenant, "email", "late@shop.example", "cus_late"))
    await store.ensure_indexes()
    assert await identities.count_documents({"value": "late@shop.example"}) == 1
    assert (await identities.find_one({"value": "late@shop.example"}) or {})["_id"] != (
        f"{tenant}/email/late@shop.example"
    )


async def test_an_identifier_an_earlier_replica_stored_meanwhile_is_found_and_adopted(
    client: tuple[AsyncMongoClient[Document], SentFinds], database_name: str, tenant: str
) -> None:
    mongo, _ = client
    store = TimelineStore(mongo[database_name])
    await store.ensure_indexes()
    recorder = recorder_over(store)
    [known] = await recorder.record_batch([builders.chat(tenant, visitor="known", at=T0)])
    assert isinstance(known, Recorded)
    # A replica of the earlier version, still running in a rolling upgrade, stores one.
    identities = mongo[database_name]["identities"]
    await identities.insert_one(_legacy(tenant, "chat_visitor", "rolling", known.customer_id))

    [event] = await recorder.record_batch(
        [builders.chat(tenant, visitor="rolling", at=T0 + timedelta(minutes=1))]
    )

    # Not a new customer: the claim the store refused adopted the identity, and resolving
    # again found its holder.
    assert isinstance(event, Recorded)
    assert event.customer_id == known.customer_id
    assert await store.db["customers"].count_documents({"tenant": tenant}) == 1
    [adopted] = await identities.find({"value": "rolling"}).to_list()
    assert adopted["_id"] == f"{tenant}/chat_visitor/rolling"
    assert adopted["customer_id"] == known.customer_id


async def test_presenters_are_added_to_an_identity_an_earlier_replica_stored(
    client: tuple[AsyncMongoClient[Document], SentFinds], database_name: str, tenant: str
) -> None:
    mongo, _ = client
    store = TimelineStore(mongo[database_name])
    await store.ensure_indexes()
    await mongo[database_name]["identities"].insert_one(
        _legacy(tenant, "phone", "+81311112222", "cus_old")
    )
    await store.identities.claim_identities(
        Claim(tenant, "cus_new", [("phone", "+819000000000")], "e1", T0)
    )

    await store.identities.add_identity_customers(
        tenant, [("phone", "+81311112222"), ("phone", "+819000000000")], ["cus_other"]
    )

    stored = {
        d["value"]: sorted(d["customer_ids"])
        async for d in mongo[database_name]["identities"].find({"tenant": tenant})
    }
    assert stored == {
        "+81311112222": ["cus_old", "cus_other"],
        "+819000000000": ["cus_new", "cus_other"],
    }


async def test_a_sealed_identitys_id_holds_its_blind_index_never_its_value(
    client: tuple[AsyncMongoClient[Document], SentFinds],
    database_name: str,
    tenant: str,
    tmp_path: Path,
) -> None:
    mongo, _ = client
    store = TimelineStore(mongo[database_name], provider=LocalKeyFile(tmp_path / "keys.json"))
    await store.ensure_indexes()
    value = "hanako.yamada@shop.example"
    await store.identities.claim_identities(Claim(tenant, "cus_h", [("email", value)], "e1", T0))

    [doc] = await mongo[database_name]["identities"].find({"tenant": tenant}).to_list()

    assert value not in doc["_id"]
    assert doc["_id"] == f"{tenant}/email/{doc['value']}"
    found = await store.identities.identity_docs(tenant, [("email", value)])
    assert found[("email", value)]["customer_id"] == "cus_h"
    assert found[("email", value)]["value"] == value
