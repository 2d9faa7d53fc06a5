"""In-memory versions of the slices' store protocols (each slice's `records` module), for
unit tests of the domain logic. They keep MongoDB's semantics that the logic relies on: unique
keys, and version-checked whole-document replaces. `lose_next` makes the next write of a kind
lose its race, as a concurrent writer would make it.
"""

# ruff: noqa: ARG002 - the protocols' signatures; ids here are unique across tenants anyway
from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, cast

from services.timeline.cases.model import CaseDoc
from services.timeline.identity.documents import (
    Claim,
    IdentityDoc,
    MergeEntry,
    MergeStatus,
    SuggestionDoc,
)
from services.timeline.identity.policy import IdentityKey
from services.timeline.interactions.model import InteractionDoc, InteractionState
from services.timeline.interactions.tally import Tally
from services.timeline.profiles.model import CustomerDoc
from services.timeline.store.documents import Document, aware, interaction_key


def _aware(value: object) -> datetime:
    assert isinstance(value, datetime)
    return aware(value)


D = TypeVar("D")


class Races:
    """Writes that will lose their race: name → how many more times."""

    def __init__(self) -> None:
        self.pending: Counter[str] = Counter()

    def lose_next(self, write: str, times: int = 1) -> None:
        self.pending[write] += times

    def lost(self, write: str) -> bool:
        if self.pending[write] > 0:
            self.pending[write] -= 1
            return True
        return False


class VersionedDocs(Races, Generic[D]):
    """Documents by `_id`: inserts refuse a taken id, replaces check the version."""

    def __init__(self) -> None:
        super().__init__()
        self.docs: dict[str, D] = {}

    def _raw(self, case_id: str) -> Any:
        # Documents of any shape with `_id`, `tenant` and `version`; typed by `D` outside.
        return self.docs.get(case_id)

    async def get(self, tenant: str, ids: Iterable[str]) -> dict[str, D]:
        return {
            i: copy.deepcopy(self.docs[i])
            for i in ids
            if i in self.docs and self._raw(i)["tenant"] == tenant
        }

    async def insert(self, doc: D) -> bool:
        key = cast("Any", doc)["_id"]
        if key in self.docs:
            return False
        self.docs[key] = copy.deepcopy(doc)
        return True

    async def replace(self, doc: D, *, expected_version: int) -> bool:
        written: Any = copy.deepcopy(doc)
        stored = self._raw(written["_id"])
        if stored is None or stored["version"] != expected_version or self.lost("replace"):
            return False
        written["version"] = expected_version + 1
        self.docs[written["_id"]] = written
        return True

    async def save_many(self, writes: Sequence[tuple[D, int | None]]) -> set[str]:
        lost: set[str] = set()
        for doc, version in writes:
            saved = (
                await self.insert(doc)
                if version is None
                else await self.replace(doc, expected_version=version)
            )
            if not saved:
                lost.add(cast("Any", doc)["_id"])
        return lost


class MemoryCustomers(VersionedDocs[CustomerDoc]):
    get_customers = VersionedDocs[CustomerDoc].get
    stored_customers = VersionedDocs[CustomerDoc].get  # nothing is sealed in memory
    insert_customer = VersionedDocs[CustomerDoc].insert
    replace_customer = VersionedDocs[CustomerDoc].replace

    async def insert_customers(self, docs: Sequence[CustomerDoc]) -> set[str]:
        return {doc["_id"] for doc in docs if await self.insert(doc)}

    async def merged_into(self, tenant: str, ids: Iterable[str]) -> dict[str, str]:
        found = await self.get(tenant, ids)
        return {i: doc.get("merged_into") or "" for i, doc in found.items()}

    async def replace_customers(self, writes: Sequence[tuple[CustomerDoc, int]]) -> set[str]:
        return await self.save_many(writes)

    async def delete_unused(self, tenant: str, customer_id: str) -> None:
        doc = self.docs.get(customer_id)
        if doc is not None and doc["interaction_count"] == 0:
            del self.docs[customer_id]

    async def sharing(
        self, tenant: str, field: str, value: str, *, besides: str, limit: int
    ) -> list[Document]:
        found: list[Document] = [
            dict(d)
            for d in self.docs.values()
            if d["tenant"] == tenant
            and d.get(field) == value
            and d["status"] == "active"
            and d["_id"] != besides
        ]
        return copy.deepcopy(found[:limit])


