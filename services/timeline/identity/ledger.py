"""The merge ledger's documents: who merged whom, on what evidence, and any split since."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NotRequired, TypedDict

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
    identifiers: list[IdentifierDoc]
    merged_ids: list[str]
    interaction_count: int


class SplitRecord(TypedDict):
    at: datetime
    actor: ActorDoc
    reason: str


# `_id` is not a valid attribute name: the functional form keeps MongoDB's key.
class MergeEntry(TypedDict):
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


"""One merge in the `merges` collection (`identity.store`), written ahead of the merge."""
