"""Voice normalisation: calls are threaded by call id, numbers become E.164."""

from __future__ import annotations

from services.ingest.channels.common import add_identifier, e164_if_valid, phone_key
from tsunagu.v1 import interaction_pb2


def normalize(interaction: interaction_pb2.Interaction, *, region: str) -> None:
    """Normalise a call event in place.

    Every leg of a call shares `conversation_ref = call:<call_id>`. Numbers are rewritten to
    E.164 when valid. For inbound calls the caller's number becomes a PHONE identifier when it
    is a phone number at all (a withheld caller id such as "anonymous" is not), verified: the
    network vouches for the caller id. A transcript
    becomes the content text when there is none.

    Args:
        interaction: The pipeline's copy of the interaction (mutated).
        region: Tenant's default phone region for national-format numbers.
    """
    call = interaction.call
    call.call_id = call.call_id.strip()
    interaction.conversation_ref = f"call:{call.call_id}"
    caller = phone_key(call.from_number, region=region) if call.from_number.strip() else None
    call.from_number = e164_if_valid(call.from_number, region=region)
    call.to_number = e164_if_valid(call.to_number, region=region)
    if interaction.direction == interaction_pb2.DIRECTION_INBOUND and caller is not None:
        # The telephony network delivered the call from this number: verified.
        add_identifier(interaction, interaction_pb2.IDENTIFIER_KIND_PHONE, caller[0], verified=True)
    if not interaction.content.text and call.transcript:
        interaction.content.text = call.transcript
