"""What a batch read up front for all its events, and which of it its own writes made stale."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from services.timeline.identity.policy import IdentityKey
from services.timeline.identity.resolver import Lookup, Resolution
from services.timeline.profiles.model import CustomerDoc


@dataclass(slots=True)
class ReadAhead:
    """The identities of every key a batch presents, and their live customers, per tenant.

    Read once before the batch's first event is resolved (instead of once per event), it
    stands for each event's own read as long as nothing the batch wrote since touched that
    event's keys: an event that created a customer, claimed a new identifier, merged, or met
    a protected identifier leaves its keys *touched*, and a later event presenting any of them
    reads afresh. The batch's first flush drops the whole of it (a merge moves records).
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
