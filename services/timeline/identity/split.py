"""Undo a merge exactly: customers, identities, interactions and cases go back where they were.

Where everything belongs is computed from facts that a merge never changes: each interaction's
`origin_customer_id` (where resolution first put it), each customer's `merged_into` chain, and
the ledger entry's `before` snapshot. An interaction that arrived after the merge (its origin
is the survivor) goes to the restored customer whose identifiers it carried, if it carried
none of the survivor's. Every step is idempotent, so a split cut off half-way is finished by
running it again (`complete_pending_splits` does that at start-up).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Any

from opentelemetry import trace

from services.timeline.cases.records import CaseRecords
from services.timeline.errors import ConcurrentUpdateError, PermanentError
from services.timeline.identity.documents import Before, MergeEntry, SplitRecord
from services.timeline.identity.policy import IdentityKey
from services.timeline.identity.records import IdentityRecords
from services.timeline.identity.resolver import Actor, IdentityResolver
from services.timeline.interactions.entries import interaction_of
from services.timeline.interactions.records import InteractionLog
from services.timeline.interactions.tally import tally_of
from services.timeline.profiles.consents import (
    CONSENT_CHANGE_KIND,
    ConsentDoc,
    consent_of,
    consents_from,
)
from services.timeline.profiles.profile import rebuilt_profile, with_open_case
from services.timeline.profiles.records import CustomerRecords
from services.timeline.retry import CONFLICT, Lost, retry_on_conflict
from services.timeline.store.documents import Document, IdentifierDoc, aware

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# What a split reads of each log entry: where it goes, and what the recounts need.
_LOG_FIELDS = (
    "event_id",
    "origin_customer_id",
    "identifiers",
    "recorded_at",
    "kind",
    "channel",
    "projected",
    "occurred_at",
)


def _keys(identifiers: Iterable[Mapping[str, Any]]) -> set[IdentityKey]:
    return {(i["kind"], i["value"]) for i in identifiers}


@dataclass(frozen=True, slots=True)
class MergeSplitter:
    """Splits merges recorded in the ledger."""

    identities: IdentityRecords
    resolver: IdentityResolver
    _: KW_ONLY
    customers: CustomerRecords
    interactions: InteractionLog
    cases: CaseRecords

    async def split(
        self, tenant: str, merge_id: str, *, actor: Actor, reason: str, at: datetime
    ) -> MergeEntry:
        """Split one merge; splitting a merge already split is a no-op. Returns the entry.

        Raises:
            PermanentError: No such merge in the tenant, or its survivor was merged again
                later (split that later merge first).
        """
        entry = await self.identities.get_merge(tenant, merge_id)
        if entry is None:
            raise PermanentError(f"no merge {merge_id!r} in tenant {tenant}")
        if entry["status"] == "split":
            return entry
        if entry["status"] == "pending":
            await self.resolver.finish_merge(entry)
        survivor = (await self.customers.get_customers(tenant, [entry["survivor_id"]])).get(
            entry["survivor_id"]
        )
        if survivor is None:
            raise PermanentError(f"merge {merge_id} names an unknown survivor")
        if survivor.get("merged_into"):
            raise PermanentError(
                f"customer {survivor['_id']} was merged into {survivor['merged_into']} after "
                f"merge {merge_id}; split that later merge first"
            )
        if entry["status"] != "splitting":
            # Write-ahead: the intent is durable before anything moves.
            entry = entry.copy()
            entry["status"] = "splitting"
            entry["split"] = SplitRecord(at=at, actor=actor.document(), reason=reason)
            await self.identities.replace_merge(entry)
        return await self.finish_split(entry)

    async def finish_split(self, entry: MergeEntry) -> MergeEntry:
        tenant, survivor_id = entry["tenant"], entry["survivor_id"]
        restored: list[str] = entry["merged_ids"]
        with tracer.start_as_current_span(
            "identity.split", attributes={"tsunagu.split.customers": len(restored) + 1}
        ):
            await self._restore_customers(tenant, survivor_id, restored)
            before = {b["customer_id"]: b for b in entry["before"]}
            before_keys = {cid: _keys(b["identifiers"]) for cid, b in before.items()}
            moved, logs = await self._move_interactions(entry, before_keys)
            await self._move_identities(tenant, survivor_id, restored, before_keys, moved)
            await self._move_cases(tenant, survivor_id)
            for customer_id in [survivor_id, *restored]:
                await self._rebuild(
                    tenant, customer_id, before, restored, entries=logs.get(customer_id, [])
                )
            done = entry.copy()
            done["status"] = "split"
            if self.resolver.announce is not None:
                await self.resolver.announce(done, "split")
            await self.identities.replace_merge(done)
            log.info("split merge %s: %s back out of %s", entry["_id"], restored, survivor_id)
            return done

    async def _restore_customers(self, tenant: str, survivor_id: str, restored: list[str]) -> None:
        docs = await self.customers.get_customers(tenant, [survivor_id, *restored])
        for customer_id in restored:
            doc = docs.get(customer_id)
            if doc is None or doc.get("merged_into") != survivor_id:
                continue  # restored already (a repeated split)
            back = doc.copy()
            del back["merged_into"]
            back["status"] = "active"
            back["separated_from"] = sorted({*doc.get("separated_from", []), survivor_id})
            if not await self.customers.replace_customer(back, expected_version=doc["version"]):
                raise ConcurrentUpdateError(f"customer {customer_id} changed during a split")

    async def _move_interactions(
        self, entry: MergeEntry, before_keys: dict[str, set[IdentityKey]]
    ) -> tuple[dict[str, str], dict[str, list[Document]]]:
        """Re-point the survivor's interactions that belong elsewhere.

        One read of the log of the survivor and the restored customers serves the move and
        the recounts after it (`_rebuild`), so a split reads each entry once.

        Returns:
            Event id → its new owner, for the entries moved; and each customer's log as it
            is after the move (the fields `_LOG_FIELDS`).
        """
        tenant: str = entry["tenant"]
        survivor_id: str = entry["survivor_id"]
        restored: list[str] = entry["merged_ids"]
        merged_at = aware(entry["at"])
        read = await self.interactions.of_customers(tenant, [survivor_id, *restored], _LOG_FIELDS)
        logs: dict[str, list[Document]] = {}
        docs: list[Document] = []
        for doc in read:
            if doc["customer_id"] == survivor_id:
                docs.append(doc)
            else:
                logs.setdefault(doc["customer_id"], []).append(doc)
        origins = {doc.get("origin_customer_id") or survivor_id for doc in docs}
        target = await self.resolver.survivor_ids(tenant, origins)
        survivor_keys = before_keys.get(survivor_id, set())
        moves: dict[str, list[str]] = {}
        owner_of: dict[str, str] = {}
        for doc in docs:
            origin = doc.get("origin_customer_id") or survivor_id
            owner: str = target.get(origin, survivor_id)
            recorded = doc.get("recorded_at")
            if owner == survivor_id and recorded is not None and aware(recorded) >= merged_at:
                carried = _keys(doc.get("identifiers", []))
                if not carried & survivor_keys:
                    owner = next(
                        (r for r in restored if carried & before_keys.get(r, set())), owner
                    )
            if owner != survivor_id:
                moves.setdefault(owner, []).append(doc["_id"])
                owner_of[doc["event_id"]] = owner
            logs.setdefault(owner, []).append(doc)
        await self.interactions.move_many(tenant, moves)
        return owner_of, logs

    async def _move_identities(
        self,
        tenant: str,
        survivor_id: str,
        restored: list[str],
        before_keys: dict[str, set[IdentityKey]],
        moved: dict[str, str],
    ) -> None:
        """Identifiers go back with the customer that had them, or follow the event that
        brought them; identifiers both sides had (the merge's evidence) stay with the survivor.
        """
        survivor_keys = before_keys.get(survivor_id, set())
        moves: dict[str, list[Any]] = {}
        for doc in await self.identities.identities_of(tenant, survivor_id):
            key = (doc["kind"], doc["value"])
            if key in survivor_keys:
                continue
            owner = next((r for r in restored if key in before_keys.get(r, set())), None)
            owner = owner or moved.get(doc.get("first_event_id", ""))
            if owner:
                moves.setdefault(owner, []).append(doc["_id"])
        for owner, ids in moves.items():
            await self.identities.move_identities(tenant, ids, owner)

    async def _move_cases(self, tenant: str, survivor_id: str) -> None:
        cases = await self.cases.origins_of(tenant, survivor_id)
        origins = {doc["origin_customer_id"] for doc in cases if doc.get("origin_customer_id")}
        target = await self.resolver.survivor_ids(tenant, origins)
        moves: dict[str, list[str]] = {}
        for doc in cases:
            owner = target.get(doc.get("origin_customer_id", ""), survivor_id)
            if owner != survivor_id:
                moves.setdefault(owner, []).append(doc["_id"])
        await self.cases.move_many(tenant, moves)

    async def _rebuild(
        self,
        tenant: str,
        customer_id: str,
        before: dict[str, Before],
        restored: list[str],
        *,
        entries: list[Document],
    ) -> None:
        """Recompute a customer from `entries`, its log as read after the split's move."""
        open_case = await self.cases.latest_open(tenant, customer_id)
        identifiers: list[IdentifierDoc] = []
        for doc in entries:
            identifiers.extend(doc.get("identifiers", []))
        # Only consent changes need the recorded interaction itself (the largest field).
        consents = [d["event_id"] for d in entries if d.get("kind") == CONSENT_CHANGE_KIND]
        decisions: list[ConsentDoc] = []
        for stored in (
            await self.interactions.get_interactions(tenant, consents) if consents else []
        ):
            decision = consent_of(interaction_of(stored), occurred_at=stored["occurred_at"])
            decisions.extend([decision] if decision else [])
        # The first attempt counts the log as read; a lost race reads it again.
        first = [tally_of(entries)]

        async def rebuild() -> Lost | None:
            customer = (await self.customers.get_customers(tenant, [customer_id])).get(customer_id)
            if customer is None:
                return None
            tally = first.pop() if first else await self.interactions.tally(tenant, customer_id)
            mine = before.get(customer_id)
            if customer_id in restored:
                merged_ids = list(mine["merged_ids"]) if mine else []
            else:
                # The restored customers take back what they had absorbed before this merge.
                gone = set(restored)
                for r in restored:
                    gone.update(before[r]["merged_ids"] if r in before else [])
                merged_ids = [m for m in customer.get("merged_ids", []) if m not in gone]
            separated = set(customer.get("separated_from", []))
            if customer_id not in restored:
                separated.update(restored)
            # The name (and whether it was verified) it had before the merge, if it had one.
            named: Mapping[str, Any] = mine if mine and mine["display_name"] else customer
            profile = rebuilt_profile(
                customer,
                tally=tally,
                identifiers=identifiers,
                display_name=named.get("display_name", ""),
                name_verified=bool(named.get("name_verified")),
                merged_ids=merged_ids,
                consents=consents_from(decisions),
            )
            profile["separated_from"] = sorted(separated)
            profile = with_open_case(profile, open_case["_id"] if open_case else "")
            if await self.customers.replace_customer(profile, expected_version=customer["version"]):
                return None
            return CONFLICT

        await retry_on_conflict(rebuild, what=f"customer {customer_id} during a split")

    async def complete_pending_splits(self) -> int:
        """Finish splits a crash cut off half-way (run at start-up); returns how many."""
        done = 0
        for entry in await self.identities.merges_with_status("splitting"):
            await self.finish_split(entry)
            done += 1
        return done
