"""Merge suggestions from soft signals (same name, same address, an unverified identifier
they share): an agent decides, never us.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Literal

from services.timeline.identity.documents import ActorDoc, SuggestionDoc
from services.timeline.identity.records import IdentityRecords
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.records import CustomerRecords

_SUGGESTION_NAMESPACE = uuid.UUID("a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d")
# Soft signals and the customer field each one compares.
SIGNALS = (("same_name", "name_key"), ("same_address", "address_key"))
# Two customers an event linked only through identifiers no channel verified.
UNVERIFIED_LINK = "unverified_identifier"
# A common name must not fan out into hundreds of suggestions for one customer.
MAX_PER_SIGNAL = 5


def suggestion_id(tenant: str, customer_ids: Sequence[str]) -> str:
    """One suggestion per pair of customers, whatever signals they share (replay-stable)."""
    pair = ",".join(sorted(customer_ids))
    return f"sug_{uuid.uuid5(_SUGGESTION_NAMESPACE, f'{tenant}/{pair}').hex}"


async def suggest_pair(
    identities: IdentityRecords, tenant: str, pair: Sequence[str], signal: str, *, at: datetime
) -> bool:
    """Suggest merging two customers for `signal`; False when the pair had a suggestion
    already (then `signal` is added to it).
    """
    ordered = sorted(pair)
    sid = suggestion_id(tenant, ordered)
    new: SuggestionDoc = {
        "_id": sid,
        "tenant": tenant,
        "customer_ids": ordered,
        "signals": [signal],
        "status": "open",
        "created_at": at,
    }
    if await identities.insert_suggestion(new):
        return True
    await identities.add_suggestion_signal(tenant, sid, signal)
    return False


@dataclass(frozen=True, slots=True)
class MergeSuggestions:
    """Writes and settles merge suggestions."""

    identities: IdentityRecords
    _: KW_ONLY
    customers: CustomerRecords

    async def suggest_for(self, customer: CustomerDoc, *, at: datetime) -> int:
        """Suggest merging `customer` with live customers sharing a soft signal; returns how
        many new suggestions were written. Customers split apart are never suggested again.
        """
        tenant, customer_id = customer["tenant"], customer["_id"]
        apart = set(customer.get("separated_from", []))
        written = 0
        keys = {
            "name_key": customer.get("name_key", ""),
            "address_key": customer.get("address_key", ""),
        }
        for signal, field in SIGNALS:
            value = keys[field]
            if not value:
                continue
            others = await self.customers.sharing(
                tenant, field, value, besides=customer_id, limit=MAX_PER_SIGNAL
            )
            for other in others:
                if other["_id"] in apart or customer_id in other.get("separated_from", []):
                    continue
                pair = [customer_id, other["_id"]]
                written += await suggest_pair(self.identities, tenant, pair, signal, at=at)
        return written

    async def settle(
        self,
        tenant: str,
        suggestion: str,
        *,
        status: Literal["accepted", "dismissed"],
        event_id: str,
        actor: ActorDoc,
    ) -> SuggestionDoc:
        """Mark a suggestion accepted or dismissed (idempotent); returns it."""
        doc = await self.identities.get_suggestion(tenant, suggestion)
        if doc is None:
            raise LookupError(f"no merge suggestion {suggestion!r} in tenant {tenant}")
        if doc["status"] != "open":
            return doc
        settled = doc.copy()
        settled["status"] = status
        settled["settled_by_event_id"] = event_id
        settled["settled_by"] = actor
        await self.identities.replace_open_suggestion(settled)
        return settled

    async def open_for(
        self, tenant: str, customer_ids: Sequence[str], limit: int
    ) -> list[SuggestionDoc]:
        """Open suggestions naming any of `customer_ids` (all of the tenant's when empty)."""
        return await self.identities.open_suggestions(tenant, customer_ids, limit)
