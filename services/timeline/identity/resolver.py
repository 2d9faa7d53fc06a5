"""Resolves identifiers to one customer: create, attach, or merge with a ledger entry."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from typing import cast

from opentelemetry import trace

from services.timeline.cases.model import CaseDoc
from services.timeline.cases.records import CaseRecords
from services.timeline.errors import ConcurrentUpdateError, ResolutionConflictError
from services.timeline.identity.documents import ActorDoc, Claim, IdentityDoc, MergeEntry
from services.timeline.identity.policy import BLOCKLISTED, SHARED, IdentityKey, IdentityPolicy
from services.timeline.identity.records import IdentityRecords
from services.timeline.identity.suggestions import UNVERIFIED_LINK, suggest_pair
from services.timeline.interactions.records import InteractionLog
from services.timeline.interactions.tally import Tally, tally_of
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.profile import (
    customer_id_for,
    merged_profile,
    new_customer,
    survivor_order,
    with_open_case,
)
from services.timeline.profiles.records import CustomerRecords
from services.timeline.retry import CONFLICT, Lost, retry_on_conflict
from services.timeline.store.documents import Document, aware

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

_MERGE_NAMESPACE = uuid.UUID("0c6a1f55-3a0e-4f0b-8d57-6a6e1b9f2a10")
MAX_MERGE_CHAIN = 32
MERGE_RULE = "shared_deterministic_identifier"
MANUAL_RULE = "manual"
# A survivor's recent cases read after a merge; its open case is almost always among them.
RECENT_CASES = 20


def _presenters(identity: IdentityDoc) -> set[str]:
    """Customers that presented an identifier (older documents only know the owner)."""
    return set(identity.get("customer_ids") or [identity["customer_id"]])


def _vouched_for(customer: CustomerDoc) -> bool:
    """Whether a channel ever verified who this customer is (then there is a history to steal)."""
    return bool(customer.get("name_verified")) or any(
        ident.get("verified") for ident in customer.get("identifiers", [])
    )


def _separated(customers: Iterable[CustomerDoc]) -> bool:
    """Whether an agent split any two of these customers apart (they stay apart)."""
    docs = list(customers)
    ids = {d["_id"] for d in docs} | {m for d in docs for m in d.get("merged_ids", [])}
    return any(set(d.get("separated_from", [])) & ids for d in docs)


@dataclass(frozen=True, slots=True)
class Lookup:
    """What one resolution read: the identities of the event's keys and their live owners."""

    docs: dict[IdentityKey, IdentityDoc]
    target: dict[str, str]
    live: dict[str, CustomerDoc]

    def narrowed(self, keys: Collection[IdentityKey], limit: int) -> Lookup:
        """What reading only `keys` would have found (a batch reads its events' keys at once)."""
        docs = {k: d for k, d in self.docs.items() if k in keys}
        owners = {d["customer_id"] for d in docs.values() if len(_presenters(d)) <= limit}
        target = {c: t for c, t in self.target.items() if c in owners}
        return Lookup(docs, target, {t: self.live[t] for t in target.values()})


@dataclass(frozen=True, slots=True)
class MergePlan:
    """A merge an event asks for, to be done with the other merges of its batch.

    Attributes:
        customers: The live customers to merge, as read.
        owners: Each identifier of the event that someone holds → its holder (the evidence).
        presented: The identifiers that led to `customers`: recorded as presented by all of
            them (merge protection counts it), as `resolve` does after a merge.
        lookup: What the event's resolution read; resolving it again after the merge
            starts from it, with the merge applied, instead of reading again.
    """

    event_id: str
    customers: list[CustomerDoc]
    owners: dict[IdentityKey, str]
    presented: list[IdentityKey] = field(default_factory=list)
    lookup: Lookup | None = None


@dataclass(frozen=True, slots=True)
class _Finished:
    survivor_id: str
    survivor: CustomerDoc
    cases: list[CaseDoc]


@dataclass(frozen=True, slots=True)
class Merged:
    """A merge done by `merge_many`.

    Attributes:
        ledger_survivor_id: The survivor the ledger names.
        survivor_id: The live customer it all ended on (the same, unless another replica
            merged the survivor meanwhile).
        lookup: The event's read with the merge applied (None: resolve it from a fresh read).
        cases: The survivor's recent cases after the merge, newest first.
        survivor: The live survivor as the merge wrote it (its rebuilt profile).
    """

    ledger_survivor_id: str
    survivor_id: str
    merged_ids: list[str]
    lookup: Lookup | None = None
    cases: list[CaseDoc] = field(default_factory=list)
    survivor: CustomerDoc | None = None


def _after_merge(plan: MergePlan, done: _Finished) -> Lookup | None:
    """What the plan's event would read now: its identifiers held by the survivor (and
    presented by every merged customer), the survivor as just written.
    """
    if plan.lookup is None:
        return None
    merged = {d["_id"] for d in plan.customers}
    survivor = done.survivor_id
    presented = set(plan.presented)
    everyone = sorted(merged)
    docs: dict[IdentityKey, IdentityDoc] = {}
    for key, doc in plan.lookup.docs.items():
        owner = plan.lookup.target.get(doc["customer_id"], doc["customer_id"])
        moved = doc.copy()
        if owner in merged:
            moved["customer_id"] = survivor
        if key in presented:
            moved["customer_ids"] = sorted({*_presenters(doc), *everyone})
        docs[key] = moved
    target = {c: survivor if t in merged else t for c, t in plan.lookup.target.items()}
    target[survivor] = survivor
    live = {c: d for c, d in plan.lookup.live.items() if c not in merged}
    live[survivor] = done.survivor
    return Lookup(docs, target, live)


