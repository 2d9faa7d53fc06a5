"""What a batch read up front for all its events, which of it its own writes made stale, and
which events wait for the merges at the end of the round.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from services.timeline.identity.policy import IdentityKey
from services.timeline.identity.resolver import Lookup, MergePlan, Resolution
from services.timeline.profiles.model import CustomerDoc


@dataclass(slots=True)
class ReadAhead:
    """The identities of every key a batch presents, and their live customers, per tenant.

    Read once before the batch's first event is resolved (instead of once per event), it
    stands for each event's own read as long as nothing the batch wrote since touched that
    event's keys: an event that created a customer, claimed a new identifier, merged, or met
    a protected identifier leaves its keys *touched*, and a later event presenting any of them
    reads afresh. A flush, or a merge, makes stale only the customers it wrote: `forget`
    drops those and touches every key that led to them; the rest of the read still stands.
    Other writers are not seen either way: a lost race is caught by the unique and
    version-checked writes, as it is for a read made just before.
    """

    lookups: dict[str, Lookup] = field(default_factory=dict)
    touched: set[tuple[str, IdentityKey]] = field(default_factory=set)

    def lookup_for(self, tenant: str, keys: Collection[IdentityKey]) -> Lookup | None:
        """The batch's read, if it still holds for an event presenting `keys`."""
        lookup = self.lookups.get(tenant)
        if lookup is None or any((tenant, key) in self.touched for key in keys):
            return None
        return lookup

    def note(self, tenant: str, keys: Collection[IdentityKey], resolution: Resolution) -> None:
        """Mark the event's keys touched unless its resolution only attached to what was read."""
        lookup = self.lookups.get(tenant)
        attached = (
            lookup is not None
            and not (resolution.created or resolution.merged_ids or resolution.merge_needed)
            and not resolution.protected
            and resolution.customer_id in lookup.live
            and all(key in lookup.docs for key in keys)
        )
        if not attached:
            self.touched.update((tenant, key) for key in keys)

    def customers(self, tenant: str) -> dict[str, CustomerDoc]:
        """The tenant's live customers as read (bases for the batch's profile writes)."""
        lookup = self.lookups.get(tenant)
        return lookup.live if lookup is not None else {}

    def hold(self, tenant: str, customer: CustomerDoc) -> None:
        """The batch wrote this customer and knows it as written (a merge's survivor): it is
        the base of the customer's next profile write, as if read. Keys that led to it stay
        touched: events on it still resolve from their own read (or their merge's).
        """
        lookup = self.lookups.get(tenant)
        if lookup is not None:
            lookup.live[customer["_id"]] = customer

    def forget(self, tenant: str, customer_ids: Collection[str]) -> None:
        """The batch wrote these customers (a flush, a merge): later events on them read afresh."""
        lookup = self.lookups.get(tenant)
        if lookup is None or not customer_ids:
            return
        gone = set(customer_ids)
        for key, doc in lookup.docs.items():
            owner = doc["customer_id"]
            if owner in gone or lookup.target.get(owner) in gone:
                self.touched.add((tenant, key))
        for owner in [o for o, live in lookup.target.items() if o in gone or live in gone]:
            del lookup.target[owner]
        for customer_id in gone:
            lookup.live.pop(customer_id, None)


def _customers_of(lookup: Lookup, keys: Collection[IdentityKey]) -> Iterator[str]:
    """The customers the keys lead to in `lookup`: their holders and those holders' survivors."""
    for key in keys:
        doc = lookup.docs.get(key)
        if doc is not None:
            yield doc["customer_id"]
            live = lookup.target.get(doc["customer_id"])
            if live is not None:
                yield live


@dataclass(slots=True)
class Waiting:
    """The events a round of a batch leaves for the next one, and the merges they wait for.

    An event that asks for a merge waits (the merges of a round are done together at its
    end), and so does every later event that might depend on one that waits: one with the
    same event id, one presenting an identifier a waiting event presented, one whose
    identifiers lead to a customer a waiting event involves, one for which the batch's
    read does not hold (it would read for itself, and could find such a customer), and,
    from the first agent action that waits on, every event (an agent's command may move
    anything). Per customer the batch's order is kept that way; events of other customers
    go ahead.
    """

    indices: list[int] = field(default_factory=list)
    # Per tenant, the merges asked for: (index of the event, the merge).
    plans: dict[str, list[tuple[int, MergePlan]]] = field(default_factory=dict)
    keys: set[tuple[str, IdentityKey]] = field(default_factory=set)
    customers: set[tuple[str, str]] = field(default_factory=set)
    events: set[tuple[str, str]] = field(default_factory=set)
    barrier: bool = False

    def must_wait(
        self,
        tenant: str,
        event_id: str,
        keys: Collection[IdentityKey],
        ahead: ReadAhead | None,
        *,
        agent_action: bool,
        own: Lookup | None = None,
    ) -> bool:
        """Whether an event must wait for the events waiting already (none: it never must).

        `own`: a read the event has of its own (its merge's), standing for the batch's.
        """
        if not self.indices:
            return False
        if self.barrier or agent_action or (tenant, event_id) in self.events:
            return True
        if any((tenant, key) in self.keys for key in keys):
            return True
        lookup = own or (ahead.lookup_for(tenant, keys) if ahead is not None else None)
        if lookup is None:
            return True
        return any((tenant, c) in self.customers for c in _customers_of(lookup, keys))

    def add(
        self,
        index: int,
        tenant: str,
        event_id: str,
        keys: Collection[IdentityKey],
        ahead: ReadAhead | None,
        *,
        plan: MergePlan | None = None,
        barrier: bool = False,
    ) -> None:
        """Leave an event for the next round; `plan`: the merge it asks for."""
        self.indices.append(index)
        self.events.add((tenant, event_id))
        self.keys.update((tenant, key) for key in keys)
        lookup = ahead.lookups.get(tenant) if ahead is not None else None
        if lookup is not None:
            self.customers.update((tenant, c) for c in _customers_of(lookup, keys))
        if plan is not None:
            self.customers.update((tenant, d["_id"]) for d in plan.customers)
            self.plans.setdefault(tenant, []).append((index, plan))
        self.barrier = self.barrier or barrier
