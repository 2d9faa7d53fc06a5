"""SMS normalisation: numbers become E.164, the customer's number is the conversation."""

from __future__ import annotations

from services.ingest.channels.common import add_identifier, e164_if_valid, phone_key
from services.ingest.errors import InvalidInteraction
from tsunagu.v1 import interaction_pb2


def normalize(interaction: interaction_pb2.Interaction, *, region: str) -> None:
    """Normalise an SMS in place.

    Numbers are rewritten to E.164 when valid (an outbound sender may be a short code or an
    alphanumeric sender id, kept as given). An inbound message's sender is the customer: it
    must be a phone number and becomes a PHONE identifier, verified (the carrier delivered it).
    The conversation is keyed by the customer's number: `sms:<from_number>` inbound,
    `sms:<to_number>` otherwise.

    Args:
        interaction: The pipeline's copy of the interaction (mutated).
        region: Tenant's default phone region for national-format numbers.

    Raises:
        InvalidInteraction: An inbound message whose sender is not a phone number.
    """
    sms = interaction.sms
    inbound = interaction.direction == interaction_pb2.DIRECTION_INBOUND
    customer_number = (sms.from_number if inbound else sms.to_number).strip()
    customer_key = phone_key(customer_number, region=region) if customer_number else None
    if inbound:
        if customer_key is None:
            raise InvalidInteraction(
                "sms.from_number", "the sender of an inbound SMS must be a phone number"
            )
        # The carrier delivered the message from this number: verified.
        add_identifier(
            interaction, interaction_pb2.IDENTIFIER_KIND_PHONE, customer_key[0], verified=True
        )
    sms.from_number = e164_if_valid(sms.from_number, region=region)
    sms.to_number = e164_if_valid(sms.to_number, region=region)
    # The identifier key (not the display form) threads the conversation, so an inbound and
    # an outbound message with one invalid-but-parseable number still share a thread.
    thread_key = customer_key[0] if customer_key is not None else customer_number
    if thread_key:
        interaction.conversation_ref = f"sms:{thread_key}"