@dataclass(frozen=True, slots=True)
class Resolution:
    """Whose the event is; or, asked with `may_merge=False`, that a merge must come first.

    Attributes:
        merge_needed: The event links customers that must be merged. Nothing was written:
            the caller makes its pending writes durable (a merge moves and counts the log)
            and resolves again with `may_merge=True`, passing `lookup` back.
        lookup: With `merge_needed`, what was read; the second resolution starts from it
            instead of reading it again (a merge re-reads the customers it moves anyway,
            and a lost race in the second resolution reads everything afresh).
    """

    customer_id: str
    created: bool = False
    merged_ids: list[str] = field(default_factory=list)
    # Keys of the event that matched nobody, with why: "blocklisted" or "shared".
    protected: dict[IdentityKey, str] = field(default_factory=dict)
    merge_needed: bool = False
    lookup: Lookup | None = None
    # With `merge_needed`: the merge to do (`IdentityResolver.merge_many`), then resolve again.
    plan: MergePlan | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who decided a merge or split: the timeline itself, or an agent."""

    type: str
    id: str
    display_name: str = ""

    def document(self) -> ActorDoc:
        return {"type": self.type, "id": self.id, "display_name": self.display_name}


SYSTEM = Actor("system", "timeline")
IdentityAnnouncer = Callable[[MergeEntry, str], Awaitable[None]]
"""Publishes an identity change: (ledger entry, "merged" | "split")."""


def _default_policy(_tenant: str) -> IdentityPolicy:
    return IdentityPolicy(region="JP")


@dataclass(frozen=True, slots=True)
class IdentityResolver:
    """Finds or creates the customer of an interaction; merges customers an event links.

    No lock is held across awaits: unique indexes decide races, and the loser retries.
    """

    identities: IdentityRecords
    _: KW_ONLY
    customers: CustomerRecords
    interactions: InteractionLog
    cases: CaseRecords
    clock: Callable[[], datetime]
    policy_for: Callable[[str], IdentityPolicy] = _default_policy
    announce: IdentityAnnouncer | None = None

    async def live_customers(
        self, tenant: str, ids: set[str], *, opened: bool = True
    ) -> dict[str, CustomerDoc]:
        """The active customers behind `ids`, following merges to their survivors.

        `opened=False`: as stored (`CustomerRecords.stored_customers`), for a caller that
        needs only ids and merge pointers: no data key is asked for them.
        """
        return (await self.survivors(tenant, ids, opened=opened))[1]

    async def same_customer(self, tenant: str, first: str, second: str) -> bool:
        """Whether `first` is `second` or was merged into it (perhaps not re-pointed yet)."""
        return first == second or second in await self.live_customers(tenant, {first})

    async def move_records(self, tenant: str, from_ids: list[str], to_id: str) -> None:
        """Move identities and interactions appended to merged-away customers to `to_id`."""
        await self.identities.repoint_identities(tenant, from_ids, to_id)
        await self.interactions.repoint(tenant, from_ids, to_id)

    async def survivor_ids(self, tenant: str, ids: set[str]) -> dict[str, str]:
        """Each of `ids` → its live customer id (ids not found are left out).

        `survivors` without the documents: only the merge pointers are read.
        """
        target: dict[str, str] = {}
        frontier = {i: i for i in ids}  # original id → the id looked up now
        for _ in range(MAX_MERGE_CHAIN):
            if not frontier:
                return target
            pointers = await self.customers.merged_into(tenant, set(frontier.values()))
            following: dict[str, str] = {}
            for original, current in frontier.items():
                if current not in pointers:
                    continue
                if nxt := pointers[current]:
                    following[original] = nxt
                else:
                    target[original] = current
            frontier = following
        raise RuntimeError(f"merge chain longer than {MAX_MERGE_CHAIN} in tenant {tenant}")

    async def survivors(
        self, tenant: str, ids: set[str], *, opened: bool = True
    ) -> tuple[dict[str, str], dict[str, CustomerDoc]]:
        """Each of `ids` → its live customer id (ids not found are left out), and the docs.

        `opened=False`: the docs as stored (their personal fields still sealed).
        """
        read = self.customers.get_customers if opened else self.customers.stored_customers
        target: dict[str, str] = {}
        live: dict[str, CustomerDoc] = {}
        frontier = {i: i for i in ids}  # id looked up now → the original id it stands for
        for _ in range(MAX_MERGE_CHAIN):
            if not frontier:
                return target, live
            docs = await read(tenant, set(frontier.values()))
            following: dict[str, list[str]] = {}
            for current, doc in docs.items():
                originals = [o for o, c in frontier.items() if c == current]
                if doc.get("merged_into"):
                    following.setdefault(doc["merged_into"], []).extend(originals)
                else:
                    live[current] = doc
                    target.update(dict.fromkeys(originals, current))
            frontier = {o: nxt for nxt, origs in following.items() for o in origs}
        raise RuntimeError(f"merge chain longer than {MAX_MERGE_CHAIN} in tenant {tenant}")

    async def resolve(
        self,
        *,
        tenant: str,
        event_id: str,
        occurred_at: datetime,
        keys: Sequence[IdentityKey],
        verified: Collection[IdentityKey] = (),
        may_merge: bool = True,
        lookup: Lookup | None = None,
    ) -> Resolution:
        """The customer the identifier keys belong to, creating or merging as needed.

        Merge protection: blocklisted keys and keys that more customers presented than the
        tenant allows match nobody; customers an agent split apart are never merged again
        automatically; a merge that would make a key join more customers than allowed is
        refused, and that key becomes shared. A refused merge lands the event on the customer
        of its strongest identifier.

        Only identifiers the channel verified (`verified`), or of kinds the tenant trusts
        unverified, link customers: an event whose other identifiers lead to more customers
        lands on the customer of its strongest trusted identifier (else its strongest one)
        and suggests the merge to an agent instead. Nor does an unverified identifier hand a
        verified customer new identifiers: such an event gets a customer of its own and a
        suggestion, so that a phone typed next to someone's address never screen-pops them.

        With `may_merge=False` a needed merge is not done but answered `merge_needed`, with
        the `lookup` to pass back to the second call. A `lookup` (that one, or a batch's
        `look_up`) stands for the first read; a retry after a lost race reads afresh.

        Raises:
            ResolutionConflictError: Other writers kept claiming the same identifiers.
        """
        policy = self.policy_for(tenant)
        blocked = {key: BLOCKLISTED for key in keys if policy.blocklisted(key)}
        candidates = [key for key in keys if key not in blocked]

        limit = policy.max_customers_per_identifier
        reuse = [lookup.narrowed(candidates, limit)] if lookup is not None else []

        async def attempt() -> Resolution | Lost:
            return await self._resolve_once(
                tenant=tenant,
                event_id=event_id,
                occurred_at=occurred_at,
                candidates=candidates,
                verified=verified,
                blocked=blocked,
                may_merge=may_merge,
                # Only the first attempt: a retry after a lost race must read afresh.
                lookup=reuse.pop() if reuse else None,
            )

        return await retry_on_conflict(
            attempt,
            what=f"owner of the identifiers of event {event_id}",
            error=ResolutionConflictError,
        )

    async def _resolve_once(
        self,
        *,
        tenant: str,
        event_id: str,
        occurred_at: datetime,
        candidates: list[IdentityKey],
        verified: Collection[IdentityKey],
        blocked: dict[IdentityKey, str],
        may_merge: bool,
        lookup: Lookup | None,
    ) -> Resolution | Lost:
        policy = self.policy_for(tenant)
        limit = policy.max_customers_per_identifier
        if lookup is None:
            lookup = await self._look_up(tenant, candidates, limit)
        docs, target, live = lookup.docs, lookup.target, lookup.live
        protected = dict(blocked)
        protected.update({k: SHARED for k, d in docs.items() if len(_presenters(d)) > limit})
        matching = {k: d["customer_id"] for k, d in docs.items() if k not in protected}
        owner = {k: target[c] for k, c in matching.items() if c in target}
        unclaimed = [key for key in candidates if key not in docs]
        trusted = [k for k in owner if policy.trusted(k, verified=verified)]
        created = False
        merged: list[str] = []
        suggested: list[str] = []
        newly_shared: list[IdentityKey] = []
        unvouched = set(live) - {owner[k] for k in trusted}
        if unvouched and (
            len(live) > 1 or (unclaimed and any(_vouched_for(live[c]) for c in unvouched))
        ):
            customer_id, created, suggested = await self._unverified_link(
                tenant,
                event_id=event_id,
                occurred_at=occurred_at,
                owner=owner,
                trusted=trusted,
                live=live,
                new_keys=bool(unclaimed),
            )
        elif not live:
            customer_id, created = await self._new_customer(tenant, event_id, occurred_at)
        elif len(live) == 1:
            customer_id = next(iter(live))
        else:
            over = [k for k in owner if len(_presenters(docs[k]) | set(live)) > limit]
            if over or _separated(live.values()):
                strongest = policy.strongest(owner)
                assert strongest is not None  # live is not empty, so owner is not
                customer_id = owner[strongest]
                newly_shared = over
                protected.update({k: SHARED for k, c in owner.items() if c != customer_id})
                log.info(
                    "merge of %d customers refused for event %s (%s)",
                    len(live),
                    event_id,
                    "identifier limit" if over else "split apart before",
                )
            elif not may_merge:
                read = Lookup(docs, target, live)
                plan = MergePlan(event_id, list(live.values()), matching, list(owner), read)
                return Resolution(customer_id="", merge_needed=True, lookup=read, plan=plan)
            else:
                customer_id, merged = await self.merge(
                    tenant, list(live.values()), event_id=event_id, owners=matching
                )
                await self.identities.add_identity_customers(tenant, list(owner), sorted(live))
        conflicts = await self.identities.claim_identities(
            Claim(tenant, customer_id, unclaimed, event_id, self.clock())
        )
        if not conflicts:
            shared = [k for k, why in protected.items() if why == SHARED and k in docs]
            await self.identities.add_identity_customers(
                tenant, sorted({*shared, *newly_shared}), [customer_id]
            )
            await self._suggest(tenant, customer_id, suggested)
            return Resolution(
                customer_id=customer_id, created=created, merged_ids=merged, protected=protected
            )
        # Another writer claimed an identifier between our read and write: resolve again,
        # which attaches to (or merges with) the customer that won. A customer we just
        # created goes away only if it claimed nothing: identifiers it did claim point to
        # it (and other writers may already attach to it), so the retry merges it instead.
        if created and len(conflicts) == len(unclaimed):
            await self.customers.delete_unused(tenant, customer_id)
        return CONFLICT

    async def look_up(self, tenant: str, keys: Iterable[IdentityKey]) -> Lookup:
        """Read what resolving events with these keys needs, for many events at once: one
        identity read and one customer read (more only along merge chains). Pass it to
        `resolve` as `lookup`; it must not have gone stale meanwhile (the caller's writes).
        """
        limit = self.policy_for(tenant).max_customers_per_identifier
        return await self._look_up(tenant, sorted(set(keys)), limit)

    async def create_many(
        self,
        tenant: str,
        events: Sequence[tuple[str, datetime, Sequence[IdentityKey]]],
        lookup: Lookup,
    ) -> tuple[Lookup, list[str]]:
        """Create, in two round trips, the customers of events whose identifiers nobody holds.

        `events` are (event id, occurred at, keys) in the order they are to be resolved, and
        `lookup` what `look_up` read for their keys. An event whose every (not blocklisted)
        key is absent from `lookup`, and presented by no earlier event of `events`, gets the
        customer and the claims `resolve` would have written for it; the returned lookup holds
        them, so that resolving it (and later events with those keys) attaches to it. Events
        whose claims another writer beat are left out: `resolve` reads afresh for them.

        Returns:
            The lookup with the new customers, and their ids.
        """
        policy = self.policy_for(tenant)
        seen: set[IdentityKey] = set()
        fresh: list[Claim] = []
        at = self.clock()
        for event_id, _, keys in events:
            candidates = [key for key in keys if not policy.blocklisted(key)]
            if candidates and not any(k in lookup.docs or k in seen for k in candidates):
                fresh.append(
                    Claim(tenant, customer_id_for(tenant, event_id), candidates, event_id, at)
                )
            seen.update(keys)
        if not fresh:
            return lookup, []
        occurred = {event_id: when for event_id, when, _ in events}
        customers = {
            claim.customer_id: new_customer(
                tenant=tenant,
                customer_id=claim.customer_id,
                created_at=at,
                first_contact_at=occurred[claim.event_id],
            )
            for claim in fresh
        }
        # A customer that exists already (a replay) is left to `resolve`, as is its claim.
        inserted = await self.customers.insert_customers(list(customers.values()))
        claims = [claim for claim in fresh if claim.customer_id in inserted]
        refused = await self.identities.claim_many(claims)
        docs, target, live = dict(lookup.docs), dict(lookup.target), dict(lookup.live)
        created: list[str] = []
        for claim, lost in zip(claims, refused, strict=True):
            if lost:
                if len(lost) == len(claim.keys):
                    await self.customers.delete_unused(tenant, claim.customer_id)
                continue
            customer_id = claim.customer_id
            docs.update({key: cast("IdentityDoc", claim.document(key)) for key in claim.keys})
            target[customer_id] = customer_id
            live[customer_id] = customers[customer_id]
            created.append(customer_id)
        return Lookup(docs, target, live), created

    async def _look_up(self, tenant: str, candidates: list[IdentityKey], limit: int) -> Lookup:
        docs = await self.identities.identity_docs(tenant, candidates)
        owners = {d["customer_id"] for d in docs.values() if len(_presenters(d)) <= limit}
        target, live = await self.survivors(tenant, owners)
        return Lookup(docs, target, live)

    async def _new_customer(
        self, tenant: str, event_id: str, occurred_at: datetime
    ) -> tuple[str, bool]:
        """The event's own customer, and whether this call created it (not on a replay)."""
        customer_id = customer_id_for(tenant, event_id)
        created = await self.customers.insert_customer(
            new_customer(
                tenant=tenant,
                customer_id=customer_id,
                created_at=self.clock(),
                first_contact_at=occurred_at,
            )
        )
        return customer_id, created

    async def _suggest(self, tenant: str, customer_id: str, others: list[str]) -> None:
        at = self.clock()
        for other in others:
            await suggest_pair(
                self.identities, tenant, [customer_id, other], UNVERIFIED_LINK, at=at
            )

    async def _unverified_link(
        self,
        tenant: str,
        *,
        event_id: str,
        occurred_at: datetime,
        owner: dict[IdentityKey, str],
        trusted: list[IdentityKey],
        live: dict[str, CustomerDoc],
        new_keys: bool,
    ) -> tuple[str, bool, list[str]]:
        """Where an event goes whose unverified identifiers link customers: no merge, but a
        suggestion per linked pair. Returns the customer, whether this call created it, and
        the customers to suggest merging it with.
        """
        policy = self.policy_for(tenant)
        strongest = policy.strongest(trusted) or policy.strongest(owner)
        assert strongest is not None  # live is not empty, so owner is not
        customer_id, created = owner[strongest], False
        own = customer_id_for(tenant, event_id)
        if not trusted and own in live:
            # A replay after this event got a customer of its own (below): land there again.
            customer_id = own
        others = sorted(set(live) - {customer_id})
        if not trusted and new_keys and _vouched_for(live[customer_id]):
            # Its new identifiers would screen-pop a verified customer on nobody's word.
            customer_id, created = await self._new_customer(tenant, event_id, occurred_at)
            others = sorted(live)
        log.info(
            "event %s links %d customers through unverified identifiers: suggested, not merged",
            event_id,
            len(live),
        )
        # Customers an agent split apart are not suggested again.
        landed = [live[customer_id]] if customer_id in live else []
        return customer_id, created, [c for c in others if not _separated([live[c], *landed])]

    async def merge(
        self,
        tenant: str,
        customers: list[CustomerDoc],
        *,
        event_id: str,
        owners: dict[IdentityKey, str],
        rule: str = MERGE_RULE,
        actor: Actor = SYSTEM,
        reason: str = "",
    ) -> tuple[str, list[str]]:
        """Merge customers into the one seen first; every step is idempotent.

        The ledger entry is written first with status "pending" (the intent and the evidence),
        then identities and interactions are re-pointed, losers marked merged, the survivor's
        profile rebuilt from the log, the change announced, and the entry marked "done". A
        merge cut off half-way is finished by `complete_pending_merges`.
        """
        plan = MergePlan(event_id, customers, owners)
        [outcome] = await self.merge_many(tenant, [plan], rule=rule, actor=actor, reason=reason)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome.ledger_survivor_id, outcome.merged_ids

    async def merge_many(
        self,
        tenant: str,
        plans: Sequence[MergePlan],
        *,
        rule: str = MERGE_RULE,
        actor: Actor = SYSTEM,
        reason: str = "",
    ) -> list[Merged | Exception]:
        """Do the merges of a batch together: one round trip per step for all of them.

        Each merge is what `merge` does, with its own ledger entry; the customers are read
        once, the entries written in one insert, the losers marked in one bulk write, each
        collection re-pointed in one bulk write, the survivors recounted in one read and
        rebuilt in one bulk write, the entries settled in one update. Plans that share a
        customer are done one after the other (a later one merges what the earlier left live).
        A merge that fails fails alone: its outcome is the exception (`ConcurrentUpdateError`
        when another merge took one of its customers first: resolving its event again then
        merges what is live by then).
        """
        seen: set[str] = set()
        now: list[int] = []
        later: list[int] = []
        for position, plan in enumerate(plans):
            ids = {d["_id"] for d in plan.customers}
            (later if ids & seen else now).append(position)
            seen |= ids
        outcomes = dict(
            zip(
                now,
                await self._merge_disjoint(
                    tenant, [plans[p] for p in now], rule=rule, actor=actor, reason=reason
                ),
                strict=True,
            )
        )
        if later:
            # They share a customer with one done just now: merge what that one left live.
            rest = await self.merge_many(
                tenant, [plans[p] for p in later], rule=rule, actor=actor, reason=reason
            )
            outcomes.update(zip(later, rest, strict=True))
        return [outcomes[p] for p in range(len(plans))]

    async def _merge_disjoint(
        self,
        tenant: str,
        plans: Sequence[MergePlan],
        *,
        rule: str,
        actor: Actor,
        reason: str,
    ) -> list[Merged | Exception]:
        if not plans:
            return []
        # Read again: a batch writer may have just flushed contacts into these customers, and
        # the ledger's before-snapshot must hold what they really had.
        fresh = await self.customers.get_customers(
            tenant, [d["_id"] for plan in plans for d in plan.customers]
        )
        started: list[tuple[MergeEntry, Mapping[str, CustomerDoc] | None]] = []
        for plan in plans:
            ordered = sorted((fresh.get(d["_id"], d) for d in plan.customers), key=survivor_order)
            ledger = self._ledger(tenant, ordered, plan=plan, rule=rule, actor=actor, reason=reason)
            # Only losers the store holds: the bulk mark is an upsert at their read version.
            read = {i: fresh[i] for i in ledger["merged_ids"] if i in fresh}
            started.append((ledger, read))
        with tracer.start_as_current_span(
            "identity.merge",
            attributes={
                "tsunagu.merge.customers": sum(len(p.customers) for p in plans),
                "tsunagu.merge.merges": len(plans),
            },
        ):
            await self.identities.record_merges([ledger for ledger, _ in started])
            presented = {
                ledger["_id"]: (plan.presented, sorted(d["_id"] for d in plan.customers))
                for plan, (ledger, _) in zip(plans, started, strict=True)
                if plan.presented
            }
            finished = await self._finish_merges(
                tenant, started, presented=presented, read_before=fresh
            )
        outcomes: list[Merged | Exception] = []
        for plan, (ledger, _), done in zip(plans, started, finished, strict=True):
            if isinstance(done, Exception):
                outcomes.append(done)
                continue
            log.info(
                "merged %s into %s (event %s)",
                ledger["merged_ids"],
                ledger["survivor_id"],
                plan.event_id,
            )
            outcomes.append(
                Merged(
                    ledger["survivor_id"],
                    done.survivor_id,
                    ledger["merged_ids"],
                    lookup=_after_merge(plan, done),
                    cases=done.cases,
                    survivor=done.survivor,
                )
            )
        return outcomes

    def _ledger(
        self,
        tenant: str,
        ordered: list[CustomerDoc],
        *,
        plan: MergePlan,
        rule: str,
        actor: Actor,
        reason: str,
    ) -> MergeEntry:
        """The ledger entry of merging `ordered` (the survivor first), status "pending"."""
        survivor, losers = ordered[0], ordered[1:]
        loser_ids = sorted(d["_id"] for d in losers)
        merge_key = uuid.uuid5(_MERGE_NAMESPACE, f"{tenant}/{plan.event_id}/{','.join(loser_ids)}")
        return {
            "_id": f"mrg_{merge_key.hex}",
            "tenant": tenant,
            "survivor_id": survivor["_id"],
            "merged_ids": loser_ids,
            "rule": rule,
            "actor": actor.document(),
            "reason": reason,
            "at": self.clock(),
            "status": "pending",
            "evidence": {
                "event_id": plan.event_id,
                "identifiers": [
                    {"kind": kind, "value": value, "customer_id": owner}
                    for (kind, value), owner in sorted(plan.owners.items())
                ],
            },
            # What each customer was, so that a split can put it back exactly.
            "before": [
                {
                    "customer_id": d["_id"],
                    "display_name": d.get("display_name", ""),
                    "name_verified": bool(d.get("name_verified")),
                    "identifiers": d.get("identifiers", []),
                    "merged_ids": d.get("merged_ids", []),
                    "interaction_count": d.get("interaction_count", 0),
                }
                for d in ordered
            ],
        }

    async def finish_merge(
        self, ledger: MergeEntry, *, read: Mapping[str, CustomerDoc] | None = None
    ) -> None:
        """Mark, re-point, rebuild, announce; `read`: the losers as just read, if they were."""
        [done] = await self._finish_merges(ledger["tenant"], [(ledger, read)])
        if isinstance(done, Exception):
            raise done

    async def _finish_merges(
        self,
        tenant: str,
        started: Sequence[tuple[MergeEntry, Mapping[str, CustomerDoc] | None]],
        *,
        presented: Mapping[str, tuple[list[IdentityKey], list[str]]] | None = None,
        read_before: Mapping[str, CustomerDoc] | None = None,
    ) -> list[_Finished | Exception]:
        """Finish merges of one tenant whose customers are disjoint, each step in bulk.

        Mark first, then re-point once. A writer appends to a customer before it writes the
        customer's profile at the version it read: if that write landed before the mark, so
        did its appends, and the re-point below moves them; if it came after, the mark's
        version made it fail and the writer moves what it appended itself (`_moved`).

        `read_before`: customers as read before this call (the ledger's before-snapshots);
        the survivors among them are not read again for their versions.
        """
        marked = await self._mark_merged(started)
        going = [
            (ledger, losers)
            for (ledger, _), losers in zip(started, marked, strict=True)
            if not isinstance(losers, Exception)
        ]
        moves = {
            loser_id: ledger["survivor_id"]
            for ledger, _ in going
            for loser_id in ledger["merged_ids"]
        }
        shown_by = presented or {}
        shown = [shown_by[ledger["_id"]] for ledger, _ in going if ledger["_id"] in shown_by]
        # The survivors' versions before their log is read for the recount: a writer that
        # appends to one after that read and projects it before ours makes our versioned
        # write fail (the survivor is then read and recounted alone), instead of our count
        # overwriting its contact.
        # Those read before the ledger entries were written serve: an older version only
        # makes the rebuild stricter, never lets it overwrite a contact.
        survivor_ids = sorted({ledger["survivor_id"] for ledger, _ in going})
        known = read_before or {}
        counted = {i: known[i] for i in survivor_ids if i in known}
        if unread := [i for i in survivor_ids if i not in counted]:
            counted.update(await self.customers.get_customers(tenant, unread))
        tallies, recent = await self._move_merged(tenant, moves, shown)
        # A merge on another replica may have merged a survivor meanwhile (checked after our
        # last re-point: a later merge re-points what we moved). Finish on its live survivor.
        target, live = await self.survivors(tenant, {ledger["survivor_id"] for ledger, _ in going})
        survivor_of: dict[str, str] = {}
        for ledger, _ in going:
            survivor_id = ledger["survivor_id"]
            live_id = target.get(survivor_id, survivor_id)
            if live_id != survivor_id:
                await self._repoint(tenant, [survivor_id], live_id)
                tallies[live_id] = await self.interactions.tally(tenant, live_id)
                recent[live_id] = await self.cases.recent(tenant, live_id, limit=RECENT_CASES)
            survivor_of[ledger["_id"]] = live_id
        rebuilt = await self._rebuild_survivors(
            tenant,
            [(ledger, losers, survivor_of[ledger["_id"]]) for ledger, losers in going],
            live=live,
            recent=recent,
            tallies=tallies,
            counted={i: d["version"] for i, d in counted.items()},
        )
        settled: list[MergeEntry] = []
        for ledger, _ in going:
            if isinstance(rebuilt[ledger["_id"]], Exception):
                continue
            if self.announce is not None:
                await self.announce(ledger, "merged")
            settled.append(ledger)
        await self.identities.settle_merges(settled)
        outcomes: list[_Finished | Exception] = []
        for (ledger, _), losers in zip(started, marked, strict=True):
            if isinstance(losers, Exception):
                outcomes.append(losers)
                continue
            doc = rebuilt[ledger["_id"]]
            if isinstance(doc, Exception):
                outcomes.append(doc)
                continue
            live_id = survivor_of[ledger["_id"]]
            outcomes.append(_Finished(live_id, doc, recent.get(live_id, [])))
        return outcomes

    async def _rebuild_survivors(
        self,
        tenant: str,
        merges: Sequence[tuple[MergeEntry, list[CustomerDoc], str]],
        *,
        live: Mapping[str, CustomerDoc],
        recent: Mapping[str, list[CaseDoc]],
        tallies: Mapping[str, Tally],
        counted: Mapping[str, int],
    ) -> dict[str, CustomerDoc | Exception]:
        """The survivors' profiles from their log, in one bulk write at the versions read;
        a survivor another writer changed meanwhile is read, recounted and written alone.

        Returns:
            Ledger id → the survivor as written (or why it could not be).
        """
        open_cases: dict[str, str] = {}
        for survivor_id in {s for _, _, s in merges}:
            cases = recent.get(survivor_id, [])
            open_case = next((c for c in cases if c["status"] != "resolved"), None)
            if open_case is None and len(cases) >= RECENT_CASES:
                # Older than the recent ones: only the store's own query finds it.
                open_case = await self.cases.latest_open(tenant, survivor_id)
            open_cases[survivor_id] = open_case["_id"] if open_case else ""

        def profile_of(
            ledger: MergeEntry, survivor: CustomerDoc, losers: list[CustomerDoc], tally: Tally
        ) -> CustomerDoc:
            profile = merged_profile(
                survivor,
                [d for d in losers if d["_id"] not in survivor.get("merged_ids", [])],
                tally=tally,
            )
            profile = with_open_case(profile, open_cases[survivor["_id"]])
            if ledger.get("rule") == MANUAL_RULE:
                # An agent joined them on purpose: an earlier split no longer keeps them apart.
                apart = set(ledger["merged_ids"])
                profile["separated_from"] = [
                    c for c in profile.get("separated_from", []) if c not in apart
                ]
            return profile

        writes: dict[str, tuple[CustomerDoc, int]] = {}
        for ledger, losers, survivor_id in merges:
            survivor = live.get(survivor_id)
            if survivor is not None:
                profile = profile_of(ledger, survivor, losers, tallies[survivor_id])
                # At the version read before the tally (`counted`), when it was read then.
                version = min(survivor["version"], counted.get(survivor_id, survivor["version"]))
                writes[ledger["_id"]] = (profile, version)
        lost = await self.customers.replace_customers(list(writes.values())) if writes else set()
        rebuilt: dict[str, CustomerDoc | Exception] = {}
        for ledger, losers, survivor_id in merges:
            write = writes.get(ledger["_id"])
            if write is not None and survivor_id not in lost:
                rebuilt[ledger["_id"]] = {**write[0], "version": write[1] + 1}
                continue

            async def rebuild(
                ledger: MergeEntry = ledger,
                losers: list[CustomerDoc] = losers,
                survivor_id: str = survivor_id,
            ) -> CustomerDoc | Lost:
                survivor = (await self.customers.get_customers(tenant, [survivor_id]))[survivor_id]
                tally = await self.interactions.tally(tenant, survivor_id)
                profile = profile_of(ledger, survivor, losers, tally)
                if await self.customers.replace_customer(
                    profile, expected_version=survivor["version"]
                ):
                    return {**profile, "version": survivor["version"] + 1}
                return CONFLICT

            try:
                rebuilt[ledger["_id"]] = await retry_on_conflict(
                    rebuild, what=f"customer {survivor_id} during a merge"
                )
            except ConcurrentUpdateError as exc:
                rebuilt[ledger["_id"]] = exc
        return rebuilt

    async def _mark_merged(
        self, started: Sequence[tuple[MergeEntry, Mapping[str, CustomerDoc] | None]]
    ) -> list[list[CustomerDoc] | ConcurrentUpdateError]:
        """Mark the losers merged into their survivors: one read of those not read yet, one
        bulk write at the versions read; a loser a writer changed meanwhile is read again and
        marked alone.

        Returns:
            Per merge, the losers as marked (those that exist), in the ledger's order; or,
            when another merge took a loser into a different customer first, the error: its
            pending entry is removed (it never happened) and the event that asked for it is
            resolved again, which merges the customers that are live by then.
        """
        if not started:
            return []
        tenant = started[0][0]["tenant"]
        unread = [i for ledger, read in started if read is None for i in ledger["merged_ids"]]
        fetched = await self.customers.get_customers(tenant, unread) if unread else {}
        marked: dict[str, CustomerDoc] = {}

        async def taken(ledger: MergeEntry, loser: CustomerDoc) -> CustomerDoc | None:
            """The loser marked, or None when it already is; raises when another merge won."""
            survivor_id = ledger["survivor_id"]
            if loser.get("merged_into") == survivor_id:
                marked[loser["_id"]] = loser
                return None
            if loser.get("merged_into"):
                await self.identities.settle_merge(ledger, status="dropped")
                raise ConcurrentUpdateError(
                    f"customer {loser['_id']} was merged into {loser['merged_into']} meanwhile"
                )
            doc = loser.copy()
            doc["status"], doc["merged_into"] = "merged", survivor_id
            return doc

        failed: dict[str, ConcurrentUpdateError] = {}
        planned: list[tuple[CustomerDoc, int]] = []
        ledger_of: dict[str, MergeEntry] = {}
        for ledger, read in started:
            got = fetched if read is None else read
            mine: list[tuple[CustomerDoc, int]] = []
            try:
                for loser_id in ledger["merged_ids"]:
                    if loser_id in got and (doc := await taken(ledger, got[loser_id])) is not None:
                        mine.append((doc, got[loser_id]["version"]))
            except ConcurrentUpdateError as exc:
                failed[ledger["_id"]] = exc
                continue
            planned += mine
            ledger_of.update({doc["_id"]: ledger for doc, _ in mine})
        lost = await self.customers.replace_customers(planned) if planned else set()
        for doc, _ in planned:
            ledger = ledger_of[doc["_id"]]
            if doc["_id"] not in lost:
                marked[doc["_id"]] = doc
                continue
            if ledger["_id"] in failed:
                continue

            async def mark(loser_id: str = doc["_id"], ledger: MergeEntry = ledger) -> Lost | None:
                loser = (await self.customers.get_customers(tenant, [loser_id])).get(loser_id)
                if loser is None or (again := await taken(ledger, loser)) is None:
                    return None
                if await self.customers.replace_customer(again, expected_version=loser["version"]):
                    marked[loser_id] = again
                    return None
                return CONFLICT

            try:
                await retry_on_conflict(mark, what=f"customer {doc['_id']} during a merge")
            except ConcurrentUpdateError as exc:
                failed[ledger["_id"]] = exc
        return [
            failed.get(ledger["_id"]) or [marked[i] for i in ledger["merged_ids"] if i in marked]
            for ledger, _ in started
        ]

    async def _repoint(self, tenant: str, from_ids: list[str], to_id: str) -> None:
        await self.move_records(tenant, from_ids, to_id)
        await self.cases.repoint(tenant, from_ids, to_id)

    async def _move_merged(
        self,
        tenant: str,
        moves: Mapping[str, str],
        presented: Sequence[tuple[list[IdentityKey], list[str]]],
    ) -> tuple[dict[str, Tally], dict[str, list[CaseDoc]]]:
        """Give the merged-away customers' records to their survivors: per collection one
        read of the merged customers' records and one bulk write moving them by `_id`.

        The reads come after the losers were marked, so they hold every record appended to
        a loser by a writer whose profile write came before the mark; a writer after it
        moves its own (`_moved`). The same reads recount the survivors (the log as it is
        after the move) and give their recent cases, newest first.

        Returns:
            Survivor id → its tally, and → its recent cases.
        """
        if not moves:
            return {}, {}
        survivors = sorted(set(moves.values()))
        involved = [*moves, *survivors]

        async def move_log() -> dict[str, Tally]:
            entries = await self.interactions.of_customers(
                tenant, involved, ("channel", "projected", "event_id", "occurred_at")
            )
            log_moves: dict[str, list[str]] = {}
            by_survivor: dict[str, list[Document]] = {s: [] for s in survivors}
            for entry in entries:
                owner = moves.get(entry["customer_id"], entry["customer_id"])
                if entry["customer_id"] in moves:
                    log_moves.setdefault(owner, []).append(entry["_id"])
                by_survivor[owner].append(entry)
            await self.interactions.move_many(tenant, log_moves)
            return {s: tally_of(of) for s, of in by_survivor.items()}

        async def move_cases() -> dict[str, list[CaseDoc]]:
            case_moves: dict[str, list[str]] = {}
            recent: dict[str, list[CaseDoc]] = {s: [] for s in survivors}
            for case in await self.cases.cases_of(tenant, involved):
                owner = moves.get(case["customer_id"], case["customer_id"])
                if case["customer_id"] in moves:
                    case_moves.setdefault(owner, []).append(case["_id"])
                    case = {**case, "customer_id": owner}  # noqa: PLW2901 - as it is after the move
                recent[owner].append(case)
            await self.cases.move_many(tenant, case_moves)
            for cases in recent.values():
                cases.sort(key=lambda c: (aware(c["updated_at"]), c["_id"]), reverse=True)
                del cases[RECENT_CASES:]
            return recent

        # Three collections, nothing in common: sent together, each its read then its move.
        # Every step has ended before one that failed is reported (none is left running).
        moved, tallies, recent = await asyncio.gather(
            self.identities.merge_identities(tenant, moves, presented),
            move_log(),
            move_cases(),
            return_exceptions=True,
        )
        if isinstance(moved, BaseException):
            raise moved
        if isinstance(tallies, BaseException):
            raise tallies
        if isinstance(recent, BaseException):
            raise recent
        return tallies, recent

    async def complete_pending_merges(self) -> int:
        """Finish merges a crash cut off half-way (run at start-up); returns how many."""
        done = 0
        for entry in await self.identities.merges_with_status("pending"):
            try:
                await self.finish_merge(entry)
            except ConcurrentUpdateError as exc:
                log.warning("pending merge %s not finished: %s", entry["_id"], exc)
                continue
            done += 1
        return done
