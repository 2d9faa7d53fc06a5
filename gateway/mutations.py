"""Mutations: every agent action, published as an event and answered once it is stored.

Each mutation checks its input (``BAD_USER_INPUT``), that the caller may act
(``FORBIDDEN``) and that the customer exists (``NOT_FOUND``), publishes the action on the
one write path and waits, bounded, for the timeline to store it (see ``gateway.writes``).
``eventId`` is an optional idempotency key: a retried mutation with the same key is one
event.

The mutations differ only in their own arguments and the action those become, so they are
one table (``ACTIONS``) and one resolver factory (``_resolver``): a row names the field, the
dataclass of its arguments (in schema order) and how they become an ``AgentAction``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar, get_type_hints

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


class Target(enum.Enum):
    """Whom an action is about: the arguments that name it, besides its own."""

    CASE = "customerId, then caseId (default: the timeline's choice, the open case)"
    CUSTOMER = "customerId only"
    CUSTOMERS = "customerIds among the action's own arguments; the event lands on the first"


_Arguments = TypeVar("_Arguments")


@dataclass(frozen=True)
class AgentActionMutation(Generic[_Arguments]):
    """One row of the table: a mutation field and the agent action it publishes.

    Attributes:
        name: The field's Python name (``add_note`` is ``addNote``).
        description: The field's description.
        arguments: Dataclass of the action's own arguments, in schema order.
        plan: Validates the arguments into the action (``gateway.agent_actions``).
        target: Which of ``customerId``/``caseId``/``customerIds`` the mutation takes.
    """

    name: str
    description: str
    arguments: type[_Arguments]
    plan: Callable[[_Arguments], PlannedAction]
    target: Target = Target.CASE


@dataclass(frozen=True)
class NoteArguments:
    text: str


@dataclass(frozen=True)
class HandoffArguments:
    summary: str
    to_channel: Channel | None = None
    to_queue: str | None = None
    to_agent: str | None = None
    open_questions: list[str] | None = None


@dataclass(frozen=True)
class EscalateArguments:
    level: int
    reason: str


@dataclass(frozen=True)
class ProgressUpdateArguments:
    message: str


@dataclass(frozen=True)
class TransferArguments:
    to_department: str
    reason: str


@dataclass(frozen=True)
class ResolveArguments:
    summary: str


@dataclass(frozen=True)
class TagArguments:
    tags: list[str]


@dataclass(frozen=True)
class CsatArguments:
    score: int
    comment: str | None = None


@dataclass(frozen=True)
class CancellationRequestArguments:
    reason: CancellationReason
    reason_detail: str | None = None


@dataclass(frozen=True)
class CancellationOutcomeArguments:
    outcome: CancellationOutcome
    note: str | None = None


@dataclass(frozen=True)
class FollowUpArguments:
    task_id: strawberry.ID
    note: str | None = None


@dataclass(frozen=True)
class MergeArguments:
    customer_ids: list[strawberry.ID]
    reason: str
    suggestion_id: strawberry.ID | None = None


@dataclass(frozen=True)
class SplitArguments:
    merge_id: strawberry.ID
    reason: str


@dataclass(frozen=True)
class DismissSuggestionArguments:
    suggestion_id: strawberry.ID
    reason: str


ACTIONS: tuple[AgentActionMutation[Any], ...] = (
    AgentActionMutation(
        "add_note",
        "An internal note on the customer (and case).",
        NoteArguments,
        lambda given: agent_actions.note(given.text),
    ),
    AgentActionMutation(
        "handoff",
        "Hand the customer to a channel, queue or agent, with context to go on.",
        HandoffArguments,
        lambda given: agent_actions.handoff(
            to_channel=given.to_channel,
            to_queue=given.to_queue,
            to_agent=given.to_agent,
            summary=given.summary,
            open_questions=given.open_questions or [],
        ),
    ),
    AgentActionMutation(
        "escalate",
        "Raise the case's escalation level (1-5) with a reason.",
        EscalateArguments,
        lambda given: agent_actions.escalation(level=given.level, reason=given.reason),
    ),
    AgentActionMutation(
        "send_progress_update",
        "A progress update sent to the customer (OUTBOUND).",
        ProgressUpdateArguments,
        lambda given: agent_actions.progress_update(given.message),
    ),
    AgentActionMutation(
        "transfer",
        "Transfer to another department; opens a follow-up task for the caller.",
        TransferArguments,
        lambda given: agent_actions.transfer(
            to_department=given.to_department, reason=given.reason
        ),
    ),
    AgentActionMutation(
        "resolve_case",
        "Resolve the case (the customer's open case by default).",
        ResolveArguments,
        lambda given: agent_actions.resolution(given.summary),
    ),
    AgentActionMutation(
        "tag_case",
        "Tag the case (1-20 tags of up to 64 characters).",
        TagArguments,
        lambda given: agent_actions.tags(given.tags),
    ),
    AgentActionMutation(
        "record_csat",
        "Record the customer's CSAT answer (score 1-5).",
        CsatArguments,
        lambda given: agent_actions.csat(score=given.score, comment=given.comment),
    ),
    AgentActionMutation(
        "request_cancellation",
        "The customer asked to cancel; OTHER needs `reasonDetail` in words.",
        CancellationRequestArguments,
        lambda given: agent_actions.cancellation_request(
            reason=given.reason, detail=given.reason_detail
        ),
    ),
    AgentActionMutation(
        "record_cancellation_outcome",
        "What came of a cancellation request.",
        CancellationOutcomeArguments,
        lambda given: agent_actions.cancellation_outcome(outcome=given.outcome, note=given.note),
    ),
    AgentActionMutation(
        "complete_follow_up",
        "A follow-up task is done: the customer has heard back.",
        FollowUpArguments,
        lambda given: agent_actions.follow_up_completed(task_id=given.task_id, note=given.note),
    ),
    AgentActionMutation(
        "merge_customers",
        "Merge customers by hand (2-10 ids; the one seen first survives). Pass "
        "`suggestionId` to accept a merge suggestion.",
        MergeArguments,
        lambda given: agent_actions.merge_customers(
            customer_ids=given.customer_ids,
            reason=given.reason,
            suggestion_id=given.suggestion_id,
        ),
        Target.CUSTOMERS,
    ),
    AgentActionMutation(
        "split_merge",
        "Undo a merge (ids in `Customer.mergeHistory`).",
        SplitArguments,
        lambda given: agent_actions.split_merge(merge_id=given.merge_id, reason=given.reason),
        Target.CUSTOMER,
    ),
    AgentActionMutation(
        "dismiss_merge_suggestion",
        "These customers are different people: drop the suggestion.",
        DismissSuggestionArguments,
        lambda given: agent_actions.dismiss_merge_suggestion(
            suggestion_id=given.suggestion_id, reason=given.reason
        ),
        Target.CUSTOMER,
    ),
)


async def _act(
    info: Info, mutation: AgentActionMutation[Any], arguments: dict[str, Any]
) -> ActionResult:
    """Check, plan, publish and wait for one agent action (the body of every mutation)."""
    context = info.context
    require_acting_role(context.principal)
    event_id = arguments.pop("event_id", None)
    case_id = arguments.pop("case_id", None)
    customer_id = arguments.pop("customer_id", None)
    if mutation.target is Target.CUSTOMERS:
        arguments["customer_ids"] = [
            check_id(f"customerIds[{i}]", id_) for i, id_ in enumerate(arguments["customer_ids"])
        ]
    action = mutation.plan(mutation.arguments(**arguments))
    key = agent_actions.event_id_or_new(event_id)
    if mutation.target is Target.CUSTOMERS:
        live = await _one_of_several(info, arguments["customer_ids"])
        checked_case = None
    else:
        checked_case = None if case_id is None else check_id("caseId", case_id)
        live = await live_customer_id(context, check_id("customerId", customer_id))
    outcome = await perform(context, action, customer_id=live, case_id=checked_case, event_id=key)
    return ActionResult.from_outcome(outcome)


async def _one_of_several(info: Info, customer_ids: list[str]) -> str:
    """The live customer the event of a multi-customer action lands on: the first named.

    Raises:
        GatewayError: ``NOT_FOUND`` for an unknown id; ``BAD_USER_INPUT`` when the ids are
            already one customer.
    """
    # One GetCustomers call for all of them (the loader batches concurrent loads).
    live = await asyncio.gather(
        *(live_customer_id(info.context, id_) for id_ in dict.fromkeys(customer_ids))
    )
    if len(set(live)) < 2:
        raise bad_user_input("`customerIds` already are one customer.")
    return live[0]


def _signature(mutation: AgentActionMutation[Any]) -> inspect.Signature:
    """The resolver signature Strawberry reads the field's arguments from."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter("info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Info)
    ]
    if mutation.target is not Target.CUSTOMERS:
        parameters.append(inspect.Parameter("customer_id", keyword, annotation=strawberry.ID))
    hints = get_type_hints(mutation.arguments)
    for field in dataclasses.fields(mutation.arguments):
        default = inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        parameters.append(
            inspect.Parameter(field.name, keyword, annotation=hints[field.name], default=default)
        )
    if mutation.target is Target.CASE:
        parameters.append(
            inspect.Parameter("case_id", keyword, annotation=strawberry.ID | None, default=None)
        )
    parameters.append(inspect.Parameter("event_id", keyword, annotation=EventId, default=None))
    return inspect.Signature(parameters, return_annotation=ActionResult)


def _resolver(mutation: AgentActionMutation[Any]) -> Callable[..., Any]:
    """The resolver of one row: its arguments as the signature says, the body ``_act``."""

    async def resolve(info: Info, **arguments: Any) -> ActionResult:
        return await _act(info, mutation, arguments)

    resolve.__name__ = resolve.__qualname__ = mutation.name
    # Strawberry reads the field's arguments from the signature (inspect honours this).
    resolve.__signature__ = _signature(mutation)  # type: ignore[attr-defined]
    return resolve


Mutation = strawberry.type(
    type(
        "Mutation",
        (),
        {
            mutation.name: strawberry.mutation(
                resolver=_resolver(mutation), description=mutation.description
            )
            for mutation in ACTIONS
        },
    ),
    description="Agent actions; each becomes one event on the customer's timeline.",
)
