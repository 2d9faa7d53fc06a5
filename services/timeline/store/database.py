"""Collection access for the timeline; every query is scoped by tenant."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.timeline.search_keys import with_search_key
from services.timeline.store import indexes
from services.timeline.store.documents import Document, interaction_key

DUPLICATE_KEY = 11000
IdentityKey = tuple[str, str]  # (kind token, normalised value)


class TimelineStore:
    """The timeline's collections: interactions, identities, customers, merges, cases,
    suggestions."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.interactions = db["interactions"]
        self.identities = db["identities"]
        self.customers = db["customers"]
        self.merges = db["merges"]
        self.suggestions = db["merge_suggestions"]
        # Written and read through `store.cases.CaseStore`; merges and splits re-point it too.
        self.cases = db["cases"]

    async def ensure_indexes(self) -> None:
        await self.interactions.create_indexes(indexes.INTERACTIONS)
        await self.identities.create_indexes(indexes.IDENTITIES)
        await self.customers.create_indexes(indexes.CUSTOMERS)
        await self.merges.create_indexes(indexes.MERGES)
        await self.suggestions.create_indexes(indexes.SUGGESTIONS)
        await self.cases.create_indexes(indexes.CASES)

    # -- interactions -------------------------------------------------------------------------

    async def interaction_state(self, tenant: str, event_id: str) -> Document | None:
        """The stored interaction's customer and projection flag, or None if not stored."""
        return await self.interactions.find_one(
            {"_id": interaction_key(tenant, event_id), "tenant": tenant},
            {"customer_id": 1, "projected": 1},
        )

    async def interaction_states(
        self, tenant: str, event_ids: Iterable[str]
    ) -> dict[str, Document]:
        """Stored interactions among `event_ids` → their customer and projection flag."""
        keys = [interaction_key(tenant, e) for e in event_ids]
        cursor = self.interactions.find(
            {"_id": {"$in": keys}, "tenant": tenant},
            {"event_id": 1, "customer_id": 1, "projected": 1, "case_id": 1},
        )
        return {doc["event_id"]: doc async for doc in cursor}

    async def insert_interactions(self, docs: Sequence[Document]) -> set[str]:
        """Append many; returns the `_id`s that were new (the others were already stored)."""
        if not docs:
            return set()
        try:
            await self.interactions.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            refused = {e["index"] for e in errors}
            return {doc["_id"] for i, doc in enumerate(docs) if i not in refused}
        return {doc["_id"] for doc in docs}

    async def mark_many_projected(self, tenant: str, event_ids: Sequence[str]) -> None:
        if event_ids:
            await self.interactions.update_many(
                {"_id": {"$in": [interaction_key(tenant, e) for e in event_ids]}, "tenant": tenant},
                {"$set": {"projected": True}},
            )

    async def insert_interaction(self, doc: Document) -> bool:
        """Append to the log; False when an interaction with this event id is already there."""
        try:
            await self.interactions.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def mark_projected(self, tenant: str, event_id: str) -> None:
        await self.interactions.update_one(
            {"_id": interaction_key(tenant, event_id), "tenant": tenant},
            {"$set": {"projected": True}},
        )

    async def repoint_interactions(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int:
        result = await self.interactions.update_many(
            {"tenant": tenant, "customer_id": {"$in": list(from_ids)}},
            {"$set": {"customer_id": to_id}},
        )
        return result.modified_count

    async def list_interactions(
        self,
        tenant: str,
        customer_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None = None,
        channels: Sequence[str] = (),
        kinds: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        case_id: str = "",
    ) -> list[Document]:
        """Newest first, ordered by (occurred_at, event_id) so pages are stable under inserts."""
        query: Document = {"tenant": tenant, "customer_id": customer_id}
        if case_id:
            query["case_id"] = case_id
        if channels:
            query["channel"] = {"$in": list(channels)}
        if kinds:
            query["kind"] = {"$in": list(kinds)}
        window: Document = {}
        if since is not None:
            window["$gte"] = since
        if until is not None:
            window["$lt"] = until
        if before is None:
            if window:
                query["occurred_at"] = window
            return await self._page(query, limit)
        # After a cursor: the cursor's own instant (ties, by event id) and then strictly older
        # ones, as two range queries rather than one `$or`, which the embedded store answers
        # with a scan of the whole collection (a deep page cost 4x the first one).
        at, event_id = before
        ties: list[Document] = []
        if (since is None or at >= since) and (until is None or at < until):
            ties = await self._page(
                {**query, "occurred_at": at, "event_id": {"$lt": event_id}}, limit
            )
        if len(ties) >= limit:
            return ties[:limit]
        older = {**window, "$lt": at if until is None else min(at, until)}
        return ties + await self._page({**query, "occurred_at": older}, limit - len(ties))

    async def _page(self, query: Document, limit: int) -> list[Document]:
        cursor = (
            self.interactions.find(query, {"projected": 0})
            .sort([("occurred_at", DESCENDING), ("event_id", DESCENDING)])
            .limit(limit)
        )
        return [doc async for doc in cursor]

    async def get_interactions(self, tenant: str, event_ids: Iterable[str]) -> list[Document]:
        """Whole stored interactions by event id (a lookup by `_id`)."""
        keys = [interaction_key(tenant, e) for e in event_ids]
        cursor = self.interactions.find({"_id": {"$in": keys}, "tenant": tenant}, {"projected": 0})
        return [doc async for doc in cursor]

    async def lookup_events(self, tenant: str, event_ids: Iterable[str]) -> list[Document]:
        """Events that are stored *and* projected: only then can a reader see them."""
        keys = [interaction_key(tenant, e) for e in event_ids]
        cursor = self.interactions.find(
            {"_id": {"$in": keys}, "tenant": tenant, "projected": True},
            {"event_id": 1, "customer_id": 1},
        )
        return [doc async for doc in cursor]

    async def channel_counts(self, tenant: str, customer_id: str) -> dict[str, int]:
        pipeline: list[Document] = [
            {"$match": {"tenant": tenant, "customer_id": customer_id}},
            {"$group": {"_id": "$channel", "count": {"$sum": 1}}},
        ]
        cursor = await self.interactions.aggregate(pipeline)
        return {doc["_id"]: int(doc["count"]) async for doc in cursor}

    async def unprojected_events(self, tenant: str, customer_id: str) -> list[str]:
        """The customer's stored interactions whose writer has not projected them yet.

        A recount from the log lists them in the customer's `counted_pending`, read before
        counting, so that their writer does not count them a second time.
        """
        cursor = self.interactions.find(
            {"tenant": tenant, "customer_id": customer_id, "projected": False}, {"event_id": 1}
        )
        return sorted([doc["event_id"] async for doc in cursor])

    async def contact_bounds(
        self, tenant: str, customer_id: str
    ) -> tuple[datetime | None, datetime | None]:
        """First and last contact, read from the log (sorted finds; correct on every store)."""
        bounds: list[datetime | None] = []
        for direction in (ASCENDING, DESCENDING):
            doc = await self.interactions.find_one(
                {"tenant": tenant, "customer_id": customer_id},
                {"occurred_at": 1},
                sort=[("occurred_at", direction)],
            )
            bounds.append(doc["occurred_at"] if doc else None)
        return bounds[0], bounds[1]

    # -- identities ---------------------------------------------------------------------------

    async def identity_owners(
        self, tenant: str, keys: Sequence[IdentityKey]
    ) -> dict[IdentityKey, str]:
        docs = await self.identity_docs(tenant, keys)
        return {key: doc["customer_id"] for key, doc in docs.items()}

    async def identity_docs(
        self, tenant: str, keys: Sequence[IdentityKey]
    ) -> dict[IdentityKey, Document]:
        """Stored identities among `keys`: owner and every customer that presented each."""
        if not keys:
            return {}
        # `value $in` (then the kind checked here) rather than an `$or` of (kind, value) pairs:
        # one index range per value on MongoDB, and the only form the embedded store answers
        # from an index (it never uses the compound one) — the `$or` was a full scan there.
        wanted = set(keys)
        cursor = self.identities.find(
            {"tenant": tenant, "value": {"$in": sorted({v for _, v in wanted})}},
            {"kind": 1, "value": 1, "customer_id": 1, "customer_ids": 1, "first_event_id": 1},
        )
        return {
            (doc["kind"], doc["value"]): doc
            async for doc in cursor
            if (doc["kind"], doc["value"]) in wanted
        }

    async def identities_of(self, tenant: str, customer_id: str) -> list[Document]:
        cursor = self.identities.find({"tenant": tenant, "customer_id": customer_id})
        return [doc async for doc in cursor]

    async def add_identity_customers(
        self, tenant: str, keys: Sequence[IdentityKey], customer_ids: Sequence[str]
    ) -> None:
        """Record that these customers presented these identifiers (merge protection counts)."""
        for kind, value in keys if customer_ids else ():
            # One indexed update per key (an `$or` of pairs is a full scan on the embedded store).
            await self.identities.update_one(
                {"tenant": tenant, "value": value, "kind": kind},
                {"$addToSet": {"customer_ids": {"$each": list(customer_ids)}}},
            )

    async def claim_identities(
        self,
        tenant: str,
        customer_id: str,
        keys: Sequence[IdentityKey],
        *,
        event_id: str,
        at: datetime,
    ) -> list[IdentityKey]:
        """Attach identifiers to a customer; returns those another writer claimed first."""
        if not keys:
            return []
        docs = [
            {
                "tenant": tenant,
                "kind": kind,
                "value": value,
                "customer_id": customer_id,
                # Every customer that presented the identifier; merge protection counts them.
                "customer_ids": [customer_id],
                "first_event_id": event_id,
                "created_at": at,
            }
            for kind, value in keys
        ]
        try:
            await self.identities.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return [keys[e["index"]] for e in errors]
        return []

    async def repoint_identities(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int:
        result = await self.identities.update_many(
            {"tenant": tenant, "customer_id": {"$in": list(from_ids)}},
            {"$set": {"customer_id": to_id}},
        )
        return result.modified_count

    # -- customers ----------------------------------------------------------------------------

    async def get_customers(self, tenant: str, ids: Iterable[str]) -> dict[str, Document]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        cursor = self.customers.find({"_id": {"$in": wanted}, "tenant": tenant})
        return {doc["_id"]: doc async for doc in cursor}

    async def insert_customer(self, doc: Document) -> bool:
        try:
            await self.customers.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def replace_customer(self, doc: Document, *, expected_version: int) -> bool:
        """Optimistic write: succeeds only if nobody changed the customer since it was read.

        A whole-document replace (not `$set`/`$max`) keeps dates real dates on every store.
        The name search key is derived here, so every writer (projection, merge) keeps it true.
        """
        result = await self.customers.replace_one(
            {"_id": doc["_id"], "tenant": doc["tenant"], "version": expected_version},
            {**with_search_key(doc), "version": expected_version + 1},
        )
        return result.matched_count == 1

    # -- merges -------------------------------------------------------------------------------

    async def record_merge(self, doc: Document) -> None:
        """Write a ledger entry; writing the same entry again (a redelivery) is a no-op."""
        try:
            await self.merges.insert_one(doc)
        except DuplicateKeyError:
            return

    async def merges_of(self, tenant: str, survivor_id: str) -> list[Document]:
        cursor = self.merges.find({"tenant": tenant, "survivor_id": survivor_id}).sort("at", 1)
        return [doc async for doc in cursor]

    async def merges_involving(self, tenant: str, customer_ids: Sequence[str]) -> list[Document]:
        """Ledger entries where any of `customer_ids` survived or was merged, oldest first."""
        ids = list(customer_ids)
        cursor = self.merges.find(
            {
                "tenant": tenant,
                "$or": [{"survivor_id": {"$in": ids}}, {"merged_ids": {"$in": ids}}],
            }
        ).sort("at", 1)
        return [doc async for doc in cursor]

    async def get_merge(self, tenant: str, merge_id: str) -> Document | None:
        return await self.merges.find_one({"_id": merge_id, "tenant": tenant})


def merged_targets(docs: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Map of merged customer id → the customer it was merged into."""
    return {doc["_id"]: doc["merged_into"] for doc in docs if doc.get("merged_into")}
