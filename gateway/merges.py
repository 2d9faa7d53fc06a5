"""GraphQL types of the identity ledger: merges with their evidence, splits, and suggestions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.context import Info
from gateway.details import optional
from gateway.errors import bad_user_input
from gateway.types import Actor, Identifier, actor_from_proto

if TYPE_CHECKING:
    from gateway.types import Customer
from tsunagu.v1 import timeline_pb2

MAX_SUGGESTIONS = 200


def _instant(timestamp: Timestamp, present: bool) -> datetime | None:
    return timestamp.ToDatetime(tzinfo=UTC) if present else None


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
            actor=actor_from_proto(record.actor) if record.HasField("actor") else None,
            at=_instant(record.at, record.HasField("at")),
            status=record.status,
            evidence_event_id=strawberry.ID(record.evidence_event_id)
            if record.evidence_event_id
            else None,
            evidence=[
                LinkedIdentifier(
                    identifier=Identifier.from_proto(linked.identifier),
                    customer_id=strawberry.ID(linked.customer_id),
                )
                for linked in record.evidence
            ],
            reason=optional(record.reason),
            split_at=_instant(record.split_at, record.HasField("split_at")),
            split_by=actor_from_proto(record.split_by) if record.HasField("split_by") else None,
            split_reason=optional(record.split_reason),
        )


async def _resolve_suggested_customers(
    root: MergeSuggestion, info: Info
) -> list[Annotated[Customer, strawberry.lazy("gateway.types")]]:
    from gateway.types import Customer

    loaded = await info.context.loaders.customers.load_many([str(id_) for id_ in root.customer_ids])
    return [Customer.from_proto(found) for found in loaded if found is not None]


@strawberry.type(
    description="Customers that look alike (soft signals); an agent accepts or dismisses."
)
class MergeSuggestion:
    id: strawberry.ID = strawberry.field(
        description="Pass to `mergeCustomers(suggestionId:)` or `dismissMergeSuggestion`."
    )
    customer_ids: list[strawberry.ID]
    signals: list[str] = strawberry.field(description='Shared signals: "same_name", ...')
    created_at: datetime | None
    status: str = strawberry.field(description='"open", "accepted" or "dismissed".')
    customers: list[Annotated[Customer, strawberry.lazy("gateway.types")]] = strawberry.field(
        resolver=_resolve_suggested_customers,
        description="The customers (batched with every other customer of the query).",
    )

    @classmethod
    def from_proto(cls, suggestion: timeline_pb2.MergeSuggestion) -> MergeSuggestion:
        """Convert a suggestion."""
        return cls(
            id=strawberry.ID(suggestion.id),
            customer_ids=[strawberry.ID(id_) for id_ in suggestion.customer_ids],
            signals=list(suggestion.signals),
            created_at=_instant(suggestion.created_at, suggestion.HasField("created_at")),
            status=suggestion.status,
        )


async def list_suggestions(
    info: Info, *, customer_id: str | None, first: int
) -> list[MergeSuggestion]:
    """Open merge suggestions of one customer or of the tenant.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` for ``first`` outside 1..200.
    """
    if not 1 <= first <= MAX_SUGGESTIONS:
        raise bad_user_input(f"`first` must be between 1 and {MAX_SUGGESTIONS}, got {first}.")
    context = info.context
    found = await context.timeline.list_merge_suggestions(
        context.principal.tenant, customer_id=customer_id, limit=first
    )
    return [MergeSuggestion.from_proto(suggestion) for suggestion in found]


async def resolve_merge_suggestions(info: Info, first: int = 50) -> list[MergeSuggestion]:
    """Every open merge suggestion of the tenant (root field)."""
    return await list_suggestions(info, customer_id=None, first=first)
