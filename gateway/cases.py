"""GraphQL types and root fields of cases: a case spans channels, has SLA clocks and follow-ups."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.context import Info
from gateway.details import (
    CancellationRequestAction,
    CsatResponse,
    HandoffAction,
    cancellation_request_from_proto,
    handoff_from_proto,
    optional,
)
from gateway.enums import (
    CANCELLATION_OUTCOMES,
    CASE_STATUSES,
    CHANNELS,
    CancellationOutcome,
    CaseStatus,
    Channel,
)
from gateway.errors import bad_user_input
from gateway.types import PageInfo, check_id
from tsunagu.v1 import timeline_pb2

if TYPE_CHECKING:
    from gateway.types import Customer, InteractionConnection

# ListCases accepts up to 200; a GraphQL page stays smaller so one query stays cheap.
MAX_CASES_PAGE = 100


def _instant(timestamp: Timestamp, present: bool) -> datetime | None:
    return timestamp.ToDatetime(tzinfo=UTC) if present else None


def _seconds(duration: Duration, present: bool) -> float | None:
    return duration.seconds + duration.nanos / 1e9 if present else None


@strawberry.type(
    description="Created by a transfer: the transferring agent owes the customer news."
)
class FollowUpTask:
    id: strawberry.ID
    case_id: strawberry.ID
    agent_id: str | None = strawberry.field(description="The agent who owes the follow-up.")
    reason: str | None
    created_by_event_id: strawberry.ID | None
    created_at: datetime | None
    due_at: datetime | None
    done: bool
    done_at: datetime | None
    done_by_event_id: strawberry.ID | None
    overdue: bool = strawberry.field(
        description="Not done and past `dueAt`, computed when the query runs."
    )

    @classmethod
    def from_proto(cls, task: timeline_pb2.FollowUpTask, *, now: datetime) -> FollowUpTask:
        """Convert a follow-up task, judging ``overdue`` against ``now``."""
        due_at = _instant(task.due_at, task.HasField("due_at"))
        return cls(
            id=strawberry.ID(task.id),
            case_id=strawberry.ID(task.case_id),
            agent_id=optional(task.agent_id),
            reason=optional(task.reason),
            created_by_event_id=_optional_id(task.created_by_event_id),
            created_at=_instant(task.created_at, task.HasField("created_at")),
            due_at=due_at,
            done=task.done,
            done_at=_instant(task.done_at, task.HasField("done_at")),
            done_by_event_id=_optional_id(task.done_by_event_id),
            overdue=not task.done and due_at is not None and due_at < now,
        )


def _optional_id(value: str) -> strawberry.ID | None:
    return strawberry.ID(value) if value else None


async def _resolve_case_customer(
    root: Case, info: Info
) -> Annotated[Customer, strawberry.lazy("gateway.types")] | None:
    from gateway.types import Customer

    found = await info.context.loaders.customers.load(str(root.customer_id))
    return None if found is None else Customer.from_proto(found)


async def _resolve_case_timeline(
    root: Case, info: Info, first: int = 20, after: str | None = None
) -> Annotated[InteractionConnection, strawberry.lazy("gateway.types")]:
    from gateway.types import read_timeline

    return await read_timeline(
        info, str(root.customer_id), first=first, after=after, case_id=str(root.id)
    )


@strawberry.type(description="A customer's problem, across every channel it went through.")
class Case:
    id: strawberry.ID
    customer_id: strawberry.ID
    status: CaseStatus | None
    owner_agent_id: str | None = strawberry.field(
        description="The agent who owns the case now (last handoff target or first to answer)."
    )
    queue: str | None
    department: str | None
    escalation_level: int
    escalation_reason: str | None
    channels: list[Channel] = strawberry.field(
        description="Channels the case went through, in order of first use."
    )
    last_channel: Channel | None
    opened_at: datetime | None
    updated_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    first_response_time_seconds: float | None = strawberry.field(
        description="SLA clock: seconds from opening to the first agent response; null until then."
    )
    time_to_resolution_seconds: float | None = strawberry.field(
        description="SLA clock: seconds from opening to resolution; null until resolved."
    )
    reopen_count: int
    tags: list[str]
    csat: CsatResponse | None
    cancellation_request: CancellationRequestAction | None
    cancellation_outcome: CancellationOutcome | None
    follow_ups: list[FollowUpTask]
    last_handoff: HandoffAction | None = strawberry.field(
        description="The latest handoff's context for the next agent."
    )
    interaction_count: int
    resolution_summary: str | None

    customer: Annotated[Customer, strawberry.lazy("gateway.types")] | None = strawberry.field(
        resolver=_resolve_case_customer, description="The customer (batched with siblings)."
    )
    timeline: Annotated[InteractionConnection, strawberry.lazy("gateway.types")] = strawberry.field(
        resolver=_resolve_case_timeline,
        description="The case's interactions, newest first (first: 1-100).",
    )

    @classmethod
    def from_proto(cls, case: timeline_pb2.Case, *, now: datetime | None = None) -> Case:
        """Convert a case; follow-ups are judged overdue against ``now`` (default: now)."""
        now = now or datetime.now(UTC)
        channels = (CHANNELS.from_proto(channel) for channel in case.channels)
        return cls(
            id=strawberry.ID(case.id),
            customer_id=strawberry.ID(case.customer_id),
            status=CASE_STATUSES.from_proto(case.status),
            owner_agent_id=optional(case.owner_agent_id),
            queue=optional(case.queue),
            department=optional(case.department),
            escalation_level=case.escalation_level,
            escalation_reason=optional(case.escalation_reason),
            channels=[channel for channel in channels if channel is not None],
            last_channel=CHANNELS.from_proto(case.last_channel),
            opened_at=_instant(case.opened_at, case.HasField("opened_at")),
            updated_at=_instant(case.updated_at, case.HasField("updated_at")),
            first_response_at=_instant(case.first_response_at, case.HasField("first_response_at")),
            resolved_at=_instant(case.resolved_at, case.HasField("resolved_at")),
            first_response_time_seconds=_seconds(
                case.first_response_time, case.HasField("first_response_time")
            ),
            time_to_resolution_seconds=_seconds(
                case.time_to_resolution, case.HasField("time_to_resolution")
            ),
            reopen_count=case.reopen_count,
            tags=list(case.tags),
            csat=CsatResponse(score=case.csat.score, comment=optional(case.csat.comment))
            if case.HasField("csat")
            else None,
            cancellation_request=cancellation_request_from_proto(case.cancellation_request)
            if case.HasField("cancellation_request")
            else None,
            cancellation_outcome=CANCELLATION_OUTCOMES.from_proto(case.cancellation_outcome),
            follow_ups=[FollowUpTask.from_proto(task, now=now) for task in case.follow_ups],
            last_handoff=handoff_from_proto(case.last_handoff)
            if case.HasField("last_handoff")
            else None,
            interaction_count=case.interaction_count,
            resolution_summary=optional(case.resolution_summary),
        )


@strawberry.type
class CaseEdge:
    cursor: str | None = strawberry.field(
        description="Set on the last edge of a page only (the timeline pages by page, not by case)."
    )
    node: Case


@strawberry.type(description="A page of cases, most recently updated first.")
class CaseConnection:
    edges: list[CaseEdge]
    page_info: PageInfo


@strawberry.input(description="Which cases; every given condition must hold.")
class CaseFilter:
    statuses: list[CaseStatus] | None = None
    owner_agent_id: str | None = None
    escalated_only: bool = strawberry.field(
        default=False, description="Only cases escalated at least once and not resolved."
    )
    overdue_follow_ups_only: bool = strawberry.field(
        default=False, description="Only cases with a follow-up not done and past its due time."
    )
    customer_id: strawberry.ID | None = None

    def to_proto(self) -> timeline_pb2.CaseFilter:
        """The timeline's filter; ids are checked first.

        Raises:
            GatewayError: ``BAD_USER_INPUT`` for an empty or oversized id.
        """
        return timeline_pb2.CaseFilter(
            statuses=[CASE_STATUSES.to_proto(status) for status in self.statuses or ()],
            owner_agent_id=check_id("ownerAgentId", self.owner_agent_id)
            if self.owner_agent_id is not None
            else "",
            escalated_only=self.escalated_only,
            overdue_follow_ups_only=self.overdue_follow_ups_only,
            customer_id=check_id("customerId", self.customer_id)
            if self.customer_id is not None
            else "",
        )


async def resolve_case(info: Info, id: strawberry.ID) -> Case | None:
    """One case by id, through the per-request DataLoader."""
    found = await info.context.loaders.cases.load(check_id("id", id))
    return None if found is None else Case.from_proto(found)


async def list_cases(
    info: Info, case_filter: timeline_pb2.CaseFilter, *, first: int, after: str | None
) -> CaseConnection:
    """One page of cases; the listed cases are primed into the case loader.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` for ``first`` outside 1..100.
    """
    if not 1 <= first <= MAX_CASES_PAGE:
        raise bad_user_input(f"`first` must be between 1 and {MAX_CASES_PAGE}, got {first}.")
    context = info.context
    response = await context.timeline.list_cases(
        context.principal.tenant, case_filter, page_size=first, after=after
    )
    now = datetime.now(UTC)
    edges = []
    for case in response.cases:
        # A customer's openCase among them then needs no second round trip.
        context.loaders.cases.prime(case.id, case)
        edges.append(CaseEdge(cursor=None, node=Case.from_proto(case, now=now)))
    end_cursor = response.next_cursor or None
    if edges:
        edges[-1].cursor = end_cursor
    return CaseConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=response.has_more,
            has_previous_page=False,
            start_cursor=None,
            end_cursor=end_cursor,
        ),
    )


async def resolve_cases(
    info: Info,
    filter: CaseFilter | None = None,
    first: int = 20,
    after: str | None = None,
) -> CaseConnection:
    """Cases of the tenant matching ``filter`` (arguments as in the SDL)."""
    case_filter = (filter or CaseFilter()).to_proto()
    return await list_cases(info, case_filter, first=first, after=after)
