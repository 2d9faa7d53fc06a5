"""The identity slice's documents: identities, the merge ledger, merge suggestions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict

from services.timeline.identity.policy import IdentityKey
from services.timeline.store.documents import IdentifierDoc

MergeStatus = Literal["pending", "done", "splitting", "split"]


class ActorDoc(TypedDict):
    """Who decided: `type` is "system", "agent" or "bot"."""

    type: str
    id: str
    display_name: str


class LinkedIdentifier(TypedDict):
    """An identifier of the merging event and the customer that held it before."""

    kind: str
    value: str
    customer_id: str


class Evidence(TypedDict):
    event_id: str
    identifiers: list[LinkedIdentifier]


class Before(TypedDict):
    """What a customer was just before the merge, so that a split puts it back exactly."""

    customer_id: str
    display_name: str
    name_verified: NotRequired[bool]
    identifiers: list[IdentifierDoc]
    merged_ids: list[str]
    interaction_count: int


class SplitRecord(TypedDict):
    at: datetime
    actor: ActorDoc
    reason: str


class MergeEntry(TypedDict):
    """One merge in the `merges` collection (`identity.store`), written ahead of the merge."""

    _id: str
    tenant: str
    survivor_id: str
    merged_ids: list[str]
    rule: str
    actor: ActorDoc
    reason: str
    at: datetime
    status: MergeStatus
    evidence: Evidence
    before: list[Before]
    split: NotRequired[SplitRecord]


class IdentityDoc(TypedDict):
    """An identifier in the `identities` collection (reads may leave out tenant and date)."""

    _id: object
    kind: str
    value: str
    # The customer the identifier belongs to now.
    customer_id: str
    # Every customer that presented it (merge protection counts them); older documents only
    # know `customer_id`.
    customer_ids: NotRequired[list[str]]
    first_event_id: NotRequired[str]
    tenant: NotRequired[str]
    created_at: NotRequired[datetime]


class SuggestionDoc(TypedDict):
    """A merge suggestion in `merge_suggestions`: soft signals two customers share."""

    _id: str
    tenant: str
    customer_ids: list[str]
    signals: list[str]
    status: Literal["open", "accepted", "dismissed"]
    created_at: datetime
    settled_by_event_id: NotRequired[str]
    settled_by: NotRequired[ActorDoc]


@dataclass(frozen=True, slots=True)
class Claim:
    """Identifiers a customer claims with an event; the first writer of each one wins."""

    tenant: str
    customer_id: str
    keys: Sequence[IdentityKey]
    event_id: str
    at: datetime

    def document(self, key: IdentityKey) -> dict[str, Any]:
        """The `identities` document that claims `key` (its `_id` is the store's)."""
        kind, value = key
        return {
            "tenant": self.tenant,
            "kind": kind,
            "value": value,
            "customer_id": self.customer_id,
            # Every customer that presented the identifier; merge protection counts them.
            "customer_ids": [self.customer_id],
            "first_event_id": self.event_id,
            "created_at": self.at,
        }
