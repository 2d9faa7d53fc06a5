"""Mutations: every agent action, published as an event and answered once it is stored.

Each mutation checks its input (``BAD_USER_INPUT``), that the caller may act
(``FORBIDDEN``) and that the customer exists (``NOT_FOUND``), publishes the action on the
one write path and waits, bounded, for the timeline to store it (see ``gateway.writes``).
``eventId`` is an optional idempotency key: a retried mutation with the same key is one
event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

import strawberry

from gateway import agent_actions
from gateway.agent_actions import PlannedAction
from gateway.context import Info
from gateway.enums import CancellationOutcome, CancellationReason, Channel, WriteStatus
from gateway.errors import bad_user_input
from gateway.nodes import Case, Customer, load_case, load_customer
from gateway.scalars import check_id
from gateway.writes import WriteOutcome, live_customer_id, perform, require_acting_role

EventId = Annotated[
    strawberry.ID | None,
    strawberry.argument(
        description="Idempotency key (UUID or ULID); a retry with the same key is the same event."
    ),
]


async def _result_customer(root: ActionResult, info: Info) -> Customer | None:
    return None if root.customer_id is None else await load_customer(info, root.customer_id)


async def _result_case(root: ActionResult, info: Info) -> Case | None:
    if root.status is not WriteStatus.STORED:
        return None
    case_id = root.case_id
    if case_id is None and root.customer_id is not None:
        customer = await info.context.loaders.customers.load(root.customer_id)
        case_id = (customer.open_case_id or None) if customer is not None else None
    return None if case_id is None else await load_case(info, case_id)


@strawberry.type(description="The answer to an agent action.")
class ActionResult:
    event_id: strawberry.ID = strawberry.field(description="The event the action became.")
    status: WriteStatus
    customer_id: strawberry.Private[str | None]
    case_id: strawberry.Private[str | None]
    customer: Customer | None = strawberry.field(
        resolver=_result_customer,
        description="The customer as stored after the action; null unless STORED.",
    )
    case: Case | None = strawberry.field(
        resolver=_result_case,
        description="The action's case after it; null unless STORED and the case is known.",
    )

    @classmethod
    def from_outcome(cls, outcome: WriteOutcome) -> ActionResult:
        """Convert a write's outcome."""
        return cls(
            event_id=strawberry.ID(outcome.event_id),
            status=outcome.status,
            customer_id=outcome.customer_id,
            case_id=outcome.case_id,
        )


async def _act(
    info: Info,
    plan: Callable[[], PlannedAction],
    *,
    customer_id: strawberry.ID,
    case_id: strawberry.ID | None,
    event_id: strawberry.ID | None,
) -> ActionResult:
    context = info.context
    require_acting_role(context.principal)
    action = plan()
    key = agent_actions.event_id_or_new(event_id)
    checked_case = None if case_id is None else check_id("caseId", case_id)
    live = await live_customer_id(context, check_id("customerId", customer_id))
    outcome = await perform(context, action, customer_id=live, case_id=checked_case, event_id=key)
    return ActionResult.from_outcome(outcome)


async def _add_note(
    info: Info,
    *,
    customer_id: strawberry.ID,
    text: str,
    case_id: strawberry.ID | None = None,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.note(text),
        customer_id=customer_id,
        case_id=case_id,
        event_id=event_id,
    )


async def _handoff(
    info: Info,
    *,
    customer_id: strawberry.ID,
    summary: str,
    case_id: strawberry.ID | None = None,
    to_channel: Channel | None = None,
    to_queue: str | None = None,
    to_agent: str | None = None,
    open_questions: list[str] | None = None,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.handoff(
            to_channel=to_channel,
            to_queue=to_queue,
            to_agent=to_agent,
            summary=summary,
            open_questions=open_questions or [],
        ),
        customer_id=customer_id,
        case_id=case_id,
        event_id=event_id,
    )


async def _escalate(
    info: Info,
    *,
    customer_id: strawberry.ID,
    level: int,
    reason: str,
    case_id: strawberry.ID | None = None,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.escalation(level=level, reason=reason),
        customer_id=customer_id,
        case_id=case_id,
        event_id=event_id,
    )


async def _send_progress_update(
    info: Info,
    *,
    customer_id: strawberry.ID,
    message: str,
    case_id: strawberry.ID | None = None,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.progress_update(message),
        customer_id=customer_id,
        case_id=case_id,
        event_id=event_id,
    )


async def _transfer(
    info: Info,
    *,
    customer_id: strawberry.ID,
    to_department: str,
    reason: str,
    case_id: strawberry.ID | None = None,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.transfer(to_department=to_department, reason=reason),
        customer_id=customer_id,
        case_id=case_id,
        event_id=event_id,
    )


async def _resolve_case(
    info: Info,
    *,
    customer_id: strawberry.ID,
    summary: str,
    case_id: strawberry.ID | None = None,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.resolution(summary),
        customer_id=customer_id,
        case_id=case_id,
        event_id=event_id,
    )


async def _tag_case(
    info: Info,
    *,
    customer_id: strawberry.ID,
    tags: list[str],
    case_id: strawberry.ID | None = None,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.tags(tags),
        customer_id=customer_id,
        case_id=case_id,
        event_id=event_id,
    )