class MemoryLog:
    def __init__(self) -> None:
        self.docs: dict[str, Document] = {}

    def _of(self, tenant: str, customer_id: str) -> list[Document]:
        return [
            d
            for d in self.docs.values()
            if d["tenant"] == tenant and d["customer_id"] == customer_id
        ]

    async def interaction_states(
        self, tenant: str, event_ids: Iterable[str]
    ) -> dict[str, InteractionState]:
        keys = {interaction_key(tenant, e) for e in event_ids}
        return {
            d["event_id"]: cast("InteractionState", copy.deepcopy(d))
            for k, d in self.docs.items()
            if k in keys
        }

    async def insert_interactions(self, docs: Sequence[InteractionDoc]) -> set[str]:
        new = {d["_id"] for d in docs if d["_id"] not in self.docs}
        for doc in docs:
            self.docs.setdefault(doc["_id"], dict(copy.deepcopy(doc)))
        return new

    async def mark_projected(
        self, tenant: str, event_ids: Sequence[str], *, announced: bool = False
    ) -> None:
        for event_id in event_ids:
            self.docs[interaction_key(tenant, event_id)]["projected"] = True
            if announced:
                self.docs[interaction_key(tenant, event_id)]["announced"] = True

    async def get_interactions(self, tenant: str, event_ids: Iterable[str]) -> list[InteractionDoc]:
        keys = {interaction_key(tenant, e) for e in event_ids}
        return [cast("InteractionDoc", copy.deepcopy(d)) for k, d in self.docs.items() if k in keys]

    async def repoint(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int:
        moved = [d for f in from_ids for d in self._of(tenant, f)]
        for doc in moved:
            doc["customer_id"] = to_id
        return len(moved)

    async def move(self, tenant: str, keys: Sequence[str], to_id: str) -> None:
        for key in keys:
            self.docs[key]["customer_id"] = to_id

    async def move_many(self, tenant: str, moves: Mapping[str, Sequence[str]]) -> None:
        for to_id, keys in moves.items():
            await self.move(tenant, keys, to_id)

    async def of_customers(
        self, tenant: str, customer_ids: Iterable[str], fields: Sequence[str]
    ) -> list[Document]:
        return [
            entry
            for customer_id in dict.fromkeys(customer_ids)
            for entry in await self.of_customer(tenant, customer_id, [*fields, "customer_id"])
        ]

    async def of_customer(
        self, tenant: str, customer_id: str, fields: Sequence[str]
    ) -> list[Document]:
        return [
            {"_id": d["_id"], **{f: d[f] for f in fields if f in d}}
            for d in self._of(tenant, customer_id)
        ]

    async def tally(self, tenant: str, customer_id: str) -> Tally:
        docs = self._of(tenant, customer_id)
        times = sorted(_aware(d["occurred_at"]) for d in docs)
        return Tally(
            pending=sorted(d["event_id"] for d in docs if not d["projected"]),
            by_channel=dict(Counter(d["channel"] for d in docs)),
            first_contact_at=times[0] if times else None,
            last_contact_at=times[-1] if times else None,
        )

    async def case_log(self, tenant: str, case_id: str) -> list[Document]:
        docs = [
            d for d in self.docs.values() if d["tenant"] == tenant and d.get("case_id") == case_id
        ]
        return sorted(docs, key=lambda d: (_aware(d["occurred_at"]), d["event_id"]))

    async def latest_remark_source(self, tenant: str, customer_id: str) -> Document | None:
        notes = [d for d in self._of(tenant, customer_id) if d["kind"] in ("note", "handoff")]
        return max(notes, key=lambda d: (_aware(d["occurred_at"]), d["event_id"]), default=None)


class MemoryCases(VersionedDocs[CaseDoc]):
    def _recent(self, tenant: str, customer_id: str) -> list[CaseDoc]:
        mine = [
            d
            for d in self.docs.values()
            if d["tenant"] == tenant and d["customer_id"] == customer_id
        ]
        return sorted(mine, key=lambda d: (_aware(d["updated_at"]), d["_id"]), reverse=True)

    async def recent(self, tenant: str, customer_id: str, *, limit: int = 20) -> list[CaseDoc]:
        return copy.deepcopy(self._recent(tenant, customer_id)[:limit])

    async def recent_of(
        self, tenant: str, customer_ids: Iterable[str], *, limit: int = 20
    ) -> dict[str, list[CaseDoc]]:
        return {c: await self.recent(tenant, c, limit=limit) for c in customer_ids}

    async def latest_open(self, tenant: str, customer_id: str) -> CaseDoc | None:
        live = [d for d in self._recent(tenant, customer_id) if d["status"] != "resolved"]
        return copy.deepcopy(live[0]) if live else None

    async def repoint(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int:
        moved = [
            d for d in self.docs.values() if d["tenant"] == tenant and d["customer_id"] in from_ids
        ]
        for doc in moved:
            doc["customer_id"] = to_id
        return len(moved)

    async def move_many(self, tenant: str, moves: Mapping[str, Sequence[str]]) -> None:
        for to_id, case_ids in moves.items():
            for case_id in case_ids:
                await self.give(tenant, case_id, to_id)

    async def cases_of(self, tenant: str, customer_ids: Iterable[str]) -> list[CaseDoc]:
        return [
            copy.deepcopy(c) for i in dict.fromkeys(customer_ids) for c in self._recent(tenant, i)
        ]

    async def origins_of(self, tenant: str, customer_id: str) -> list[Document]:
        return [
            {"_id": d["_id"], "origin_customer_id": d["origin_customer_id"]}
            for d in self._recent(tenant, customer_id)
        ]

    async def give(self, tenant: str, case_id: str, customer_id: str) -> None:
        self.docs[case_id]["customer_id"] = customer_id


class MemoryIdentities(Races):
    def __init__(self) -> None:
        super().__init__()
        self.identities: dict[tuple[str, str, str], IdentityDoc] = {}
        self.merges: dict[str, MergeEntry] = {}
        self.suggestions: dict[str, SuggestionDoc] = {}
        # Identifiers another writer claims just before our next claim (a lost race).
        self.claimed_by_others: dict[IdentityKey, str] = {}

    async def identity_docs(
        self, tenant: str, keys: Sequence[IdentityKey]
    ) -> dict[IdentityKey, IdentityDoc]:
        return {
            k: copy.deepcopy(self.identities[(tenant, *k)])
            for k in keys
            if (tenant, *k) in self.identities
        }

    async def identities_of(self, tenant: str, customer_id: str) -> list[IdentityDoc]:
        return [
            copy.deepcopy(d)
            for (t, *_), d in self.identities.items()
            if t == tenant and d["customer_id"] == customer_id
        ]

    async def add_identity_customers(
        self, tenant: str, keys: Sequence[IdentityKey], customer_ids: Sequence[str]
    ) -> None:
        for key in keys:
            doc = self.identities.get((tenant, *key))
            if doc is not None:
                doc["customer_ids"] = sorted({*doc["customer_ids"], *customer_ids})

    async def claim_many(self, claims: Sequence[Claim]) -> list[list[IdentityKey]]:
        return [await self.claim_identities(claim) for claim in claims]

    async def claim_identities(self, claim: Claim) -> list[IdentityKey]:
        for key, other in list(self.claimed_by_others.items()):
            self._claim(Claim(claim.tenant, other, [key], "someone-else", claim.at), key)
            del self.claimed_by_others[key]
        if self.lost("claim"):
            return list(claim.keys)
        return [k for k in claim.keys if not self._claim(claim, k)]

    def _claim(self, claim: Claim, key: IdentityKey) -> bool:
        if (claim.tenant, *key) in self.identities:
            return False
        doc = {"_id": f"{claim.tenant}/{key[0]}/{key[1]}", **claim.document(key)}
        self.identities[(claim.tenant, *key)] = cast("IdentityDoc", doc)
        return True

    async def repoint_identities(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int:
        moved = [
            d
            for (t, *_), d in self.identities.items()
            if t == tenant and d["customer_id"] in from_ids
        ]
        for doc in moved:
            doc["customer_id"] = to_id
        return len(moved)

    async def merge_identities(
        self,
        tenant: str,
        moves: Mapping[str, str],
        presented: Sequence[tuple[Sequence[IdentityKey], Sequence[str]]] = (),
    ) -> None:
        for from_id, to_id in moves.items():
            await self.repoint_identities(tenant, [from_id], to_id)
        for keys, customer_ids in presented:
            await self.add_identity_customers(tenant, keys, customer_ids)

    async def move_identities(self, tenant: str, ids: Sequence[object], to_id: str) -> None:
        for doc in self.identities.values():
            if doc["_id"] in ids:
                doc["customer_id"] = to_id

    async def record_merge(self, doc: MergeEntry) -> None:
        self.merges.setdefault(doc["_id"], copy.deepcopy(doc))

    async def record_merges(self, docs: Sequence[MergeEntry]) -> None:
        for doc in docs:
            await self.record_merge(doc)

    async def replace_merge(self, doc: MergeEntry) -> None:
        self.merges[doc["_id"]] = copy.deepcopy(doc)

    async def settle_merge(self, entry: MergeEntry, *, status: Literal["done", "dropped"]) -> None:
        stored = self.merges.get(entry["_id"])
        if stored is None or stored["status"] != "pending":
            return
        if status == "dropped":
            del self.merges[entry["_id"]]
        else:
            stored["status"] = "done"

    async def settle_merges(self, entries: Sequence[MergeEntry]) -> None:
        for entry in entries:
            await self.settle_merge(entry, status="done")

    async def merges_with_status(self, status: MergeStatus) -> list[MergeEntry]:
        return [copy.deepcopy(d) for d in self.merges.values() if d["status"] == status]

    async def get_merge(self, tenant: str, merge_id: str) -> MergeEntry | None:
        return copy.deepcopy(self.merges.get(merge_id))

    async def insert_suggestion(self, doc: SuggestionDoc) -> bool:
        if doc["_id"] in self.suggestions:
            return False
        self.suggestions[doc["_id"]] = copy.deepcopy(doc)
        return True

    async def add_suggestion_signal(self, tenant: str, suggestion: str, signal: str) -> None:
        signals = self.suggestions[suggestion]["signals"]
        if signal not in signals:
            signals.append(signal)

    async def get_suggestion(self, tenant: str, suggestion: str) -> SuggestionDoc | None:
        return copy.deepcopy(self.suggestions.get(suggestion))

    async def replace_open_suggestion(self, doc: SuggestionDoc) -> None:
        if self.suggestions[doc["_id"]]["status"] == "open":
            self.suggestions[doc["_id"]] = copy.deepcopy(doc)

    async def open_suggestions(
        self, tenant: str, customer_ids: Sequence[str], limit: int
    ) -> list[SuggestionDoc]:
        return [
            copy.deepcopy(d)
            for d in self.suggestions.values()
            if d["status"] == "open"
            and (not customer_ids or set(d["customer_ids"]) & set(customer_ids))
        ][:limit]
