"""The `cases` collection: whole-document, version-checked writes; every query tenant-scoped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, cast

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from services.timeline.cases.model import CaseDoc
from services.timeline.store.by_customer import find_by_customers
from services.timeline.store.documents import Document, aware
from services.timeline.store.versioned import by_ids, replace_at_version
from services.timeline.store.writes import insert_new, move_many_by_id, repoint
from tsunagu.store_writes import write_many_at_version

# How many of a customer's most recently active cases assignment looks at: the open ones and
# the latest resolved one are among them unless merges piled up more than this.
RECENT_CASES = 20

INDEXES = [
    # A customer's cases, most recently active first (case assignment, the customer filter).
    IndexModel(
        [("tenant", ASCENDING), ("customer_id", ASCENDING), ("updated_at", DESCENDING)],
        name="tenant_customer_recent",
    ),
    # ListCases pages: (updated_at, _id) descending within the tenant, optionally by owner.
    # (`_id` stays out of the key: the embedded store fails writes to such an index.)
    IndexModel([("tenant", ASCENDING), ("updated_at", DESCENDING)], name="tenant_recent"),
    IndexModel(
        [("tenant", ASCENDING), ("owner_agent_id", ASCENDING), ("updated_at", DESCENDING)],
        name="tenant_owner_recent",
    ),
    IndexModel(
        [("tenant", ASCENDING), ("next_follow_up_due", ASCENDING)], name="tenant_follow_up_due"
    ),
    # Single-field twins of the leading keys: the embedded store uses no compound index.
    IndexModel([("customer_id", ASCENDING)], name="customer"),
    IndexModel([("owner_agent_id", ASCENDING)], name="owner"),
    IndexModel([("tenant", ASCENDING)], name="tenant"),
]


@dataclass(frozen=True, slots=True)
class CaseQuery:
    """What `ListCases` asks for (already validated and mapped to stored tokens)."""

    statuses: Sequence[str] = ()
    owner_agent_id: str = ""
    escalated_only: bool = False
    # Only cases with an open follow-up task due before this time.
    follow_up_due_before: datetime | None = None
    customer_id: str = ""
    before: tuple[datetime, str] | None = None
    limit: int = 50


def _case(doc: Document) -> CaseDoc:
    """A stored case (written only whole, by `insert`/`replace`, so of this shape)."""
    return cast("CaseDoc", doc)


class CaseCodec(Protocol):
    """Seals a case's words at rest (`services.timeline.erasure.cases.SealedCases`)."""

    async def sealed(self, doc: Document) -> Document: ...

    async def opened(self, stored: Document) -> Document: ...

    async def opened_many(self, tenant: str, stored: Sequence[Document]) -> list[Document]: ...

    async def sealed_many(self, docs: Sequence[Document]) -> list[Document]: ...


