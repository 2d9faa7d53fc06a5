"""Chat normalisation: the widget session is the conversation."""

from __future__ import annotations

from tsunagu.v1 import interaction_pb2


def normalize(interaction: interaction_pb2.Interaction, *, region: str) -> None:
    """Normalise a chat interaction in place.

    `conversation_ref` defaults to `chat:<session_id>`; visitor and login identifiers are
    kept as the widget gave them (the pipeline normalises every identifier afterwards).

    Args:
        interaction: The pipeline's copy of the interaction (mutated).
        region: Tenant's default phone region (unused: chat carries no phone numbers).
    """
    del region  # every normaliser has the same signature; chat has no phone numbers
    chat = interaction.chat
    chat.session_id = chat.session_id.strip()
    interaction.conversation_ref = interaction.conversation_ref.strip()
    if not interaction.conversation_ref and chat.session_id:
        interaction.conversation_ref = f"chat:{chat.session_id}"
