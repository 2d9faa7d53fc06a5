"""The `customers` collection (profiles and their merge marks): the only code touching it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from services.timeline.profiles.model import CustomerDoc
from services.timeline.search_keys import PREFIX_TOP, with_search_key
from services.timeline.store.documents import Document
from services.timeline.store.versioned import by_ids, replace_at_version, write_many_at_version
from services.timeline.store.writes import insert_many_new, insert_new

INDEXES = [
    IndexModel([("tenant", ASCENDING), ("last_contact_at", DESCENDING)], name="tenant_recent"),
    # Soft signals for merge suggestions: customers with the same folded name or address.
    IndexModel([("name_key", ASCENDING)], name="name_key", sparse=True),
    IndexModel([("address_key", ASCENDING)], name="address_key", sparse=True),
    IndexModel([("merged_into", ASCENDING)], name="merged_into", sparse=True),
    # SearchCustomers: a range scan over the folded name (`search_keys.name_key`).
    IndexModel([("tenant", ASCENDING), ("search_name", ASCENDING)], name="tenant_search_name"),
    IndexModel([("search_name", ASCENDING)], name="search_name", sparse=True),
]


def _customer(doc: Document) -> CustomerDoc:
    """A stored customer (written only whole, by insert or replace, so of this shape)."""
    return cast("CustomerDoc", doc)


class CustomerStore:
    """Reads and writes customer documents: whole-document, version-checked writes.

    Dates are only ever written inside whole documents (insert or `replace_one`), never with
    `$set`/`$max`, which the embedded store would turn into strings.
    """

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._customers = collection

    async def ensure_indexes(self) -> None:
        await self._customers.create_indexes(INDEXES)

    async def get_customers(self, tenant: str, ids: Iterable[str]) -> dict[str, CustomerDoc]:
        found = await by_ids(self._customers, tenant, ids)
        return {i: _customer(doc) for i, doc in found.items()}

    async def insert_customer(self, doc: CustomerDoc) -> bool:
        """Create a customer; False when it exists already (a replay)."""
        return await insert_new(self._customers, dict(doc))

    async def insert_customers(self, docs: Sequence[CustomerDoc]) -> set[str]:
        """Create many customers in one round trip; returns the ids that were new."""
        refused = await insert_many_new(self._customers, [dict(doc) for doc in docs])
        return {doc["_id"] for i, doc in enumerate(docs) if i not in refused}

    async def replace_customer(self, doc: CustomerDoc, *, expected_version: int) -> bool:
        """Optimistic write: succeeds only if nobody changed the customer since it was read.

        A whole-document replace (not `$set`/`$max`) keeps dates real dates on every store.
        The name search key is derived here, so every writer (projection, merge) keeps it true.
        """
        return await replace_at_version(
            self._customers, with_search_key(dict(doc)), expected_version=expected_version
        )

    async def replace_customers(self, writes: Sequence[tuple[CustomerDoc, int]]) -> set[str]:
        """`replace_customer` for many in one round trip; returns the ids that lost the race."""
        return await write_many_at_version(
            self._customers, [(with_search_key(dict(doc)), version) for doc, version in writes]
        )

    async def delete_unused(self, tenant: str, customer_id: str) -> None:
        """Remove a customer nothing was recorded on yet (a resolution that lost a race)."""
        await self._customers.delete_one(
            {"_id": customer_id, "tenant": tenant, "interaction_count": 0}
        )

    async def sharing(
        self, tenant: str, field: str, value: str, *, besides: str, limit: int
    ) -> list[Document]:
        """Live customers other than `besides` whose soft-signal `field` equals `value`."""
        cursor = self._customers.find(
            {"tenant": tenant, field: value, "status": "active", "_id": {"$ne": besides}},
            {"separated_from": 1},
        ).limit(limit)
        return [doc async for doc in cursor]

    async def by_name_prefix(self, tenant: str, key: str, *, limit: int) -> list[CustomerDoc]:
        """Live customers whose `search_name` starts with `key`, most recently in contact first.

        A range `[key, key + PREFIX_TOP)` rather than a regex: both use the index on MongoDB,
        and the range is also what the embedded store answers correctly.
        """
        cursor = (
            self._customers.find(
                {
                    "tenant": tenant,
                    "search_name": {"$gte": key, "$lt": key + PREFIX_TOP},
                    "merged_into": {"$exists": False},
                }
            )
            .sort([("last_contact_at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [_customer(doc) async for doc in cursor if not doc.get("merged_into")]
