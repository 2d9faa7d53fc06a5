"""Channel-specific details of an interaction and agent actions, as GraphQL union members."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import strawberry

from gateway.enums import (
    CANCELLATION_OUTCOMES,
    CANCELLATION_REASONS,
    CHANNELS,
    CancellationOutcome,
    CancellationReason,
    Channel,
)
from gateway.scalars import optional, optional_id
from tsunagu.v1 import interaction_pb2


@strawberry.type
class ChatDetail:
    session_id: str | None
    page_url: str | None
    widget_id: str | None


@strawberry.type
class CallDetail:
    call_id: str | None = strawberry.field(description="Shared by every leg of one call.")
    leg_id: str | None
    from_number: str | None
    to_number: str | None
    duration_seconds: int | None
    queue: str | None
    recording_uri: str | None
    transcript: str | None
    end_reason: str | None
    transferred_to: str | None = strawberry.field(
        description="For CALL_TRANSFERRED: the queue or agent the call went to."
    )


@strawberry.type
class EmailDetail:
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    from_address: str | None
    to_addresses: list[str]
    cc_addresses: list[str]
    subject: str | None
    text_body: str | None
    html_body: str | None = strawberry.field(
        description="The original HTML as received: untrusted, sanitise before rendering."
    )


@strawberry.type
class SmsDetail:
    from_number: str | None
    to_number: str | None
    provider_message_id: str | None


@strawberry.type
class SocialDetail:
    network: str | None
    handle: str | None
    thread_id: str | None
    post_id: str | None
    post_url: str | None


@strawberry.type
class FormField:
    name: str
    value: str


@strawberry.type
class WebFormDetail:
    form_id: str | None
    page_url: str | None
    fields: list[FormField]


@strawberry.type
class NoteAction:
    text: str


@strawberry.type
class HandoffAction:
    to_channel: Channel | None
    to_queue: str | None
    to_agent: str | None
    summary: str | None
    open_questions: list[str]


@strawberry.type
class EscalationAction:
    level: int
    reason: str | None


@strawberry.type
class ProgressUpdateAction:
    message: str


@strawberry.type
class TransferAction:
    to_department: str | None
    reason: str | None


@strawberry.type
class ResolutionAction:
    summary: str | None


@strawberry.type
class TagAction:
    tags: list[str]


@strawberry.type
class CsatResponse:
    score: int = strawberry.field(description="1 (very dissatisfied) .. 5 (very satisfied).")
    comment: str | None


@strawberry.type
class CancellationRequestAction:
    reason: CancellationReason | None
    reason_detail: str | None


@strawberry.type
class CancellationOutcomeAction:
    outcome: CancellationOutcome | None
    note: str | None


@strawberry.type(description="An agent merged customers by hand (or accepted a suggestion).")
class MergeCustomersAction:
    customer_ids: list[strawberry.ID]
    reason: str | None
    suggestion_id: strawberry.ID | None


@strawberry.type(description="An agent undid a merge.")
class SplitMergeAction:
    merge_id: strawberry.ID
    reason: str | None


@strawberry.type
class DismissMergeSuggestionAction:
    suggestion_id: strawberry.ID
    reason: str | None


@strawberry.type(description="A follow-up task is done: the customer has heard back.")
class CompleteFollowUpAction:
    task_id: strawberry.ID
    note: str | None


AgentAction = Annotated[
    NoteAction
    | HandoffAction
    | EscalationAction
    | ProgressUpdateAction
    | TransferAction
    | ResolutionAction
    | TagAction
    | CsatResponse
    | CancellationRequestAction
    | CancellationOutcomeAction
    | MergeCustomersAction
    | SplitMergeAction
    | DismissMergeSuggestionAction
    | CompleteFollowUpAction,
    strawberry.union("AgentAction", description="What an agent (or the customer, for CSAT) did."),
]


@strawberry.type
class AgentActionDetail:
    case_id: str | None
    customer_id: str | None
    action: AgentAction | None


InteractionDetail = Annotated[
    ChatDetail
    | CallDetail
    | EmailDetail
    | SmsDetail
    | SocialDetail
    | WebFormDetail
    | AgentActionDetail,
    strawberry.union("InteractionDetail", description="What only this channel knows."),
]


def detail_from_proto(interaction: interaction_pb2.Interaction) -> InteractionDetail | None:
    """Convert the ``detail`` oneof of an interaction.

    Args:
        interaction: The proto interaction.

    Returns:
        The GraphQL detail, or ``None`` when the interaction carries none.
    """
    which = interaction.WhichOneof("detail")
    if which is None:
        return None
    return _DETAILS[which](interaction)


def _chat(interaction: interaction_pb2.Interaction) -> ChatDetail:
    chat = interaction.chat
    return ChatDetail(
        session_id=optional(chat.session_id),
        page_url=optional(chat.page_url),
        widget_id=optional(chat.widget_id),
    )


def _call(interaction: interaction_pb2.Interaction) -> CallDetail:
    call = interaction.call
    return CallDetail(
        call_id=optional(call.call_id),
        leg_id=optional(call.leg_id),
        from_number=optional(call.from_number),
        to_number=optional(call.to_number),
        # Zero means "not measured" (an unanswered or still-running call), not a 0 s call.
        duration_seconds=call.duration_seconds or None,
        queue=optional(call.queue),
        recording_uri=optional(call.recording_uri),
        transcript=optional(call.transcript),
        end_reason=optional(call.end_reason),
        transferred_to=optional(call.transferred_to),
    )


def _email(interaction: interaction_pb2.Interaction) -> EmailDetail:
    email = interaction.email
    return EmailDetail(
        message_id=optional(email.message_id),
        in_reply_to=optional(email.in_reply_to),
        references=list(email.references),
        from_address=optional(email.from_address),
        to_addresses=list(email.to_addresses),
        cc_addresses=list(email.cc_addresses),
        subject=optional(email.subject),
        text_body=optional(email.text_body),
        html_body=optional(email.html_body),
    )


def _sms(interaction: interaction_pb2.Interaction) -> SmsDetail:
    sms = interaction.sms
    return SmsDetail(
        from_number=optional(sms.from_number),
        to_number=optional(sms.to_number),
        provider_message_id=optional(sms.provider_message_id),
    )


def _social(interaction: interaction_pb2.Interaction) -> SocialDetail:
    social = interaction.social
    return SocialDetail(
        network=optional(social.network),
        handle=optional(social.handle),
        thread_id=optional(social.thread_id),
        post_id=optional(social.post_id),
        post_url=optional(social.post_url),
    )


def _web_form(interaction: interaction_pb2.Interaction) -> WebFormDetail:
    form = interaction.web_form
    return WebFormDetail(
        form_id=optional(form.form_id),
        page_url=optional(form.page_url),
        fields=[FormField(name=field.name, value=field.value) for field in form.fields],
    )


def _agent_action(interaction: interaction_pb2.Interaction) -> AgentActionDetail:
    detail = interaction.agent_action
    which = detail.WhichOneof("action")
    return AgentActionDetail(
        case_id=optional(detail.case_id),
        customer_id=optional(detail.customer_id),
        action=None if which is None else _ACTIONS[which](detail),
    )


_DETAILS: dict[str, Callable[[interaction_pb2.Interaction], InteractionDetail]] = {
    "chat": _chat,
    "call": _call,
    "email": _email,
    "sms": _sms,
    "social": _social,
    "web_form": _web_form,
    "agent_action": _agent_action,
}


def handoff_from_proto(handoff: interaction_pb2.HandoffAction) -> HandoffAction:
    """Convert a handoff's context (on a timeline entry, or a case's latest)."""
    return HandoffAction(
        to_channel=CHANNELS.from_proto(handoff.to_channel),
        to_queue=optional(handoff.to_queue),
        to_agent=optional(handoff.to_agent),
        summary=optional(handoff.summary),
        open_questions=list(handoff.open_questions),
    )


def cancellation_request_from_proto(
    request: interaction_pb2.CancellationRequestAction,
) -> CancellationRequestAction:
    """Convert a cancellation request (on a timeline entry, or a case's)."""
    return CancellationRequestAction(
        reason=CANCELLATION_REASONS.from_proto(request.reason),
        reason_detail=optional(request.reason_detail),
    )


def _cancellation_outcome(detail: interaction_pb2.AgentActionDetail) -> CancellationOutcomeAction:
    outcome = detail.cancellation_outcome
    return CancellationOutcomeAction(
        outcome=CANCELLATION_OUTCOMES.from_proto(outcome.outcome),
        note=optional(outcome.note),
    )


_ACTIONS: dict[str, Callable[[interaction_pb2.AgentActionDetail], AgentAction]] = {
    "note": lambda detail: NoteAction(text=detail.note.text),
    "handoff": lambda detail: handoff_from_proto(detail.handoff),
    "escalation": lambda detail: EscalationAction(
        level=detail.escalation.level, reason=optional(detail.escalation.reason)
    ),
    "progress_update": lambda detail: ProgressUpdateAction(message=detail.progress_update.message),
    "transfer": lambda detail: TransferAction(
        to_department=optional(detail.transfer.to_department),
        reason=optional(detail.transfer.reason),
    ),
    "resolution": lambda detail: ResolutionAction(summary=optional(detail.resolution.summary)),
    "tag": lambda detail: TagAction(tags=list(detail.tag.tags)),
    "csat": lambda detail: CsatResponse(
        score=detail.csat.score, comment=optional(detail.csat.comment)
    ),
    "cancellation_request": lambda detail: cancellation_request_from_proto(
        detail.cancellation_request
    ),
    "cancellation_outcome": _cancellation_outcome,
    "merge_customers": lambda detail: MergeCustomersAction(
        customer_ids=[strawberry.ID(id_) for id_ in detail.merge_customers.customer_ids],
        reason=optional(detail.merge_customers.reason),
        suggestion_id=optional_id(detail.merge_customers.suggestion_id),
    ),
    "split_merge": lambda detail: SplitMergeAction(
        merge_id=strawberry.ID(detail.split_merge.merge_id),
        reason=optional(detail.split_merge.reason),
    ),
    "dismiss_merge_suggestion": lambda detail: DismissMergeSuggestionAction(
        suggestion_id=strawberry.ID(detail.dismiss_merge_suggestion.suggestion_id),
        reason=optional(detail.dismiss_merge_suggestion.reason),
    ),
    "complete_follow_up": lambda detail: CompleteFollowUpAction(
        task_id=strawberry.ID(detail.complete_follow_up.task_id),
        note=optional(detail.complete_follow_up.note),
    ),
}
