"""The identity slice's collections: `identities`, `merges` (the ledger), `merge_suggestions`.

The only code that touches them; every query is scoped by tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, cast

from pymongo import ASCENDING, IndexModel, UpdateMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase

from services.timeline.identity.documents import (
    Claim,
    IdentityDoc,
    MergeEntry,
    MergeStatus,
    SuggestionDoc,
)
from services.timeline.identity.natural_ids import (
    adopt,
    by_fields,
    give_natural_ids,
    identity_id,
    natural,
)
from services.timeline.identity.policy import IdentityKey
from services.timeline.search_keys import PREFIX_TOP
from services.timeline.store.by_customer import find_by_customers
from services.timeline.store.by_id import find_by_ids
from services.timeline.store.documents import Document
from services.timeline.store.writes import (
    insert_new,
    move_by_id,
    repoint,
)
from tsunagu.store_writes import insert_many_new

IDENTITY_INDEXES = [
    # Lookups read by `_id` (`natural_ids`); this index refuses a claim of an identifier an
    # earlier version stored under another `_id`, and serves that version's lookups.
    IndexModel(
        [("tenant", ASCENDING), ("kind", ASCENDING), ("value", ASCENDING)],
        unique=True,
        name="tenant_kind_value",
    ),
    IndexModel([("tenant", ASCENDING), ("customer_id", ASCENDING)], name="tenant_customer"),
    IndexModel([("value", ASCENDING)], name="value"),
    IndexModel([("customer_id", ASCENDING)], name="customer"),
    # Encryption on: search-as-you-type over blind indexes of the values' prefixes.
    IndexModel([("value_prefixes", ASCENDING)], name="value_prefixes", sparse=True),
]
MERGE_INDEXES = [
    IndexModel([("tenant", ASCENDING), ("survivor_id", ASCENDING)], name="tenant_survivor"),
    IndexModel([("survivor_id", ASCENDING)], name="survivor"),
    IndexModel([("merged_ids", ASCENDING)], name="merged"),
    IndexModel([("status", ASCENDING)], name="status"),
]
SUGGESTION_INDEXES = [
    IndexModel([("tenant", ASCENDING), ("customer_ids", ASCENDING)], name="tenant_customers"),
    IndexModel([("customer_ids", ASCENDING)], name="customers"),
]


def _entry(doc: Document) -> MergeEntry:
    """A stored ledger entry (written only by `record_merge`/`replace_merge`, so of this shape)."""
    return cast("MergeEntry", doc)


class IdentityCodec(Protocol):
    """Seals identities and ledger entries at rest (`erasure.identities`)."""

    def index(self, tenant: str, kind: str, value: str) -> str: ...

    def prefix_queries(self, tenant: str, prefixes: Sequence[str]) -> list[str]: ...

    async def warm(self, tenant: str, owners: Iterable[str]) -> None: ...

    async def sealed_identities(
        self, tenant: str, owner: str, docs: Sequence[Document]
    ) -> list[Document]: ...

    async def opened_identities(self, tenant: str, docs: Sequence[Document]) -> list[Document]: ...

    async def sealed_entry(self, entry: Document) -> Document: ...

    async def opened_entry(self, entry: Document) -> Document: ...


class IdentityStore:
    """Identifiers and who holds them, the merge ledger, and merge suggestions."""

    def __init__(self, db: AsyncDatabase[Document], *, codec: IdentityCodec | None = None) -> None:
        # Encryption on: values are blind indexes at rest, snapshots sealed.
        self._codec = codec
        self._identities: AsyncCollection[Document] = db["identities"]
        self._merges: AsyncCollection[Document] = db["merges"]
        self._suggestions: AsyncCollection[Document] = db["merge_suggestions"]
        # What start-time conversions of this slice's documents have run (`natural_ids`).
        self._marks: AsyncCollection[Document] = db["identity_marks"]

    async def ensure_indexes(self) -> None:
        """Create the indexes, and give identities an earlier version stored their `_id`."""
        await self._identities.create_indexes(IDENTITY_INDEXES)
        await self._merges.create_indexes(MERGE_INDEXES)
        await self._suggestions.create_indexes(SUGGESTION_INDEXES)
        await give_natural_ids(self._identities, self._marks)

    # -- identities ---------------------------------------------------------------------------

    async def identity_owners(
        self, tenant: str, keys: Sequence[IdentityKey]
    ) -> dict[IdentityKey, str]:
        docs = await self.identity_docs(tenant, keys)
        return {key: doc["customer_id"] for key, doc in docs.items()}

    async def identity_docs(
        self, tenant: str, keys: Sequence[IdentityKey]
    ) -> dict[IdentityKey, IdentityDoc]:
        """Stored identities among `keys`: owner and every customer that presented each.

        One read by `_id` (`natural_ids`): a primary-key lookup on every store.
        """
        # `_id` → the key asked for (its value sealed into a blind index when sealed).
        wanted = {self._id_of(tenant, k, v): (k, v) for k, v in set(keys)}
        docs = await find_by_ids(
            self._identities,
            tenant,
            wanted,
            {"kind": 1, "customer_id": 1, "customer_ids": 1, "first_event_id": 1},
        )
        found: dict[IdentityKey, IdentityDoc] = {}
        for doc in docs:
            key = wanted[doc["_id"]]
            del doc["tenant"]
            found[key] = cast("IdentityDoc", {**doc, "value": key[1]})
        return found

    def _stored_value(self, tenant: str, kind: str, value: str) -> str:
        return value if self._codec is None else self._codec.index(tenant, kind, value)

    def _id_of(self, tenant: str, kind: str, value: str) -> str:
        return identity_id(tenant, kind, self._stored_value(tenant, kind, value))

    async def identities_of(self, tenant: str, customer_id: str) -> list[IdentityDoc]:
        cursor = self._identities.find({"tenant": tenant, "customer_id": customer_id})
        docs = [doc async for doc in cursor]
        if self._codec is not None:
            docs = await self._codec.opened_identities(tenant, docs)
        return [cast("IdentityDoc", doc) for doc in docs]

    async def add_identity_customers(
        self, tenant: str, keys: Sequence[IdentityKey], customer_ids: Sequence[str]
    ) -> None:
        """Record that these customers presented these identifiers (merge protection counts)."""
        if not keys or not customer_ids:
            return
        add = {"$addToSet": {"customer_ids": {"$each": list(customer_ids)}}}
        updates = [UpdateOne({"_id": self._id_of(tenant, k, v)}, add) for k, v in keys]
        result = await self._identities.bulk_write(updates, ordered=False)
        if result.matched_count < len(updates):
            # Some are missing, or stored by an earlier version's replica (a rolling upgrade)
            # under another `_id`: those are found by their fields.
            for kind, value in keys:
                stored = self._stored_value(tenant, kind, value)
                await self._identities.update_one(by_fields(tenant, kind, stored), add)

    async def claim_identities(self, claim: Claim) -> list[IdentityKey]:
        """Attach identifiers to a customer; returns those another writer claimed first."""
        return (await self._claim([claim]))[0]

    async def claim_many(self, claims: Sequence[Claim]) -> list[list[IdentityKey]]:
        """`claim_identities` for many claims in one round trip; per claim, the keys refused."""
        return await self._claim(claims)

    async def _claim(self, claims: Sequence[Claim]) -> list[list[IdentityKey]]:
        owners = [i for i, claim in enumerate(claims) for _ in claim.keys]
        keys = [key for claim in claims for key in claim.keys]
        docs: list[dict[str, Any]] = []
        if self._codec is not None:
            # Only the owners of claims with keys: a claim of nothing (an attach presenting
            # no new identifier) seals nothing, so it must not ask for its customer's key.
            for tenant in {claim.tenant for claim in claims if claim.keys}:
                await self._codec.warm(
                    tenant, {c.customer_id for c in claims if c.tenant == tenant and c.keys}
                )
        for claim in claims:
            mine = [claim.document(key) for key in claim.keys]
            if self._codec is not None:
                mine = await self._codec.sealed_identities(claim.tenant, claim.customer_id, mine)
            docs += [natural(doc) for doc in mine]
        refused = await insert_many_new(self._identities, docs)
        if refused:
            # A claim refused by an identity an earlier version stored (a rolling upgrade)
            # adopts it, so that reading again by `_id` finds it.
            await adopt(self._identities, [docs[i] for i in sorted(refused)])
        lost: list[list[IdentityKey]] = [[] for _ in claims]
        for position in sorted(refused):
            lost[owners[position]].append(keys[position])
        return lost

    async def repoint_identities(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int:
        """Move the customers' records to `to_id` (a merge); returns how many."""
        return await repoint(self._identities, tenant, from_ids, to_id)

    async def merge_identities(
        self,
        tenant: str,
        moves: Mapping[str, str],
        presented: Sequence[tuple[Sequence[IdentityKey], Sequence[str]]] = (),
    ) -> None:
        """The identities side of a batch's merges, in one read and one bulk write.

        `moves`: each merged-away customer → its survivor; their identities go to it.
        `presented`: (keys, customers) — these customers presented these keys, held by the
        merged customers (merge protection counts them; `add_identity_customers`).

        Each identity is written once, whatever it gets: an identifier the event presented
        that a loser held is moved and gets its presenters in one update (on the embedded
        store every update rewrites the whole document and each of its index entries).
        """
        if not moves:
            return
        held = sorted(set(moves) | set(moves.values()))
        docs = await find_by_customers(
            self._identities, tenant, held, {"_id": 1, "kind": 1, "value": 1, "customer_id": 1}
        )
        ids = {(doc["kind"], doc["value"]): doc["_id"] for doc in docs}
        adding: dict[object, list[str]] = {}
        for keys, customer_ids in presented:
            for kind, value in keys:
                stored = ids.get((kind, self._stored_value(tenant, kind, value)))
                if stored is not None and customer_ids:
                    mine = adding.setdefault(stored, [])
                    mine += [c for c in customer_ids if c not in mine]
        by_target: dict[str, list[object]] = {}
        updates: list[UpdateMany | UpdateOne] = []
        for doc in docs:
            change: Document = {}
            if doc["customer_id"] in moves:
                change["$set"] = {"customer_id": moves[doc["customer_id"]]}
            if doc["_id"] in adding:
                change["$addToSet"] = {"customer_ids": {"$each": adding[doc["_id"]]}}
            if "$addToSet" in change:
                updates.append(UpdateOne({"_id": doc["_id"], "tenant": tenant}, change))
            elif change:
                by_target.setdefault(moves[doc["customer_id"]], []).append(doc["_id"])
        updates += [
            UpdateMany({"_id": {"$in": moved}, "tenant": tenant}, {"$set": {"customer_id": to}})
            for to, moved in by_target.items()
        ]
        if updates:
            await self._identities.bulk_write(updates, ordered=False)

    async def move_identities(self, tenant: str, ids: Sequence[object], to_id: str) -> None:
        """Give the identities with these `_id`s to customer `to_id` (a split)."""
        await move_by_id(self._identities, tenant, ids, to_id)

    async def forget_identities(self, tenant: str, customer_ids: Sequence[str]) -> None:
        """Delete the identifiers these customers hold (an erasure): nobody re-joins them."""
        await self._identities.delete_many(
            {"tenant": tenant, "customer_id": {"$in": list(customer_ids)}}
        )

    async def owners_by_identifier_prefix(
        self, tenant: str, prefixes: Sequence[str], *, limit: int
    ) -> list[str]:
        """Customer ids holding an identifier whose normalised value starts with a prefix."""
        if not prefixes:
            return []
        match: Document = {"$or": [{"value": {"$gte": p, "$lt": p + PREFIX_TOP}} for p in prefixes]}
        if self._codec is not None:
            match = {"value_prefixes": {"$in": self._codec.prefix_queries(tenant, prefixes)}}
        cursor = self._identities.find({"tenant": tenant, **match}, {"customer_id": 1}).limit(limit)
        return list(dict.fromkeys([doc["customer_id"] async for doc in cursor]))

    # -- the merge ledger ---------------------------------------------------------------------

    async def record_merge(self, doc: MergeEntry) -> None:
        """Write a ledger entry; writing the same entry again (a redelivery) is a no-op."""
        await insert_new(self._merges, await self._sealed_entry(doc))

    async def record_merges(self, docs: Sequence[MergeEntry]) -> None:
        """`record_merge` for many entries in one round trip (a batch's merges)."""
        await insert_many_new(self._merges, [await self._sealed_entry(doc) for doc in docs])

    async def replace_merge(self, doc: MergeEntry) -> None:
        await self._merges.replace_one(
            {"_id": doc["_id"], "tenant": doc["tenant"]}, await self._sealed_entry(doc)
        )

    async def _sealed_entry(self, doc: MergeEntry) -> Document:
        return dict(doc) if self._codec is None else await self._codec.sealed_entry(dict(doc))

    async def _entries(self, docs: AsyncCursor[Document]) -> list[MergeEntry]:
        return [await self._opened_entry(doc) async for doc in docs]

    async def _opened_entry(self, doc: Document) -> MergeEntry:
        return _entry(doc if self._codec is None else await self._codec.opened_entry(doc))

    async def settle_merge(self, entry: MergeEntry, *, status: Literal["done", "dropped"]) -> None:
        """Move a pending entry to `status`: "done", or gone when `status` is "dropped"."""
        query = {"_id": entry["_id"], "tenant": entry["tenant"], "status": "pending"}
        if status == "dropped":
            await self._merges.delete_one(query)
        else:
            await self._merges.update_one(query, {"$set": {"status": status}})

    async def settle_merges(self, entries: Sequence[MergeEntry]) -> None:
        """Mark many pending entries "done" in one round trip."""
        if not entries:
            return
        tenant = entries[0]["tenant"]
        await self._merges.update_many(
            {"_id": {"$in": [e["_id"] for e in entries]}, "tenant": tenant, "status": "pending"},
            {"$set": {"status": "done"}},
        )

    async def merges_with_status(self, status: MergeStatus) -> list[MergeEntry]:
        """Entries of every tenant in `status` ("pending", "splitting": cut off by a crash)."""
        return await self._entries(self._merges.find({"status": status}))

    async def merges_of(self, tenant: str, survivor_id: str) -> list[MergeEntry]:
        cursor = self._merges.find({"tenant": tenant, "survivor_id": survivor_id}).sort("at", 1)
        return await self._entries(cursor)

    async def merges_involving(self, tenant: str, customer_ids: Sequence[str]) -> list[MergeEntry]:
        """Ledger entries where any of `customer_ids` survived or was merged, oldest first."""
        ids = list(customer_ids)
        cursor = self._merges.find(
            {
                "tenant": tenant,
                "$or": [{"survivor_id": {"$in": ids}}, {"merged_ids": {"$in": ids}}],
            }
        ).sort("at", 1)
        return await self._entries(cursor)

    async def get_merge(self, tenant: str, merge_id: str) -> MergeEntry | None:
        doc = await self._merges.find_one({"_id": merge_id, "tenant": tenant})
        return None if doc is None else await self._opened_entry(doc)

    # -- merge suggestions --------------------------------------------------------------------

    async def insert_suggestion(self, doc: SuggestionDoc) -> bool:
        """Write a new suggestion; False when the pair has one already."""
        return await insert_new(self._suggestions, dict(doc))

    async def add_suggestion_signal(self, tenant: str, suggestion: str, signal: str) -> None:
        await self._suggestions.update_one(
            {"_id": suggestion, "tenant": tenant}, {"$addToSet": {"signals": signal}}
        )

    async def get_suggestion(self, tenant: str, suggestion: str) -> SuggestionDoc | None:
        doc = await self._suggestions.find_one({"_id": suggestion, "tenant": tenant})
        return cast("SuggestionDoc | None", doc)

    async def replace_open_suggestion(self, doc: SuggestionDoc) -> None:
        """Replace a suggestion that is still open (settling it twice changes nothing)."""
        await self._suggestions.replace_one(
            {"_id": doc["_id"], "tenant": doc["tenant"], "status": "open"}, dict(doc)
        )

    async def open_suggestions(
        self, tenant: str, customer_ids: Sequence[str], limit: int
    ) -> list[SuggestionDoc]:
        """Open suggestions naming any of `customer_ids` (all of the tenant's when empty)."""
        query: Document = {"tenant": tenant, "status": "open"}
        if customer_ids:
            query["customer_ids"] = {"$in": list(customer_ids)}
        cursor = self._suggestions.find(query).sort("created_at", -1).limit(limit)
        return [cast("SuggestionDoc", doc) async for doc in cursor]