class CaseStore:
    """The `cases` collection: the only code that touches it (see `lifecycle` for the shape).

    Dates are only ever written inside whole documents (insert or `replace_one`), never with
    `$set`, which the embedded store would turn into strings.
    """

    def __init__(
        self, collection: AsyncCollection[Document], *, codec: CaseCodec | None = None
    ) -> None:
        self.collection = collection
        # Encryption on: summaries, reasons and comments are sealed at this boundary.
        self._codec = codec

    async def _opened(self, doc: Document) -> CaseDoc:
        return _case(doc if self._codec is None else await self._codec.opened(doc))

    async def _opened_all(self, tenant: str, docs: Sequence[Document]) -> list[CaseDoc]:
        """The tenant's cases opened, with one ask for the keys of them all."""
        if self._codec is not None:
            docs = await self._codec.opened_many(tenant, docs)
        return [_case(doc) for doc in docs]

    async def _sealed(self, doc: Document) -> Document:
        return doc if self._codec is None else await self._codec.sealed(doc)

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)

    async def get(self, tenant: str, ids: Iterable[str]) -> dict[str, CaseDoc]:
        found = await by_ids(self.collection, tenant, ids)
        return {doc["_id"]: doc for doc in await self._opened_all(tenant, list(found.values()))}

    async def recent(
        self, tenant: str, customer_id: str, *, limit: int = RECENT_CASES
    ) -> list[CaseDoc]:
        """The customer's most recently active cases, newest first."""
        cursor = (
            self.collection.find({"tenant": tenant, "customer_id": customer_id})
            .sort([("updated_at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return await self._opened_all(tenant, await cursor.to_list(None))

    async def recent_of(
        self, tenant: str, customer_ids: Iterable[str], *, limit: int = RECENT_CASES
    ) -> dict[str, list[CaseDoc]]:
        """`recent` for many customers at once: customer id → cases, newest first.

        Every case of each customer (a customer has a handful), read customer by customer
        from the `customer` index and sent together (`find_by_customers`), then ordered and
        cut here; their keys are asked for once.
        """
        wanted = list(dict.fromkeys(customer_ids))
        found: dict[str, list[CaseDoc]] = {c: [] for c in wanted}
        if not wanted:
            return found
        read = await find_by_customers(self.collection, tenant, wanted)
        for doc in await self._opened_all(tenant, read):
            found[doc["customer_id"]].append(doc)
        for cases in found.values():
            cases.sort(key=lambda c: (aware(c["updated_at"]), c["_id"]), reverse=True)
            del cases[limit:]
        return found

    async def latest_open(self, tenant: str, customer_id: str) -> CaseDoc | None:
        """The customer's most recently active case that is not resolved."""
        doc = await self.collection.find_one(
            {"tenant": tenant, "customer_id": customer_id, "status": {"$ne": "resolved"}},
            sort=[("updated_at", DESCENDING), ("_id", DESCENDING)],
        )
        return None if doc is None else await self._opened(doc)

    async def insert(self, doc: CaseDoc) -> bool:
        """Create a case; False when a case with this id exists already."""
        return await insert_new(self.collection, await self._sealed(dict(doc)))

    async def replace(self, doc: CaseDoc, *, expected_version: int) -> bool:
        """Optimistic write: succeeds only if nobody changed the case since it was read."""
        return await replace_at_version(
            self.collection, await self._sealed(dict(doc)), expected_version=expected_version
        )

    async def save_many(self, writes: Sequence[tuple[CaseDoc, int | None]]) -> set[str]:
        """Write many cases in one round trip, each at the version it was read (None: a new
        case); returns the ids of those another writer changed first (nothing written).
        """
        sealed = [dict(doc) for doc, _ in writes]
        if self._codec is not None:
            sealed = await self._codec.sealed_many(sealed)
        return await write_many_at_version(
            self.collection,
            [(doc, version) for doc, (_, version) in zip(sealed, writes, strict=True)],
        )

    async def repoint(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int:
        """Move the customers' records to `to_id` (a merge); returns how many."""
        return await repoint(self.collection, tenant, from_ids, to_id)

    async def move_many(self, tenant: str, moves: Mapping[str, Sequence[str]]) -> None:
        """Give cases to other customers in one round trip: customer id → the case ids."""
        await move_many_by_id(self.collection, tenant, moves)

    async def cases_of(self, tenant: str, customer_ids: Iterable[str]) -> list[CaseDoc]:
        """Every case of these customers (a merge moves and recounts them), read together."""
        return await self._opened_all(
            tenant, await find_by_customers(self.collection, tenant, customer_ids)
        )

    async def find(self, tenant: str, query: CaseQuery) -> list[CaseDoc]:
        """Cases matching `query`, most recently updated first, `(updated_at, _id)` descending."""
        find: Document = {"tenant": tenant}
        statuses = list(query.statuses)
        if query.escalated_only:
            find["escalation_level"] = {"$gt": 0}
            statuses = [s for s in statuses or ["open", "pending", "escalated"] if s != "resolved"]
            if not statuses:
                return []
        if statuses:
            find["status"] = {"$in": statuses}
        if query.owner_agent_id:
            find["owner_agent_id"] = query.owner_agent_id
        if query.customer_id:
            find["customer_id"] = query.customer_id
        if query.follow_up_due_before is not None:
            find["next_follow_up_due"] = {"$lt": query.follow_up_due_before}
        if query.before is not None:
            at, case_id = query.before
            find["$or"] = [
                {"updated_at": {"$lt": at}},
                {"updated_at": at, "_id": {"$lt": case_id}},
            ]
        cursor = (
            self.collection.find(find)
            .sort([("updated_at", DESCENDING), ("_id", DESCENDING)])
            .limit(query.limit)
        )
        return await self._opened_all(tenant, await cursor.to_list(None))

    async def origins_of(self, tenant: str, customer_id: str) -> list[Document]:
        """The customer's cases, each with where it began (`origin_customer_id`; a split)."""
        cursor = self.collection.find(
            {"tenant": tenant, "customer_id": customer_id}, {"origin_customer_id": 1}
        )
        return [doc async for doc in cursor]

    async def give(self, tenant: str, case_id: str, customer_id: str) -> None:
        """Give one case to another customer (a split returns it where it began)."""
        await self.collection.update_one(
            {"_id": case_id, "tenant": tenant}, {"$set": {"customer_id": customer_id}}
        )
