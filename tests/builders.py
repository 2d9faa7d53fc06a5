"""Valid interactions for tests, one builder per channel; tests change what they exercise."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tsunagu.v1 import interaction_pb2 as pb


def unique_mobile() -> str:
    """A Japanese mobile number (E.164) unlikely to be used by any other test.

    `090-0xxx-xxxx` is not a valid number (phonenumbers reads it as unassigned, so it is kept
    but never links customers): the first digit after `90` is never 0.
    """
    n = uuid.uuid4().int
    return f"+8190{1 + n % 9}{n // 9 % 10**7:07d}"


def _base(
    tenant: str, channel: pb.Channel.ValueType, kind: pb.Kind.ValueType, at: datetime | None
) -> pb.Interaction:
    interaction = pb.Interaction(
        event_id=str(uuid.uuid4()),
        tenant=tenant,
        channel=channel,
        kind=kind,
        direction=pb.DIRECTION_INBOUND,
        actor=pb.Actor(type=pb.ACTOR_TYPE_CUSTOMER),
    )
    interaction.occurred_at.FromDatetime(at or datetime.now(UTC) - timedelta(seconds=1))
    return interaction


def chat(
    tenant: str,
    *,
    text: str = "Hello, my delivery is late",
    visitor: str = "visitor-1",
    phone: str = "",
    email: str = "",
    name: str = "",
    at: datetime | None = None,
) -> pb.Interaction:
    interaction = _base(tenant, pb.CHANNEL_CHAT, pb.KIND_MESSAGE, at)
    interaction.identifiers.append(
        pb.Identifier(kind=pb.IDENTIFIER_KIND_CHAT_VISITOR, value=visitor)
    )
    if phone:
        interaction.identifiers.append(pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=phone))
    if email:
        interaction.identifiers.append(pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=email))
    interaction.actor.display_name = name
    interaction.content.text = text
    interaction.chat.session_id = f"session-{visitor}"
    return interaction


def call(
    tenant: str,
    *,
    from_number: str,
    kind: pb.Kind.ValueType = pb.KIND_CALL_STARTED,
    call_id: str = "call-1",
    at: datetime | None = None,
) -> pb.Interaction:
    interaction = _base(tenant, pb.CHANNEL_VOICE, kind, at)
    interaction.call.call_id = call_id
    interaction.call.from_number = from_number
    interaction.call.to_number = "0120-123-456"
    return interaction


def sms(
    tenant: str,
    *,
    from_number: str,
    text: str = "Where is my parcel?",
    at: datetime | None = None,
) -> pb.Interaction:
    """An inbound SMS as a carrier adapter submits it (no identifiers: ingestion adds them)."""
    interaction = _base(tenant, pb.CHANNEL_SMS, pb.KIND_MESSAGE, at)
    interaction.sms.from_number = from_number
    interaction.sms.to_number = "+81 3-1234-5678"
    interaction.content.text = text
    return interaction


def email(
    tenant: str,
    *,
    from_address: str,
    subject: str = "About my order",
    html: str = "<p>Please <b>cancel</b> my subscription.</p>",
    message_id: str = "",
    extra_identifiers: list[pb.Identifier] | None = None,
    at: datetime | None = None,
) -> pb.Interaction:
    interaction = _base(tenant, pb.CHANNEL_EMAIL, pb.KIND_EMAIL, at)
    interaction.email.message_id = message_id or f"<{uuid.uuid4().hex}@mail.example.jp>"
    interaction.email.from_address = from_address
    interaction.email.subject = subject
    interaction.email.html_body = html
    interaction.identifiers.extend(extra_identifiers or [])
    return interaction


_ACTION_KINDS: dict[str, pb.Kind.ValueType] = {
    "note": pb.KIND_NOTE,
    "handoff": pb.KIND_HANDOFF,
    "escalation": pb.KIND_ESCALATION,
    "progress_update": pb.KIND_PROGRESS_UPDATE,
    "transfer": pb.KIND_TRANSFER,
    "resolution": pb.KIND_RESOLUTION,
    "tag": pb.KIND_TAG,
    "csat": pb.KIND_CSAT_RESPONSE,
    "cancellation_request": pb.KIND_CANCELLATION_REQUEST,
    "cancellation_outcome": pb.KIND_CANCELLATION_OUTCOME,
    "complete_follow_up": pb.KIND_FOLLOW_UP_COMPLETED,
    "outreach": pb.KIND_OUTREACH,
}


def agent_action(
    tenant: str,
    customer_id: str,
    *,
    case_id: str = "",
    agent: str = "agent-1",
    agent_name: str = "Suzuki",
    at: datetime | None = None,
    **action: object,
) -> pb.Interaction:
    """An agent action as the gateway publishes it, e.g. `note=pb.NoteAction(text=...)`."""
    [(name, detail)] = action.items()
    outbound = name in {"progress_update", "outreach"}
    direction = pb.DIRECTION_OUTBOUND if outbound else pb.DIRECTION_INTERNAL
    interaction = _base(tenant, pb.CHANNEL_AGENT_DESK, _ACTION_KINDS[name], at)
    interaction.direction = direction
    interaction.actor.CopyFrom(
        pb.Actor(type=pb.ACTOR_TYPE_AGENT, id=agent, display_name=agent_name)
    )
    interaction.agent_action.customer_id = customer_id
    interaction.agent_action.case_id = case_id
    getattr(interaction.agent_action, name).CopyFrom(detail)
    return interaction


def agent_reply(
    tenant: str, *, visitor: str, text: str, agent: str = "agent-1", at: datetime | None = None
) -> pb.Interaction:
    """An agent's chat message to the customer (outbound)."""
    interaction = chat(tenant, visitor=visitor, text=text, at=at)
    interaction.direction = pb.DIRECTION_OUTBOUND
    interaction.actor.CopyFrom(pb.Actor(type=pb.ACTOR_TYPE_AGENT, id=agent, display_name="Agent"))
    return interaction


