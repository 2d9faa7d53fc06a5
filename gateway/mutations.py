"""Mutations: every agent action, published as an event and answered once it is stored.

Each mutation checks its input (``BAD_USER_INPUT``), that the caller may act
(``FORBIDDEN``) and that the customer exists (``NOT_FOUND``), publishes the action on the
one write path and waits, bounded, for the timeline to store it (see ``gateway.writes``).
``eventId`` is an optional idempotency key: a retried mutation with the same key is one
event.

The mutations differ only in their own arguments and the action those become, so they are
one table (``ACTIONS``) and one resolver factory (``_resolver``): a row names the field, its
own arguments (in schema order, with their types) and how they become an ``AgentAction``.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

import strawberry

from gateway import agent_actions, erasure, merges
from gateway.agent_actions import PlannedAction
from gateway.context import Info
from gateway.enums import CancellationOutcome, CancellationReason, Channel, WriteStatus
from gateway.errors import ErrorCode, GatewayError, bad_user_input
from gateway.nodes import Case, Customer, load_case, load_customer
from gateway.scalars import check_id
from gateway.writes import WriteOutcome, live_customer_id, perform

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


@dataclass(frozen=True)
class AgentActionMutation:
    """One row of the table: a mutation field and the agent action it publishes.

    Attributes:
        name: The field's Python name (``add_note`` is ``addNote``).
        description: The field's description.
        arguments: The action's own arguments in schema order, name to type; an optional
            type (``X | None``) makes an optional argument with a null default.
        plan: Validates the arguments, passed by name, into the action
            (``gateway.agent_actions``).
        target: Which of ``customerId``/``caseId``/``customerIds`` the mutation takes.
    """

    name: str
    description: str
    arguments: Mapping[str, object]
    plan: Callable[..., PlannedAction]
    target: Target = Target.CASE


ACTIONS = (
    AgentActionMutation(
        "add_note",
        "An internal note on the customer (and case).",
        {"text": str},
        agent_actions.note,
    ),
    AgentActionMutation(
        "handoff",
        "Hand the customer to a channel, queue or agent, with context to go on.",
        {
            "summary": str,
            "to_channel": Channel | None,
            "to_queue": str | None,
            "to_agent": str | None,
            "open_questions": list[str] | None,
        },
        lambda open_questions, **given: agent_actions.handoff(
            open_questions=open_questions or [], **given
        ),
    ),
    AgentActionMutation(
        "escalate",
        "Raise the case's escalation level (1-5) with a reason.",
        {"level": int, "reason": str},
        agent_actions.escalation,
    ),
    AgentActionMutation(
        "send_progress_update",
        "A progress update sent to the customer (OUTBOUND).",
        {"message": str},
        agent_actions.progress_update,
    ),
    AgentActionMutation(
        "transfer",
        "Transfer to another department; opens a follow-up task for the caller.",
        {"to_department": str, "reason": str},
        agent_actions.transfer,
    ),
    AgentActionMutation(
        "resolve_case",
        "Resolve the case (the customer's open case by default).",
        {"summary": str},
        agent_actions.resolution,
    ),
    AgentActionMutation(
        "tag_case",
        "Tag the case (1-20 tags of up to 64 characters).",
        {"tags": list[str]},
        # Called by keyword: the argument is `tags`, the function's parameter `values`.
        lambda tags: agent_actions.tags(tags),  # noqa: PLW0108
    ),
    AgentActionMutation(
        "record_csat",
        "Record the customer's CSAT answer (score 1-5).",
        {"score": int, "comment": str | None},
        agent_actions.csat,
    ),
    AgentActionMutation(
        "request_cancellation",
        "The customer asked to cancel; OTHER needs `reasonDetail` in words.",
        {"reason": CancellationReason, "reason_detail": str | None},
        lambda reason, reason_detail: agent_actions.cancellation_request(
            reason=reason, detail=reason_detail
        ),
    ),
    AgentActionMutation(
        "record_cancellation_outcome",
        "What came of a cancellation request.",
        {"outcome": CancellationOutcome, "note": str | None},
        agent_actions.cancellation_outcome,
    ),
    AgentActionMutation(
        "complete_follow_up",
        "A follow-up task is done: the customer has heard back.",
        {"task_id": strawberry.ID, "note": str | None},
        agent_actions.follow_up_completed,
    ),
    AgentActionMutation(
        "merge_customers",
        "Merge customers by hand (2-10 ids; the one seen first survives). Pass "
        "`suggestionId` to accept a merge suggestion.",
        {"customer_ids": list[strawberry.ID], "reason": str, "suggestion_id": strawberry.ID | None},
        agent_actions.merge_customers,
        Target.CUSTOMERS,
    ),
    AgentActionMutation(
        "split_merge",
        "Undo a merge (ids in `Customer.mergeHistory`).",
        {"merge_id": strawberry.ID, "reason": str},
        agent_actions.split_merge,
        Target.CUSTOMER,
    ),
    AgentActionMutation(
        "dismiss_merge_suggestion",
        "These customers are different people: drop the suggestion.",
        {"suggestion_id": strawberry.ID, "reason": str},
        agent_actions.dismiss_merge_suggestion,
        Target.CUSTOMER,
    ),
)


async def _act(
    info: Info, mutation: AgentActionMutation, arguments: dict[str, Any]
) -> ActionResult:
    """Check, plan, publish and wait for one agent action (the body of every mutation)."""
    context = info.context
    event_id = arguments.pop("event_id", None)
    case_id = arguments.pop("case_id", None)
    customer_id = arguments.pop("customer_id", None)
    if mutation.target is Target.CUSTOMERS:
        arguments["customer_ids"] = [
            check_id(f"customerIds[{i}]", id_) for i, id_ in enumerate(arguments["customer_ids"])
        ]
    action = mutation.plan(**arguments)
    key = agent_actions.event_id_or_new(event_id)
    if mutation.target is Target.CUSTOMERS:
        live = await _one_of_several(info, arguments["customer_ids"])
        checked_case = None
    else:
        live = await live_customer_id(context, check_id("customerId", customer_id))
        checked_case = None if case_id is None else await _case_of(info, case_id, live)
    await _check_ledger_references(info, arguments, live)
    outcome = await perform(context, action, customer_id=live, case_id=checked_case, event_id=key)
    return ActionResult.from_outcome(outcome)


async def _case_of(info: Info, case_id: strawberry.ID, customer_id: str) -> str:
    """The id of the customer's case ``case_id``, checked before anything is published.

    The timeline dead-letters an action about a case it does not know, or a case of another
    customer: the agent must hear NOT_FOUND now, not ACCEPTED and silence.

    Raises:
        GatewayError: ``NOT_FOUND`` for a case that is not one of the customer's.
    """
    checked = check_id("caseId", case_id)
    found = await info.context.loaders.cases.load(checked)
    # A case opened before a merge names the merged-away customer: compare survivors.
    if found is None or (
        found.customer_id != customer_id
        and await live_customer_id(info.context, found.customer_id) != customer_id
    ):
        raise GatewayError(
            ErrorCode.NOT_FOUND, f"Case {checked} not found for customer {customer_id}."
        )
    return checked


async def _check_ledger_references(info: Info, arguments: Mapping[str, Any], live: str) -> None:
    """Refuse a suggestion or merge the customer does not have, before publishing.

    Raises:
        GatewayError: ``NOT_FOUND``.
    """
    suggestion_id = arguments.get("suggestion_id")
    if suggestion_id is not None:
        suggestions = await merges.read_suggestions(
            info, customer_id=live, first=merges.MAX_SUGGESTIONS
        )
        if str(suggestion_id) not in {suggestion.id for suggestion in suggestions}:
            raise GatewayError(
                ErrorCode.NOT_FOUND, f"No open merge suggestion {suggestion_id} for {live}."
            )
    merge_id = arguments.get("merge_id")
    if merge_id is not None:
        records = await info.context.loaders.merge_history.load(live)
        if str(merge_id) not in {record.id for record in records}:
            raise GatewayError(ErrorCode.NOT_FOUND, f"No merge {merge_id} of {live}.")


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


def _signature(mutation: AgentActionMutation) -> inspect.Signature:
    """The resolver signature Strawberry reads the field's arguments from."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter("info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Info)
    ]
    if mutation.target is not Target.CUSTOMERS:
        parameters.append(inspect.Parameter("customer_id", keyword, annotation=strawberry.ID))
    for name, annotation in mutation.arguments.items():
        default = None if _optional(annotation) else inspect.Parameter.empty
        parameters.append(inspect.Parameter(name, keyword, annotation=annotation, default=default))
    if mutation.target is Target.CASE:
        parameters.append(
            inspect.Parameter("case_id", keyword, annotation=strawberry.ID | None, default=None)
        )
    parameters.append(inspect.Parameter("event_id", keyword, annotation=EventId, default=None))
    return inspect.Signature(parameters, return_annotation=ActionResult)


def _optional(annotation: object) -> bool:
    # ``str | None`` is a types.UnionType, ``strawberry.ID | None`` (a NewType) a typing.Union.
    return get_origin(annotation) in {Union, types.UnionType} and type(None) in get_args(annotation)


def _resolver(mutation: AgentActionMutation) -> Callable[..., Any]:
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
            **{
                mutation.name: strawberry.mutation(
                    resolver=_resolver(mutation), description=mutation.description
                )
                for mutation in ACTIONS
            },
            # Not an agent action (no event on the timeline): the privacy officer's erasure.
            "erase_customer": strawberry.mutation(
                resolver=erasure.erase_customer,
                description="Erase a person by destroying their data keys (irreversible).",
            ),
        },
    ),
    description="Agent actions; each becomes one event on the customer's timeline.",
)
