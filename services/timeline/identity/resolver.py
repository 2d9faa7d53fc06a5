"""Resolves identifiers to one customer: create, attach, or merge with a ledger entry."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from opentelemetry import trace

from services.timeline.projection import (
    customer_id_for,
    merged_profile,
    new_customer,
    survivor_order,
)
from services.timeline.store import TimelineStore
from services.timeline.store.database import IdentityKey
from services.timeline.store.documents import Document

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

_MERGE_NAMESPACE = uuid.UUID("0c6a1f55-3a0e-4f0b-8d57-6a6e1b9f2a10")
MAX_ATTEMPTS = 8
MAX_MERGE_CHAIN = 32
MERGE_RULE = "shared_deterministic_identifier"


class ResolutionConflictError(RuntimeError):
    """Concurrent writers kept claiming the same identifiers; the event is retried later."""


class ConcurrentUpdateError(RuntimeError):
    """A customer changed between read and write too many times in a row."""


@dataclass(frozen=True, slots=True)
class Resolution:
    customer_id: str
    created: bool = False
    merged_ids: list[str] = field(default_factory=list)


class IdentityResolver:
    """Finds or creates the customer of an interaction; merges customers an event links.

    No lock is held across awaits: unique indexes decide races, and the loser retries.
    """

    def __init__(self, store: TimelineStore, *, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    async def live_customers(self, tenant: str, ids: set[str]) -> dict[str, Document]:
        """The active customers behind `ids`, following merges to their survivors."""
        live: dict[str, Document] = {}
        pending = set(ids)
        for _ in range(MAX_MERGE_CHAIN):
            if not pending:
                return live
            docs = await self._store.get_customers(tenant, pending)
            pending = set()
            for doc in docs.values():
                if doc.get("merged_into"):
                    pending.add(doc["merged_into"])
                else:
                    live[doc["_id"]] = doc
        raise RuntimeError(f"merge chain longer than {MAX_MERGE_CHAIN} in tenant {tenant}")

    async def resolve(
        self,
        *,
        tenant: str,
        event_id: str,
        occurred_at: datetime,
        keys: Sequence[IdentityKey],
        before_merge: Callable[[], Awaitable[None]] | None = None,
    ) -> Resolution:
        """The customer the identifier keys belong to, creating or merging as needed.

        `before_merge` runs before a merge starts: a batch writer flushes what it holds, so
        the merge re-points and counts a complete log.
        """
        for _ in range(MAX_ATTEMPTS):
            owners = await self._store.identity_owners(tenant, keys)
            live = await self.live_customers(tenant, set(owners.values()))
            created = False
            merged: list[str] = []
            if not live:
                customer_id = customer_id_for(tenant, event_id)
                now = self._clock()
                created = await self._store.insert_customer(
                    new_customer(
                        tenant=tenant,
                        customer_id=customer_id,
                        created_at=now,
                        first_contact_at=occurred_at,
                    )
                )
            elif len(live) == 1:
                customer_id = next(iter(live))
            else:
                if before_merge is not None:
                    await before_merge()
                customer_id, merged = await self.merge(
                    tenant, list(live.values()), event_id=event_id, owners=owners
                )
            unclaimed = [key for key in keys if key not in owners]
            conflicts = await self._store.claim_identities(
                tenant, customer_id, unclaimed, event_id=event_id, at=self._clock()
            )
            if not conflicts:
                return Resolution(customer_id=customer_id, created=created, merged_ids=merged)
            # Another writer claimed an identifier between our read and write: resolve again,
            # which attaches to (or merges with) the customer that won.
            if created:
                await self._store.customers.delete_one(
                    {"_id": customer_id, "tenant": tenant, "interaction_count": 0}
                )
        raise ResolutionConflictError(f"identifiers of event {event_id} kept changing owner")

    async def merge(
        self,
        tenant: str,
        customers: list[Document],
        *,
        event_id: str,
        owners: dict[IdentityKey, str],
    ) -> tuple[str, list[str]]:
        """Merge customers into the one seen first; every step is idempotent.

        The ledger entry is written first with status "pending" (the intent and the evidence),
        then identities and interactions are re-pointed, losers marked merged, the survivor's
        profile rebuilt from the log, and the entry marked "done". A merge cut off half-way is
        finished by `complete_pending_merges`.
        """
        ordered = sorted(customers, key=survivor_order)
        survivor, losers = ordered[0], ordered[1:]
        loser_ids = sorted(d["_id"] for d in losers)
        merge_key = uuid.uuid5(_MERGE_NAMESPACE, f"{tenant}/{event_id}/{','.join(loser_ids)}")
        with tracer.start_as_current_span(
            "identity.merge", attributes={"tsunagu.merge.customers": len(ordered)}
        ):
            ledger: Document = {
                "_id": f"mrg_{merge_key.hex}",
                "tenant": tenant,
                "survivor_id": survivor["_id"],
                "merged_ids": loser_ids,
                "rule": MERGE_RULE,
                "actor": {"type": "system", "id": "timeline"},
                "at": self._clock(),
                "status": "pending",
                "evidence": {
                    "event_id": event_id,
                    "identifiers": [
                        {"kind": kind, "value": value, "customer_id": owner}
                        for (kind, value), owner in sorted(owners.items())
                    ],
                },
                # What each merged customer owned, so that a split can put it back.
                "before": [
                    {
                        "customer_id": d["_id"],
                        "identifiers": d.get("identifiers", []),
                        "interaction_count": d.get("interaction_count", 0),
                    }
                    for d in ordered
                ],
            }
            await self._store.record_merge(ledger)
            await self._finish_merge(tenant, survivor["_id"], loser_ids, ledger["_id"])
            log.info("merged %s into %s (event %s)", loser_ids, survivor["_id"], event_id)
            return survivor["_id"], loser_ids

    async def _finish_merge(
        self, tenant: str, survivor_id: str, loser_ids: list[str], merge_id: str
    ) -> None:
        store = self._store
        await store.repoint_identities(tenant, loser_ids, survivor_id)
        await store.repoint_interactions(tenant, loser_ids, survivor_id)
        docs = await store.get_customers(tenant, [survivor_id, *loser_ids])
        losers = [docs[i] for i in loser_ids if i in docs]
        for loser in losers:
            if loser.get("merged_into") != survivor_id:
                marked = {**loser, "status": "merged", "merged_into": survivor_id}
                if not await store.replace_customer(marked, expected_version=loser["version"]):
                    raise ConcurrentUpdateError(f"customer {loser['_id']} changed during merge")
        by_channel = await store.channel_counts(tenant, survivor_id)
        first, last = await store.contact_bounds(tenant, survivor_id)
        for _ in range(MAX_ATTEMPTS):
            survivor = (await store.get_customers(tenant, [survivor_id]))[survivor_id]
            profile = merged_profile(
                survivor,
                [d for d in losers if d["_id"] not in survivor.get("merged_ids", [])],
                by_channel=by_channel,
                first_contact_at=first,
                last_contact_at=last,
            )
            if await store.replace_customer(profile, expected_version=survivor["version"]):
                break
        else:
            raise ConcurrentUpdateError(f"customer {survivor_id} kept changing during merge")
        await store.merges.update_one(
            {"_id": merge_id, "tenant": tenant}, {"$set": {"status": "done"}}
        )

    async def complete_pending_merges(self) -> int:
        """Finish merges a crash cut off half-way (run at start-up); returns how many."""
        done = 0
        async for entry in self._store.merges.find({"status": "pending"}):
            await self._finish_merge(
                entry["tenant"], entry["survivor_id"], entry["merged_ids"], entry["_id"]
            )
            done += 1
        return done
