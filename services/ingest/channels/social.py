"""Social normalisation: network and handle are canonicalised, threads keyed per network."""

from __future__ import annotations

from services.ingest.channels.common import add_identifier
from services.ingest.errors import InvalidInteraction
from tsunagu.identifiers import IdentifierFormatError
from tsunagu.identifiers.social import normalize_handle, normalize_network
from tsunagu.v1 import interaction_pb2


def normalize(interaction: interaction_pb2.Interaction, *, region: str) -> None:
    """Normalise a social interaction in place.

    The network is lower-cased and the handle normalised as identity resolution keys it; an
    inbound message adds the SOCIAL_HANDLE identifier, verified (the network authenticated
    the sender). The conversation is
    `social:<network>:<thread_id>`, or `social:<network>:<handle>` without a thread.

    Args:
        interaction: The pipeline's copy of the interaction (mutated).
        region: Tenant's default phone region (unused: no phone numbers here).

    Raises:
        InvalidInteraction: The network or handle cannot be normalised.
    """
    del region  # every normaliser has the same signature; social has no phone numbers
    social = interaction.social
    try:
        social.network = normalize_network(social.network)
    except IdentifierFormatError as exc:
        raise InvalidInteraction("social.network", str(exc)) from exc
    try:
        social.handle = normalize_handle(social.handle)
    except IdentifierFormatError as exc:
        raise InvalidInteraction("social.handle", str(exc)) from exc
    social.thread_id = social.thread_id.strip()
    if interaction.direction == interaction_pb2.DIRECTION_INBOUND:
        add_identifier(
            interaction,
            interaction_pb2.IDENTIFIER_KIND_SOCIAL_HANDLE,
            social.handle,
            network=social.network,
            # The network authenticated the account that sent it.
            verified=True,
        )
    interaction.conversation_ref = f"social:{social.network}:{social.thread_id or social.handle}"
