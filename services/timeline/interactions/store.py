"""The `interactions` collection (the append-only log): the only code that touches it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol, cast

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor

from services.timeline.interactions.keys import instant_bound, timeline_key
from services.timeline.interactions.model import InteractionDoc, InteractionState
from services.timeline.interactions.tally import Tally
from services.timeline.store.by_customer import find_by_customers
from services.timeline.store.by_id import find_by_ids
from services.timeline.store.documents import Document, interaction_key
from services.timeline.store.expiry import create_without_ttl
from services.timeline.store.writes import (
    insert_new,
    move_by_id,
    move_many_by_id,
    repoint,
)
from tsunagu.store_writes import insert_many_new

INDEXES = [
    IndexModel([("tenant", ASCENDING), ("event_id", ASCENDING)], unique=True, name="tenant_event"),
    # A customer's timeline page is one range scan of this index: the timeline key orders
    # (occurred_at, event_id) in one field, so a cursor is a single bound (interactions/keys.py).
    IndexModel(
        [("tenant", ASCENDING), ("customer_id", ASCENDING), ("timeline_key", DESCENDING)],
        name="tenant_customer_timeline_key",
    ),
    # Customer ids are globally unique. This single-field index is what the embedded store can
    # use (it ignores compound indexes); real MongoDB picks the compound one above.
    IndexModel([("customer_id", ASCENDING)], name="customer"),
    # Rebuilding one case from the log after a crash reads its interactions.
    IndexModel([("case_id", ASCENDING)], name="case", sparse=True),
    # Per-tenant retention: the timeline's sweep deletes an entry once `expire_at` has passed
    # (a range of this index; not a TTL index, see services/timeline/store/expiry.py).
    IndexModel([("expire_at", ASCENDING)], name="expire_at", sparse=True),
]

Retention = Callable[[str], timedelta | None]
"""How long a tenant's interactions are kept after they happened (None: not deleted)."""


class RawCodec(Protocol):
    """Seals `raw` on append and opens it on read (`services.timeline.erasure.codec`)."""

    async def seal_docs(self, docs: Sequence[Document]) -> list[Document]: ...

    async def opened_read(
        self, tenant: str, read: Awaitable[Sequence[Document]], *, owners: Collection[str] = ()
    ) -> list[Document]: ...


class _PlainRaw:
    """Encryption off: `raw` as it is."""

    async def seal_docs(self, docs: Sequence[Document]) -> list[Document]:
        return list(docs)

    async def opened_read(
        self,
        tenant: str,  # noqa: ARG002 - the protocol's signature
        read: Awaitable[Sequence[Document]],
        *,
        owners: Collection[str] = (),  # noqa: ARG002 - the protocol's signature
    ) -> list[Document]:
        return list(await read)


def _keyed(doc: InteractionDoc) -> Document:
    """The document to append: the interaction with its timeline key."""
    return {**doc, "timeline_key": timeline_key(doc["occurred_at"], doc["event_id"])}


def _stored(doc: Document) -> InteractionDoc:
    """A stored interaction (appended only whole, by `interaction_document`, so of this shape)."""
    return cast("InteractionDoc", doc)