def _desk_event(
    tenant: str, *, customer_id: str = "", agent: str = "agent-7", at: datetime | None = None
) -> pb.Interaction:
    """An agent-desk event about `customer_id`; the caller sets the action."""
    interaction = _base(tenant, pb.CHANNEL_AGENT_DESK, pb.KIND_NOTE, at)
    interaction.direction = pb.DIRECTION_INTERNAL
    interaction.actor.CopyFrom(pb.Actor(type=pb.ACTOR_TYPE_AGENT, id=agent, display_name="Suzuki"))
    interaction.agent_action.customer_id = customer_id
    return interaction


def merge_customers(
    tenant: str, customer_ids: list[str], *, reason: str = "same person", suggestion_id: str = ""
) -> pb.Interaction:
    interaction = _desk_event(tenant, customer_id=customer_ids[0] if customer_ids else "")
    interaction.kind = pb.KIND_CUSTOMERS_MERGED
    interaction.agent_action.merge_customers.customer_ids.extend(customer_ids)
    interaction.agent_action.merge_customers.reason = reason
    interaction.agent_action.merge_customers.suggestion_id = suggestion_id
    return interaction


def split_merge(tenant: str, merge_id: str, *, reason: str = "two people") -> pb.Interaction:
    interaction = _desk_event(tenant)
    interaction.kind = pb.KIND_MERGE_SPLIT
    interaction.agent_action.split_merge.merge_id = merge_id
    interaction.agent_action.split_merge.reason = reason
    return interaction


def dismiss_suggestion(tenant: str, suggestion_id: str) -> pb.Interaction:
    interaction = _desk_event(tenant)
    interaction.kind = pb.KIND_MERGE_SUGGESTION_DISMISSED
    interaction.agent_action.dismiss_merge_suggestion.suggestion_id = suggestion_id
    return interaction


def verified(interaction: pb.Interaction) -> pb.Interaction:
    """The interaction with every identifier verified, as a channel that vouches for them
    sends it (only verified identifiers link existing customers).
    """
    for identifier in interaction.identifiers:
        identifier.verified = True
    return interaction


def consent_form(
    tenant: str,
    *,
    email: str,
    channel: pb.Channel.ValueType = pb.CHANNEL_SMS,
    purpose: pb.ConsentPurpose.ValueType = pb.CONSENT_PURPOSE_MARKETING,
    granted: bool = True,
    evidence: str = "",
    at: datetime | None = None,
) -> pb.Interaction:
    """A customer ticks (or unticks) a consent box on a web form."""
    interaction = _base(tenant, pb.CHANNEL_WEB, pb.KIND_CONSENT_CHANGE, at)
    interaction.identifiers.append(pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=email))
    interaction.web_form.form_id = "preferences"
    interaction.consent.CopyFrom(
        pb.ConsentChange(channel=channel, purpose=purpose, granted=granted, evidence=evidence)
    )
    interaction.consent.source = pb.CONSENT_SOURCE_WEB_FORM
    return interaction


def consent_by_agent(
    tenant: str,
    customer_id: str,
    *,
    channel: pb.Channel.ValueType = pb.CHANNEL_SMS,
    purpose: pb.ConsentPurpose.ValueType = pb.CONSENT_PURPOSE_MARKETING,
    granted: bool = False,
    evidence: str = "",
    at: datetime | None = None,
) -> pb.Interaction:
    """An agent records what the customer said on the phone about their consent."""
    interaction = _base(tenant, pb.CHANNEL_AGENT_DESK, pb.KIND_CONSENT_CHANGE, at)
    interaction.direction = pb.DIRECTION_INTERNAL
    interaction.actor.CopyFrom(pb.Actor(type=pb.ACTOR_TYPE_AGENT, id="agent-1"))
    interaction.agent_action.customer_id = customer_id
    interaction.consent.CopyFrom(
        pb.ConsentChange(channel=channel, purpose=purpose, granted=granted, evidence=evidence)
    )
    interaction.consent.source = pb.CONSENT_SOURCE_AGENT_RECORDED
    return interaction


def outreach(
    tenant: str,
    customer_id: str,
    *,
    channel: pb.Channel.ValueType = pb.CHANNEL_SMS,
    purpose: pb.ConsentPurpose.ValueType = pb.CONSENT_PURPOSE_MARKETING,
    text: str = "Our spring offer is out",
    at: datetime | None = None,
) -> pb.Interaction:
    """A proactive outbound contact, as the gateway publishes it."""
    return agent_action(
        tenant,
        customer_id,
        at=at,
        outreach=pb.OutreachAction(channel=channel, purpose=purpose, text=text),
    )
