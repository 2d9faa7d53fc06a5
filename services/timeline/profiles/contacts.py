"""What one interaction tells about its customer: the `Contact` the profile is updated with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.timeline.profiles.consents import consent_of
from services.timeline.profiles.profile import Contact
from services.timeline.profiles.signals import ADDRESS_FIELDS, NAME_FIELDS
from services.timeline.store.documents import IdentifierDoc, channel_token
from tsunagu.v1 import interaction_pb2


def _form_value(interaction: interaction_pb2.Interaction, names: frozenset[str]) -> str:
    """The first non-empty web form field among `names`, "" for other interactions."""
    if interaction.WhichOneof("detail") != "web_form":
        return ""
    for form_field in interaction.web_form.fields:
        if form_field.name.strip().casefold() in names and form_field.value.strip():
            return form_field.value.strip()
    return ""


def display_name(interaction: interaction_pb2.Interaction) -> str:
    """The name the customer goes by in this interaction ("" when it gives none).

    A customer actor's display name wins; otherwise a web form's name field is the name the
    customer typed in, and counts the same.
    """
    if interaction.actor.type == interaction_pb2.ACTOR_TYPE_CUSTOMER and (
        interaction.actor.display_name
    ):
        return interaction.actor.display_name
    return _form_value(interaction, NAME_FIELDS)


def contact_from(
    interaction: interaction_pb2.Interaction,
    *,
    occurred_at: datetime,
    identifiers: Sequence[IdentifierDoc],
    remark: Mapping[str, Any] | None,
) -> Contact:
    """The profile update of one interaction (`identifiers` as stored on its document)."""
    return Contact(
        channel=channel_token(interaction.channel),
        occurred_at=occurred_at,
        display_name=display_name(interaction),
        identifiers=tuple(identifiers),
        # A postal address the customer typed into a web form: a soft signal.
        address=_form_value(interaction, ADDRESS_FIELDS),
        remark=remark,
        event_id=interaction.event_id,
        verified=any(ident.get("verified") for ident in identifiers),
        consent=consent_of(interaction, occurred_at=occurred_at),
    )
