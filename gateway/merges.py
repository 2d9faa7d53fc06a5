"""The identity ledger as GraphQL sees it: merges with their evidence, splits, suggestions."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from gateway.context import Info
from gateway.from_proto import read
from gateway.identifiers import Actor, Identifier
from gateway.paging import check_first
from gateway.scalars import instant, optional, optional_id
from tsunagu.v1 import timeline_pb2

MAX_SUGGESTIONS = 200


@strawberry.type(
    description="Evidence of a merge: an identifier, and the customer holding it then."
)
class LinkedIdentifier:
    identifier: Identifier | None
    customer_id: strawberry.ID = strawberry.field(
        description="The customer that held the identifier when the merge was decided."
    )


@strawberry.type(description="One entry of the identity ledger: a merge, and its split if undone.")
class MergeRecord:
    id: strawberry.ID = strawberry.field(description="Pass to `splitMerge` to undo this merge.")
    survivor_id: strawberry.ID
    merged_ids: list[strawberry.ID]
    rule: str = strawberry.field(
        description='"shared_deterministic_identifier" (automatic) or "manual".'
    )
    actor: Actor | None
    at: datetime | None
    status: str = strawberry.field(description='"pending", "done" or "split".')
    evidence_event_id: strawberry.ID | None = strawberry.field(
        description="The event that linked the customers."
    )
    evidence: list[LinkedIdentifier]
    reason: str | None
    split_at: datetime | None
    split_by: Actor | None
    split_reason: str | None

    @classmethod
    def from_proto(cls, record: timeline_pb2.MergeRecord) -> MergeRecord:
        """Convert a ledger entry."""
        return cls(
            id=strawberry.ID(record.id),
            survivor_id=strawberry.ID(record.survivor_id),
            merged_ids=[strawberry.ID(merged) for merged in record.merged_ids],
            rule=record.rule,
            actor=Actor.of(record, "actor"),
            at=instant(record, "at"),
            status=record.status,
            evidence_event_id=optional_id(record.evidence_event_id),
            evidence=[
                LinkedIdentifier(
                    identifier=Identifier.from_proto(linked.identifier),
                    customer_id=strawberry.ID(linked.customer_id),
                )
                for linked in record.evidence
            ],
            reason=optional(record.reason),
            split_at=instant(record, "split_at"),
            split_by=Actor.of(record, "split_by"),
            split_reason=optional(record.split_reason),
        )


@strawberry.type
class MergeSuggestionFields:
    """What a merge suggestion is, without its links to other nodes (see ``gateway.nodes``)."""

    id: strawberry.ID = strawberry.field(
        description="Pass to `mergeCustomers(suggestionId:)` or `dismissMergeSuggestion`."
    )
    customer_ids: list[strawberry.ID]
    signals: list[str] = strawberry.field(description='Shared signals: "same_name", ...')
    created_at: datetime | None
    status: str = strawberry.field(description='"open", "accepted" or "dismissed".')

    @classmethod
    def from_proto(cls, suggestion: timeline_pb2.MergeSuggestion) -> Self:
        """Convert a suggestion (field for field, by ``gateway.from_proto``)."""
        return read(suggestion, cls)


async def read_suggestions(
    info: Info, *, customer_id: str | None, first: int
) -> list[timeline_pb2.MergeSuggestion]:
    """Open merge suggestions of one customer or of the tenant.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` for ``first`` outside 1..200.
    """
    check_first(first, MAX_SUGGESTIONS)
    context = info.context
    return await context.timeline.list_merge_suggestions(
        context.principal.tenant, customer_id=customer_id, limit=first
    )


async def read_merge_history(info: Info, customer_id: str) -> list[MergeRecord]:
    """The ledger entries a customer took part in, oldest first (batched per operation)."""
    records = await info.context.loaders.merge_history.load(customer_id)
    return [MergeRecord.from_proto(record) for record in records]
