"""Channel-specific details of an interaction and agent actions, as GraphQL union members.

Each type mirrors the proto message of the same name (``tsunagu.v1.ChatDetail``, ...) field
for field and is filled by ``gateway.from_proto``; only the GraphQL side is declared here,
because Strawberry needs static types.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from gateway.enums import CancellationOutcome, CancellationReason, Channel, ConsentPurpose
from gateway.from_proto import oneof_reader
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
    # Zero means "not measured" (an unanswered or still-running call), not a 0 s call.
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


@strawberry.type(description="A proactive outbound contact, recorded with the customer's consent.")
class OutreachAction:
    channel: Channel | None
    purpose: ConsentPurpose | None
    text: str | None


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
    | CompleteFollowUpAction
    | OutreachAction,
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


_DETAIL = oneof_reader(interaction_pb2.Interaction.DESCRIPTOR, "detail", InteractionDetail)


def detail_from_proto(interaction: interaction_pb2.Interaction) -> InteractionDetail | None:
    """Convert the ``detail`` oneof of an interaction (``None`` when it carries none)."""
    return _DETAIL(interaction)  # type: ignore[return-value]
