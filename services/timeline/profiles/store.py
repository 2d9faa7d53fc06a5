"""The `customers` collection (profiles and their merge marks): the only code touching it."""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Iterable, Sequence
from typing import Protocol, cast

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from services.timeline.profiles.model import CustomerDoc
from services.timeline.search_keys import PREFIX_TOP, with_search_key
from services.timeline.store.by_id import find_by_ids
from services.timeline.store.documents import Document
from services.timeline.store.versioned import by_ids, replace_at_version
from services.timeline.store.writes import insert_new
from tsunagu.store_writes import insert_many_new, write_many_at_version

INDEXES = [
    IndexModel([("tenant", ASCENDING), ("last_contact_at", DESCENDING)], name="tenant_recent"),
    # Soft signals for merge suggestions: customers with the same folded name or address.
    IndexModel([("name_key", ASCENDING)], name="name_key", sparse=True),
    IndexModel([("address_key", ASCENDING)], name="address_key", sparse=True),
    IndexModel([("merged_into", ASCENDING)], name="merged_into", sparse=True),
    # SearchCustomers: a range scan over the folded name (`search_keys.name_key`).
    IndexModel([("tenant", ASCENDING), ("search_name", ASCENDING)], name="tenant_search_name"),
    IndexModel([("search_name", ASCENDING)], name="search_name", sparse=True),
    # Encryption on: the name's prefixes as blind indexes (erasure.customers).
    IndexModel([("search_prefixes", ASCENDING)], name="search_prefixes", sparse=True),
]


def _customer(doc: Document) -> CustomerDoc:
    """A stored customer (written only whole, by insert or replace, so of this shape)."""
    return cast("CustomerDoc", doc)


class ProfileCodec(Protocol):
    """Seals profiles at rest (`services.timeline.erasure.customers.SealedCustomers`)."""

    async def sealed(self, doc: Document) -> Document: ...

    async def opened_read(
        self, tenant: str, read: Awaitable[Sequence[Document]], *, ids: Collection[str] = ()
    ) -> list[Document]: ...

    async def sealed_many(
        self, docs: Sequence[Document], *, new: bool = False
    ) -> list[Document]: ...

    def signal_index(self, tenant: str, field: str, value: str) -> str: ...

    def search_queries(self, tenant: str, key: str) -> list[str]: ...


class CustomerStore:
    """Reads and writes customer documents: whole-document, version-checked writes.

    Dates are only ever written inside whole documents (insert or `replace_one`), never with
    `$set`/`$max`, which the embedded store would turn into strings.
    """

    def __init__(
        self, collection: AsyncCollection[Document], *, codec: ProfileCodec | None = None
    ) -> None:
        self._customers = collection
        # Encryption on: names, identifiers and remarks are sealed at this boundary.
        self._codec = codec

    async def _sealed(self, doc: Document) -> Document:
        return doc if self._codec is None else await self._codec.sealed(doc)

    async def _sealed_many(self, docs: list[Document], *, new: bool = False) -> list[Document]:
        return docs if self._codec is None else await self._codec.sealed_many(docs, new=new)

    async def ensure_indexes(self) -> None:
        await self._customers.create_indexes(INDEXES)

    async def get_customers(self, tenant: str, ids: Iterable[str]) -> dict[str, CustomerDoc]:
        wanted = list(ids)
        found = _values(by_ids(self._customers, tenant, wanted))
        if self._codec is not None:
            # Sealed: the customers' keys are read alongside their documents.
            found = self._codec.opened_read(tenant, found, ids=wanted)
        return {doc["_id"]: _customer(doc) for doc in await found}

    async def stored_customers(self, tenant: str, ids: Iterable[str]) -> dict[str, CustomerDoc]:
        """The customers as stored: with encryption on, their personal fields still sealed.

        Ids, merge pointers (`merged_into`, `merged_ids`), counts and dates read as they are;
        no data key is asked for. `opened_customers` opens them.
        """
        found = await by_ids(self._customers, tenant, ids)
        return {customer_id: _customer(doc) for customer_id, doc in found.items()}

    async def opened_customers(
        self, tenant: str, docs: dict[str, CustomerDoc]
    ) -> dict[str, CustomerDoc]:
        """`stored_customers`' documents opened, their keys in one round trip (none if leased)."""
        if self._codec is None:
            return docs
        opened = await self._codec.opened_read(tenant, _ready(list(docs.values())))
        return {doc["_id"]: _customer(doc) for doc in opened}

    async def merged_into(self, tenant: str, ids: Iterable[str]) -> dict[str, str]:
        """Each stored customer among `ids` → the customer it was merged into ("" if live).

        Only that field is read: nothing sealed to open, no data keys to ask for.
        """
        found = await find_by_ids(self._customers, tenant, ids, {"merged_into": 1})
        return {doc["_id"]: doc.get("merged_into") or "" for doc in found}

    async def insert_customer(self, doc: CustomerDoc) -> bool:
        """Create a customer; False when it exists already (a replay)."""
        return await insert_new(self._customers, await self._sealed(dict(doc)))

    async def insert_customers(self, docs: Sequence[CustomerDoc]) -> set[str]:
        """Create many customers in one round trip; returns the ids that were new.

        Their data keys are made without being looked for: a customer just made has none
        (a replay's, stored before, is found when storing a new one is refused).
        """
        refused = await insert_many_new(
            self._customers, await self._sealed_many([dict(doc) for doc in docs], new=True)
        )
        return {doc["_id"] for i, doc in enumerate(docs) if i not in refused}

    async def replace_customer(self, doc: CustomerDoc, *, expected_version: int) -> bool:
        """Optimistic write: succeeds only if nobody changed the customer since it was read.

        A whole-document replace (not `$set`/`$max`) keeps dates real dates on every store.
        The name search key is derived here, so every writer (projection, merge) keeps it true.
        """
        return await replace_at_version(
            self._customers,
            await self._sealed(with_search_key(dict(doc))),
            expected_version=expected_version,
        )

    async def replace_customers(self, writes: Sequence[tuple[CustomerDoc, int]]) -> set[str]:
        """`replace_customer` for many in one round trip; returns the ids that lost the race."""
        sealed = await self._sealed_many([with_search_key(dict(doc)) for doc, _ in writes])
        return await write_many_at_version(
            self._customers,
            [(doc, version) for doc, (_, version) in zip(sealed, writes, strict=True)],
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
        if self._codec is not None:
            value = self._codec.signal_index(tenant, field, value)
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
        prefix: Document = {"search_name": {"$gte": key, "$lt": key + PREFIX_TOP}}
        if self._codec is not None:
            # Sealed profiles keep blind indexes of the name's prefixes, not the name.
            prefix = {"search_prefixes": {"$in": self._codec.search_queries(tenant, key)}}
        cursor = (
            self._customers.find({"tenant": tenant, **prefix, "merged_into": {"$exists": False}})
            .sort([("last_contact_at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        found = _live(cursor.to_list(None))
        if self._codec is not None:
            found = self._codec.opened_read(tenant, found)  # all their keys in one round trip
        return [_customer(doc) for doc in await found]


async def _values(read: Awaitable[dict[str, Document]]) -> list[Document]:
    return list((await read).values())


async def _ready(docs: Sequence[CustomerDoc]) -> list[Document]:
    return [dict(doc) for doc in docs]


async def _live(read: Awaitable[list[Document]]) -> list[Document]:
    return [doc for doc in await read if not doc.get("merged_into")]