async def _record_csat(
    info: Info,
    *,
    customer_id: strawberry.ID,
    score: int,
    comment: str | None = None,
    case_id: strawberry.ID | None = None,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.csat(score=score, comment=comment),
        customer_id=customer_id,
        case_id=case_id,
        event_id=event_id,
    )


async def _request_cancellation(
    info: Info,
    *,
    customer_id: strawberry.ID,
    reason: CancellationReason,
    reason_detail: str | None = None,
    case_id: strawberry.ID | None = None,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.cancellation_request(reason=reason, detail=reason_detail),
        customer_id=customer_id,
        case_id=case_id,
        event_id=event_id,
    )


async def _record_cancellation_outcome(
    info: Info,
    *,
    customer_id: strawberry.ID,
    outcome: CancellationOutcome,
    note: str | None = None,
    case_id: strawberry.ID | None = None,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.cancellation_outcome(outcome=outcome, note=note),
        customer_id=customer_id,
        case_id=case_id,
        event_id=event_id,
    )


async def _complete_follow_up(
    info: Info,
    *,
    customer_id: strawberry.ID,
    task_id: strawberry.ID,
    note: str | None = None,
    case_id: strawberry.ID | None = None,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.follow_up_completed(task_id=task_id, note=note),
        customer_id=customer_id,
        case_id=case_id,
        event_id=event_id,
    )


async def _merge_customers(
    info: Info,
    *,
    customer_ids: list[strawberry.ID],
    reason: str,
    suggestion_id: strawberry.ID | None = None,
    event_id: EventId = None,
) -> ActionResult:
    context = info.context
    require_acting_role(context.principal)
    checked = [check_id(f"customerIds[{i}]", id_) for i, id_ in enumerate(customer_ids)]
    action = agent_actions.merge_customers(
        customer_ids=checked, reason=reason, suggestion_id=suggestion_id
    )
    key = agent_actions.event_id_or_new(event_id)
    # One GetCustomers call for all of them (the loader batches concurrent loads).
    live = await asyncio.gather(*(live_customer_id(context, id_) for id_ in dict.fromkeys(checked)))
    if len(set(live)) < 2:
        raise bad_user_input("`customerIds` already are one customer.")
    # The event lands on the first customer named; the timeline picks the survivor.
    outcome = await perform(context, action, customer_id=live[0], case_id=None, event_id=key)
    return ActionResult.from_outcome(outcome)


async def _split_merge(
    info: Info,
    *,
    customer_id: strawberry.ID,
    merge_id: strawberry.ID,
    reason: str,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.split_merge(merge_id=merge_id, reason=reason),
        customer_id=customer_id,
        case_id=None,
        event_id=event_id,
    )


async def _dismiss_merge_suggestion(
    info: Info,
    *,
    customer_id: strawberry.ID,
    suggestion_id: strawberry.ID,
    reason: str,
    event_id: EventId = None,
) -> ActionResult:
    return await _act(
        info,
        lambda: agent_actions.dismiss_merge_suggestion(suggestion_id=suggestion_id, reason=reason),
        customer_id=customer_id,
        case_id=None,
        event_id=event_id,
    )


@strawberry.type(description="Agent actions; each becomes one event on the customer's timeline.")
class Mutation:
    add_note: ActionResult = strawberry.mutation(
        resolver=_add_note, description="An internal note on the customer (and case)."
    )
    handoff: ActionResult = strawberry.mutation(
        resolver=_handoff,
        description="Hand the customer to a channel, queue or agent, with context to go on.",
    )
    escalate: ActionResult = strawberry.mutation(
        resolver=_escalate, description="Raise the case's escalation level (1-5) with a reason."
    )
    send_progress_update: ActionResult = strawberry.mutation(
        resolver=_send_progress_update,
        description="A progress update sent to the customer (OUTBOUND).",
    )
    transfer: ActionResult = strawberry.mutation(
        resolver=_transfer,
        description="Transfer to another department; opens a follow-up task for the caller.",
    )
    resolve_case: ActionResult = strawberry.mutation(
        resolver=_resolve_case,
        description="Resolve the case (the customer's open case by default).",
    )
    tag_case: ActionResult = strawberry.mutation(
        resolver=_tag_case, description="Tag the case (1-20 tags of up to 64 characters)."
    )
    record_csat: ActionResult = strawberry.mutation(
        resolver=_record_csat, description="Record the customer's CSAT answer (score 1-5)."
    )
    request_cancellation: ActionResult = strawberry.mutation(
        resolver=_request_cancellation,
        description="The customer asked to cancel; OTHER needs `reasonDetail` in words.",
    )
    record_cancellation_outcome: ActionResult = strawberry.mutation(
        resolver=_record_cancellation_outcome, description="What came of a cancellation request."
    )
    complete_follow_up: ActionResult = strawberry.mutation(
        resolver=_complete_follow_up,
        description="A follow-up task is done: the customer has heard back.",
    )
    merge_customers: ActionResult = strawberry.mutation(
        resolver=_merge_customers,
        description=(
            "Merge customers by hand (2-10 ids; the one seen first survives). Pass "
            "`suggestionId` to accept a merge suggestion."
        ),
    )
    split_merge: ActionResult = strawberry.mutation(
        resolver=_split_merge, description="Undo a merge (ids in `Customer.mergeHistory`)."
    )
    dismiss_merge_suggestion: ActionResult = strawberry.mutation(
        resolver=_dismiss_merge_suggestion,
        description="These customers are different people: drop the suggestion.",
    )
