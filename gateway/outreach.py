"""Proactive outreach: recorded as an outbound contact, only with the customer's consent."""

from __future__ import annotations

from gateway.agent_actions import PlannedAction, check_text
from gateway.context import Info
from gateway.enums import CHANNELS, CONSENT_PURPOSES, Channel, ConsentPurpose
from gateway.errors import ErrorCode, GatewayError
from tsunagu.v1 import interaction_pb2 as pb

MAX_OUTREACH_TEXT = 5_000


def outreach(*, channel: Channel, purpose: ConsentPurpose, text: str) -> PlannedAction:
    """What the agent sent the customer, on which channel, for which purpose (OUTBOUND)."""
    checked = check_text("text", text, limit=MAX_OUTREACH_TEXT)
    action = pb.OutreachAction(
        channel=CHANNELS.to_proto(channel), purpose=CONSENT_PURPOSES.to_proto(purpose), text=checked
    )
    return PlannedAction(
        pb.KIND_OUTREACH,
        pb.AgentActionDetail(outreach=action),
        direction=pb.DIRECTION_OUTBOUND,
        text=checked,
    )


async def require_consent(info: Info, action: PlannedAction, customer_id: str) -> None:
    """Refuse an outreach the live customer has not consented to, before it is published.

    The timeline checks again when it records the event (a withdrawal may land in between).

    Raises:
        GatewayError: ``CONSENT_REQUIRED``.
    """
    wanted = action.detail.outreach
    customer = await info.context.loaders.customers.load(customer_id)
    granted = customer is not None and any(
        state.channel == wanted.channel and state.purpose == wanted.purpose and state.granted
        for state in customer.consents
    )
    if not granted:
        channel = pb.Channel.Name(wanted.channel).removeprefix("CHANNEL_")
        purpose = pb.ConsentPurpose.Name(wanted.purpose).removeprefix("CONSENT_PURPOSE_")
        raise GatewayError(
            ErrorCode.CONSENT_REQUIRED,
            f"Customer {customer_id} has not consented to {channel} contact for {purpose}.",
        )
