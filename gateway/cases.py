"""Cases: a customer's problem across channels, with SLA clocks, follow-ups and filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Self

import strawberry

from gateway.context import Info
from gateway.details import CancellationRequestAction, CsatResponse, HandoffAction
from gateway.enums import (
    CANCELLATION_OUTCOMES,
    CASE_STATUSES,
    CHANNELS,
    CancellationOutcome,
    CaseStatus,
    Channel,
)
from gateway.from_proto import read_field
from gateway.paging import check_first
from gateway.scalars import check_id, instant, optional, optional_id, seconds
from tsunagu.v1 import timeline_pb2

# ListCases accepts up to 200; a GraphQL page stays smaller so one query stays cheap.
MAX_CASES_PAGE = 100


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
        due_at = instant(task, "due_at")
        return cls(
            id=strawberry.ID(task.id),
            case_id=strawberry.ID(task.case_id),
            agent_id=optional(task.agent_id),
            reason=optional(task.reason),
            created_by_event_id=optional_id(task.created_by_event_id),
            created_at=instant(task, "created_at"),
            due_at=due_at,
            done=task.done,
            done_at=instant(task, "done_at"),
            done_by_event_id=optional_id(task.done_by_event_id),
            overdue=not task.done and due_at is not None and due_at < now,
        )


@strawberry.type
class CaseFields:
    """What a case is, without its links to other nodes (see ``gateway.nodes``)."""

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

    @classmethod
    def from_proto(cls, case: timeline_pb2.Case, *, now: datetime | None = None) -> Self:
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
            opened_at=instant(case, "opened_at"),
            updated_at=instant(case, "updated_at"),
            first_response_at=instant(case, "first_response_at"),
            resolved_at=instant(case, "resolved_at"),
            first_response_time_seconds=seconds(case, "first_response_time"),
            time_to_resolution_seconds=seconds(case, "time_to_resolution"),
            reopen_count=case.reopen_count,
            tags=list(case.tags),
            csat=read_field(case, "csat", CsatResponse),
            cancellation_request=read_field(
                case, "cancellation_request", CancellationRequestAction
            ),
            cancellation_outcome=CANCELLATION_OUTCOMES.from_proto(case.cancellation_outcome),
            follow_ups=[FollowUpTask.from_proto(task, now=now) for task in case.follow_ups],
            last_handoff=read_field(case, "last_handoff", HandoffAction),
            interaction_count=case.interaction_count,
            resolution_summary=optional(case.resolution_summary),
        )


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


async def read_page(
    info: Info, case_filter: timeline_pb2.CaseFilter, *, first: int, after: str | None
) -> timeline_pb2.ListCasesResponse:
    """One page of cases; the listed cases are primed into the case loader.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` for ``first`` outside 1..100.
    """
    check_first(first, MAX_CASES_PAGE)
    context = info.context
    response = await context.timeline.list_cases(
        context.principal.tenant, case_filter, page_size=first, after=after
    )
    for case in response.cases:
        # A customer's openCase among them then needs no second round trip.
        context.loaders.cases.prime(case.id, case)
    return response
