"""Agent actions as ``Interaction`` events: input checks and the event each action becomes.

Pure functions, no I/O: every mutation validates its arguments here (raising
``BAD_USER_INPUT`` with the argument's name) and gets back the action's part of the event;
``to_interaction`` adds the envelope (tenant and actor from the principal, never the client).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway import enums
from gateway.auth import Principal
from gateway.errors import bad_user_input
from tsunagu.contracts import (
    BUS_LIMITS,
    ContractViolation,
    canonical_event_id,
    check_interaction,
)
from tsunagu.v1 import interaction_pb2 as pb

# Sizes an agent desk never needs to exceed; the ingest limit for any text is 64 KiB.
MAX_NOTE = 10_000
MAX_SUMMARY = 5_000
MAX_MESSAGE = 5_000
MAX_REASON = 2_000
MAX_NAME = 128  # queue, agent, department names
MAX_QUESTION = 500
MAX_QUESTIONS = 20
MAX_TAG = 64
MAX_TAGS = 20
MAX_MERGE_CUSTOMERS = 10
ESCALATION_LEVELS = range(1, 6)
CSAT_SCORES = range(1, 6)


@dataclass(frozen=True)
class PlannedAction:
    """An agent action ready to be wrapped into an event.

    Attributes:
        kind: The interaction kind.
        detail: The ``AgentActionDetail`` with its ``action`` set (ids are added later).
        direction: ``INTERNAL``, or ``OUTBOUND`` for what the customer is sent.
        text: ``content.text`` for actions that are text (a note, a progress update).
        consent: ``Interaction.consent`` of a consent an agent records (the detail then
            names no action).
    """

    kind: pb.Kind.ValueType
    detail: pb.AgentActionDetail
    direction: pb.Direction.ValueType = pb.DIRECTION_INTERNAL
    text: str = ""
    consent: pb.ConsentChange | None = None


def check_text(name: str, value: str | None, *, limit: int, required: bool = True) -> str:
    """Trim and check a free-text argument.

    Args:
        name: The argument's GraphQL name, for the message.
        value: As sent; ``None`` for an omitted optional argument.
        limit: Maximum length in characters.
        required: Whether blank is refused.

    Returns:
        The trimmed text (``""`` for an omitted optional one).

    Raises:
        GatewayError: ``BAD_USER_INPUT``.
    """
    text = (value or "").strip()
    if required and not text:
        raise bad_user_input(f"`{name}` must not be empty.")
    if len(text) > limit:
        raise bad_user_input(f"`{name}` must be at most {limit} characters, got {len(text)}.")
    if any(not char.isprintable() and char not in "\t\n\r" for char in text):
        raise bad_user_input(f"`{name}` must not contain control characters.")
    return text


def event_id_or_new(value: str | None) -> str:
    """The client's idempotency key in canonical form, or a fresh UUID.

    Args:
        value: A UUID (any case) or a ULID, or ``None``.

    Returns:
        The lower-case UUID or upper-case ULID: the same key as the ingestion services.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` for anything else, or a nil id.
    """
    if value is None:
        return str(uuid.uuid4())
    try:
        return canonical_event_id(value.strip())
    except ContractViolation as exc:
        raise bad_user_input(f"`eventId`: {exc.reason}.") from exc


def _detail(**action: object) -> pb.AgentActionDetail:
    return pb.AgentActionDetail(**action)  # type: ignore[arg-type]


def note(text: str) -> PlannedAction:
    """An internal note on the customer (or case)."""
    checked = check_text("text", text, limit=MAX_NOTE)
    return PlannedAction(pb.KIND_NOTE, _detail(note=pb.NoteAction(text=checked)), text=checked)


def handoff(
    *,
    to_channel: enums.Channel | None,
    to_queue: str | None,
    to_agent: str | None,
    summary: str,
    open_questions: Sequence[str],
) -> PlannedAction:
    """The customer goes to another channel, queue or agent, with context for the next agent."""
    if to_channel is None and not (to_queue or "").strip() and not (to_agent or "").strip():
        raise bad_user_input("A handoff needs `toChannel`, `toQueue` or `toAgent`.")
    if to_channel is enums.Channel.AGENT_DESK:
        raise bad_user_input("`toChannel` must be a customer-facing channel, not AGENT_DESK.")
    if len(open_questions) > MAX_QUESTIONS:
        raise bad_user_input(f"`openQuestions` takes at most {MAX_QUESTIONS} questions.")
    questions = [
        check_text(f"openQuestions[{index}]", question, limit=MAX_QUESTION)
        for index, question in enumerate(open_questions)
    ]
    action = pb.HandoffAction(
        to_channel=enums.CHANNELS.to_proto(to_channel) if to_channel else pb.CHANNEL_UNSPECIFIED,
        to_queue=check_text("toQueue", to_queue, limit=MAX_NAME, required=False),
        to_agent=check_text("toAgent", to_agent, limit=MAX_NAME, required=False),
        summary=check_text("summary", summary, limit=MAX_SUMMARY),
        open_questions=questions,
    )
    return PlannedAction(pb.KIND_HANDOFF, _detail(handoff=action))


def escalation(*, level: int, reason: str) -> PlannedAction:
    """Raise the case's escalation level."""
    if level not in ESCALATION_LEVELS:
        raise bad_user_input(
            f"`level` must be between {ESCALATION_LEVELS.start} and {ESCALATION_LEVELS.stop - 1}."
        )
    action = pb.EscalationAction(level=level, reason=check_text("reason", reason, limit=MAX_REASON))
    return PlannedAction(pb.KIND_ESCALATION, _detail(escalation=action))


def progress_update(message: str) -> PlannedAction:
    """A progress update sent to the customer: the one outbound agent action."""
    checked = check_text("message", message, limit=MAX_MESSAGE)
    return PlannedAction(
        pb.KIND_PROGRESS_UPDATE,
        _detail(progress_update=pb.ProgressUpdateAction(message=checked)),
        direction=pb.DIRECTION_OUTBOUND,
        text=checked,
    )


def transfer(*, to_department: str, reason: str) -> PlannedAction:
    """Transfer to another department; the timeline opens a follow-up task for the agent."""
    action = pb.TransferAction(
        to_department=check_text("toDepartment", to_department, limit=MAX_NAME),
        reason=check_text("reason", reason, limit=MAX_REASON),
    )
    return PlannedAction(pb.KIND_TRANSFER, _detail(transfer=action))


def resolution(summary: str) -> PlannedAction:
    """Resolve the case, saying how."""
    action = pb.ResolutionAction(summary=check_text("summary", summary, limit=MAX_SUMMARY))
    return PlannedAction(pb.KIND_RESOLUTION, _detail(resolution=action))


def tags(values: Sequence[str]) -> PlannedAction:
    """Tag the case; duplicates are dropped, order kept."""
    if not values:
        raise bad_user_input("`tags` must name at least one tag.")
    if len(values) > MAX_TAGS:
        raise bad_user_input(f"`tags` takes at most {MAX_TAGS} tags.")
    checked = [
        check_text(f"tags[{index}]", value, limit=MAX_TAG) for index, value in enumerate(values)
    ]
    return PlannedAction(pb.KIND_TAG, _detail(tag=pb.TagAction(tags=list(dict.fromkeys(checked)))))


def csat(*, score: int, comment: str | None) -> PlannedAction:
    """The customer's satisfaction answer, recorded by the agent."""
    if score not in CSAT_SCORES:
        raise bad_user_input(
            f"`score` must be between {CSAT_SCORES.start} and {CSAT_SCORES.stop - 1}, got {score}."
        )
    action = pb.CsatResponse(
        score=score, comment=check_text("comment", comment, limit=MAX_REASON, required=False)
    )
    return PlannedAction(pb.KIND_CSAT_RESPONSE, _detail(csat=action))


def cancellation_request(*, reason: enums.CancellationReason, detail: str | None) -> PlannedAction:
    """The customer asked to cancel, and why; ``OTHER`` needs the reason in words."""
    action = pb.CancellationRequestAction(
        reason=enums.CANCELLATION_REASONS.to_proto(reason),
        reason_detail=check_text(
            "reasonDetail",
            detail,
            limit=MAX_REASON,
            required=reason is enums.CancellationReason.OTHER,
        ),
    )
    return PlannedAction(pb.KIND_CANCELLATION_REQUEST, _detail(cancellation_request=action))


def cancellation_outcome(*, outcome: enums.CancellationOutcome, note: str | None) -> PlannedAction:
    """What came of a cancellation request: retained, cancelled, or still pending."""
    action = pb.CancellationOutcomeAction(
        outcome=enums.CANCELLATION_OUTCOMES.to_proto(outcome),
        note=check_text("note", note, limit=MAX_REASON, required=False),
    )
    return PlannedAction(pb.KIND_CANCELLATION_OUTCOME, _detail(cancellation_outcome=action))


def follow_up_completed(*, task_id: str, note: str | None) -> PlannedAction:
    """A follow-up task is done: the customer has heard back."""
    action = pb.CompleteFollowUpAction(
        task_id=check_text("taskId", task_id, limit=MAX_NAME),
        note=check_text("note", note, limit=MAX_REASON, required=False),
    )
    return PlannedAction(pb.KIND_FOLLOW_UP_COMPLETED, _detail(complete_follow_up=action))


def merge_customers(
    *, customer_ids: Sequence[str], reason: str, suggestion_id: str | None
) -> PlannedAction:
    """Merge customers by hand (accepting a suggestion when ``suggestion_id`` is given)."""
    distinct = list(dict.fromkeys(customer_ids))
    if len(distinct) < 2:
        raise bad_user_input("`customerIds` must name at least two different customers.")
    if len(distinct) > MAX_MERGE_CUSTOMERS:
        raise bad_user_input(f"`customerIds` takes at most {MAX_MERGE_CUSTOMERS} customers.")
    action = pb.MergeCustomersAction(
        customer_ids=distinct,
        reason=check_text("reason", reason, limit=MAX_REASON),
        suggestion_id=check_text("suggestionId", suggestion_id, limit=MAX_NAME, required=False),
    )
    return PlannedAction(pb.KIND_CUSTOMERS_MERGED, _detail(merge_customers=action))


def split_merge(*, merge_id: str, reason: str) -> PlannedAction:
    """Undo one merge exactly."""
    action = pb.SplitMergeAction(
        merge_id=check_text("mergeId", merge_id, limit=MAX_NAME),
        reason=check_text("reason", reason, limit=MAX_REASON),
    )
    return PlannedAction(pb.KIND_MERGE_SPLIT, _detail(split_merge=action))


def dismiss_merge_suggestion(*, suggestion_id: str, reason: str) -> PlannedAction:
    """These customers are different people: the suggestion goes away."""
    action = pb.DismissMergeSuggestionAction(
        suggestion_id=check_text("suggestionId", suggestion_id, limit=MAX_NAME),
        reason=check_text("reason", reason, limit=MAX_REASON),
    )
    return PlannedAction(
        pb.KIND_MERGE_SUGGESTION_DISMISSED, _detail(dismiss_merge_suggestion=action)
    )


def to_interaction(
    action: PlannedAction,
    *,
    principal: Principal,
    customer_id: str,
    case_id: str | None,
    event_id: str,
    now: datetime,
) -> pb.Interaction:
    """Wrap an action into the event published on ``interactions.<tenant>.agent_desk``.

    Args:
        action: What the agent did.
        principal: Who did it; the tenant and the actor come from here only.
        customer_id: The customer the action is about.
        case_id: The case, when the action applies to one.
        event_id: The idempotency key.
        now: The action's time.

    Returns:
        The complete interaction, checked against the write-path contract.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` when the event would break the contract (an id the
            client sent that no event may carry, for instance): the timeline would
            dead-letter it, so it is never published.
    """
    detail = pb.AgentActionDetail()
    detail.CopyFrom(action.detail)
    detail.customer_id = customer_id
    detail.case_id = case_id or ""
    interaction = pb.Interaction(
        event_id=event_id,
        tenant=principal.tenant,
        channel=pb.CHANNEL_AGENT_DESK,
        kind=action.kind,
        direction=action.direction,
        actor=pb.Actor(
            type=pb.ACTOR_TYPE_AGENT,
            id=principal.subject,
            display_name=principal.display_name or principal.subject,
        ),
        agent_action=detail,
    )
    if action.text:
        interaction.content.text = action.text
    if action.consent is not None:
        interaction.consent.CopyFrom(action.consent)
    interaction.occurred_at.FromDatetime(now)
    try:
        check_interaction(interaction, limits=BUS_LIMITS, now=now)
    except ContractViolation as exc:
        raise bad_user_input(f"The action cannot be recorded: {exc}.") from exc
    return interaction