class InteractionStore:
    """Appends, pages and re-points interactions; every query is scoped by tenant."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        *,
        codec: RawCodec | None = None,
        retention: Retention | None = None,
    ) -> None:
        self._log = collection
        self._retention = retention
        # Personal data is sealed at this boundary: every `raw` in and out goes through it.
        self._codec: RawCodec = codec or _PlainRaw()

    async def ensure_indexes(self) -> None:
        *rest, expiry = INDEXES
        await self._log.create_indexes(rest)
        await create_without_ttl(self._log, expiry)

    async def delete_expired(self, now: datetime) -> int:
        """Delete the entries whose retention ran out before `now`; returns how many."""
        return (await self._log.delete_many({"expire_at": {"$lt": now}})).deleted_count

    async def backfill_timeline_keys(self, *, batch: int = 500) -> int:
        """Give interactions stored before timeline keys existed their key; returns how many.

        Pages select by the key, so an interaction without one would be missing from its
        customer's timeline. Idempotent, run at start: a store written by this version has
        nothing to backfill and answers one query.
        """
        missing: Document = {"timeline_key": {"$exists": False}}
        done = 0
        while True:
            docs = await self._log.find(missing, {"occurred_at": 1, "event_id": 1}).to_list(batch)
            if not docs:
                return done
            await self._log.bulk_write(
                [
                    UpdateOne(
                        {"_id": doc["_id"], **missing},
                        {
                            "$set": {
                                "timeline_key": timeline_key(doc["occurred_at"], doc["event_id"])
                            }
                        },
                    )
                    for doc in docs
                ],
                ordered=False,
            )
            done += len(docs)

    # -- recording ----------------------------------------------------------------------------

    async def interaction_state(self, tenant: str, event_id: str) -> InteractionState | None:
        """The stored interaction's customer and projection flag, or None if not stored."""
        states = await self.interaction_states(tenant, [event_id])
        return states.get(event_id)

    async def interaction_states(
        self, tenant: str, event_ids: Iterable[str]
    ) -> dict[str, InteractionState]:
        """Stored interactions among `event_ids` → their customer and projection flag."""
        found = await find_by_ids(
            self._log,
            tenant,
            [interaction_key(tenant, e) for e in event_ids],
            {"event_id": 1, "customer_id": 1, "projected": 1, "announced": 1, "case_id": 1},
        )
        return {doc["event_id"]: cast("InteractionState", doc) for doc in found}

    async def insert_interactions(self, docs: Sequence[InteractionDoc]) -> set[str]:
        """Append many; returns the `_id`s that were new (the others were already stored)."""
        sealed = await self._codec.seal_docs([self._appended(doc) for doc in docs])
        refused = await insert_many_new(self._log, sealed)
        return {doc["_id"] for i, doc in enumerate(docs) if i not in refused}

    async def insert_interaction(self, doc: InteractionDoc) -> bool:
        """Append to the log; False when an interaction with this event id is already there."""
        return await insert_new(self._log, (await self._codec.seal_docs([self._appended(doc)]))[0])

    def _appended(self, doc: InteractionDoc) -> Document:
        keyed = _keyed(doc)
        kept = None if self._retention is None else self._retention(doc["tenant"])
        if kept is not None:
            keyed["expire_at"] = doc["occurred_at"] + kept
        return keyed

    async def mark_projected(
        self, tenant: str, event_ids: Sequence[str], *, announced: bool = False
    ) -> None:
        """Flag the entries projected (and their notices sent, `announced`), in one write."""
        if event_ids:
            flags = {"projected": True, **({"announced": True} if announced else {})}
            await self._log.update_many(
                {"_id": {"$in": [interaction_key(tenant, e) for e in event_ids]}, "tenant": tenant},
                {"$set": flags},
            )

    async def repoint(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int:
        """Move the customers' records to `to_id` (a merge); returns how many."""
        return await repoint(self._log, tenant, from_ids, to_id)

    async def move_many(self, tenant: str, moves: Mapping[str, Sequence[str]]) -> None:
        """`move` to many customers in one round trip: customer id → the `_id`s it gets."""
        await move_many_by_id(self._log, tenant, moves)

    async def move(self, tenant: str, keys: Sequence[str], to_id: str) -> None:
        """Give the interactions with these `_id`s to customer `to_id` (a split)."""
        await move_by_id(self._log, tenant, keys, to_id)

    async def forget_identifiers(self, tenant: str, customer_ids: Sequence[str]) -> None:
        """Clear the identifiers on the customers' log entries (an erasure)."""
        await self._log.update_many(
            {"tenant": tenant, "customer_id": {"$in": list(customer_ids)}},
            {"$set": {"identifiers": []}},
        )

    # -- reading ------------------------------------------------------------------------------

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
        key_owners: Collection[str] = (),
    ) -> list[InteractionDoc]:
        """Newest first, ordered by (occurred_at, event_id) so pages are stable under inserts.

        Sealed entries open with their origin customer's key: the customer's own, and those
        of `key_owners` (the customers merged into it), are read alongside the page.

        The order, the cursor and the window are all ranges of the timeline key: one bounded
        range within the customer, which both stores serve from `tenant_customer_timeline_key`
        without reading older entries (a date in the filter made the embedded store read the
        customer's whole history: page 20 cost 6.6x the first one).
        """
        # `$eq` is the same match as a bare value on MongoDB. The embedded store matches a bare
        # `tenant` (no single-field index names it) as "equal, or an array holding it", an OR
        # no index serves: each page read and sorted the customer's whole history (108 ms at
        # 10,000 entries, 15 ms with `$eq`; docs/store-compat.md).
        query: Document = {"tenant": {"$eq": tenant}, "customer_id": customer_id}
        if case_id:
            query["case_id"] = case_id
        if channels:
            query["channel"] = {"$in": list(channels)}
        if kinds:
            query["kind"] = {"$in": list(kinds)}
        keys: Document = {}
        if since is not None:
            keys["$gte"] = instant_bound(since)
        upper = [instant_bound(until)] if until is not None else []
        if before is not None:
            upper.append(timeline_key(*before))
        if upper:
            # Both are exclusive upper bounds in the same order: the lower one is the tighter.
            keys["$lt"] = min(upper)
        if keys:
            query["timeline_key"] = keys
        # Whole entries, in one reply. The embedded store deep-copies every document a
        # projection applies to (a third of its time on a page, for two small fields left
        # out), and its first reply holds 101 documents: a page of 201 took a getMore more.
        cursor = (
            self._log.find(query, batch_size=limit)
            .sort([("timeline_key", DESCENDING)])
            .limit(limit)
        )
        owners = {customer_id, *key_owners}
        return [_stored(doc) for doc in await self._opened(tenant, cursor, owners)]

    async def get_interactions(self, tenant: str, event_ids: Iterable[str]) -> list[InteractionDoc]:
        """Whole stored interactions by event id (a lookup by `_id`)."""
        keys = [interaction_key(tenant, e) for e in event_ids]
        found = find_by_ids(self._log, tenant, keys)
        return [_stored(doc) for doc in await self._codec.opened_read(tenant, found)]

    async def lookup_events(self, tenant: str, event_ids: Iterable[str]) -> list[Document]:
        """Events that are stored *and* projected: only then can a reader see them."""
        keys = [interaction_key(tenant, e) for e in event_ids]
        found = await find_by_ids(
            self._log, tenant, keys, {"event_id": 1, "customer_id": 1, "projected": 1}
        )
        # Truthy, not `is True`: the embedded store's `$set` stores a true flag as 1.
        return [doc for doc in found if doc.get("projected")]

    async def of_customer(
        self, tenant: str, customer_id: str, fields: Sequence[str]
    ) -> list[Document]:
        """The customer's whole log, only `fields` of each entry (a split sorts it out)."""
        # A sealed `raw` opens only with the entry it is bound to: its event id comes along.
        wanted = [*fields, "event_id"] if "raw" in fields else list(fields)
        cursor = self._log.find(
            {"tenant": tenant, "customer_id": customer_id}, dict.fromkeys(wanted, 1)
        )
        return await self._opened(tenant, cursor, [customer_id])

    async def of_customers(
        self, tenant: str, customer_ids: Iterable[str], fields: Sequence[str]
    ) -> list[Document]:
        """`of_customer` for many customers in one read; each entry with its `customer_id`."""
        wanted = list(dict.fromkeys(customer_ids))
        if not wanted:
            return []
        projected = [*fields, "customer_id", *(["event_id"] if "raw" in fields else [])]
        read = find_by_customers(self._log, tenant, wanted, dict.fromkeys(projected, 1))
        # Their keys alongside: most entries are sealed under these customers' own.
        return await self._codec.opened_read(tenant, read, owners=wanted)

    # -- recounts -----------------------------------------------------------------------------

    async def tally(self, tenant: str, customer_id: str) -> Tally:
        """Counts and contact dates of the customer's log.

        The counts and the pending list come from one read of the same documents: an event
        counted here while its writer has not projected it yet is listed in `Tally.pending`,
        so that writer skips it; an event this read did not see is not counted, so its writer
        counts it. (Reading the pending list and the counts separately let an append land
        between the two reads, counted here and again by its writer.)
        """
        cursor = self._log.find(
            {"tenant": tenant, "customer_id": customer_id},
            {"_id": 0, "channel": 1, "projected": 1, "event_id": 1},
        )
        by_channel: dict[str, int] = {}
        pending: list[str] = []
        async for doc in cursor:
            by_channel[doc["channel"]] = by_channel.get(doc["channel"], 0) + 1
            if not doc.get("projected"):
                pending.append(doc["event_id"])
        first, last = await self.contact_bounds(tenant, customer_id)
        return Tally(sorted(pending), by_channel, first, last)

    async def channel_counts(self, tenant: str, customer_id: str) -> dict[str, int]:
        pipeline: list[Document] = [
            {"$match": {"tenant": tenant, "customer_id": customer_id}},
            {"$group": {"_id": "$channel", "count": {"$sum": 1}}},
        ]
        cursor = await self._log.aggregate(pipeline)
        return {doc["_id"]: int(doc["count"]) async for doc in cursor}

    async def contact_bounds(
        self, tenant: str, customer_id: str
    ) -> tuple[datetime | None, datetime | None]:
        """First and last contact, read from the log (sorted finds; correct on every store)."""
        bounds: list[datetime | None] = []
        for direction in (ASCENDING, DESCENDING):
            doc = await self._log.find_one(
                {"tenant": tenant, "customer_id": customer_id},
                {"occurred_at": 1},
                sort=[("occurred_at", direction)],
            )
            bounds.append(doc["occurred_at"] if doc else None)
        return bounds[0], bounds[1]

    # -- the log behind cases and remarks (crash recovery) -------------------------------------

    async def case_log(self, tenant: str, case_id: str) -> list[Document]:
        """The interactions attached to a case, oldest first."""
        cursor = self._log.find(
            {"tenant": tenant, "case_id": case_id},
            {"raw": 1, "occurred_at": 1, "event_id": 1, "customer_id": 1, "origin_customer_id": 1},
        ).sort([("occurred_at", ASCENDING), ("event_id", ASCENDING)])
        return await self._opened(tenant, cursor)

    async def latest_remark_source(self, tenant: str, customer_id: str) -> Document | None:
        """The customer's latest note or handoff interaction, if any."""
        remarks: Document = {"tenant": tenant, "customer_id": customer_id}
        remarks["kind"] = {"$in": ["note", "handoff"]}
        cursor = (
            self._log.find(remarks, {"raw": 1, "occurred_at": 1, "case_id": 1, "event_id": 1})
            .sort([("occurred_at", DESCENDING), ("event_id", DESCENDING)])
            .limit(1)
        )
        found = await self._opened(tenant, cursor, [customer_id])
        return found[0] if found else None

    async def _opened(
        self, tenant: str, cursor: AsyncCursor[Document], owners: Collection[str] = ()
    ) -> list[Document]:
        """The cursor's entries opened; the keys of `owners` read alongside them."""
        return await self._codec.opened_read(tenant, cursor.to_list(None), owners=owners)
