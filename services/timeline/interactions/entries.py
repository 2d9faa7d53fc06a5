"""Interactions as stored documents, and stored documents as timeline entries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from services.timeline.cursor import encode_cursor
from services.timeline.errors import PermanentError
from services.timeline.interactions.model import InteractionDoc
from services.timeline.store.documents import (
    DIRECTION_TOKENS,
    KIND_TOKENS,
    IdentifierDoc,
    aware,
    channel_token,
    interaction_key,
    to_timestamp,
)
from tsunagu.bus.subjects import CHANNELS_BY_TOKEN
from tsunagu.v1 import interaction_pb2, timeline_pb2


def occurred_at(interaction: interaction_pb2.Interaction) -> datetime:
    """When the interaction happened (UTC).

    Raises:
        PermanentError: The timestamp is out of the range a datetime holds.
    """
    try:
        return interaction.occurred_at.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise PermanentError(f"occurred_at out of range: {exc}") from exc


def interaction_document(
    interaction: interaction_pb2.Interaction,
    *,
    customer_id: str,
    occurred_at: datetime,
    recorded_at: datetime,
    identifiers: Sequence[IdentifierDoc],
    case_id: str = "",
    switched_from: str = "",
) -> InteractionDoc:
    """The log entry of an interaction, not projected yet."""
    doc: InteractionDoc = {
        "_id": interaction_key(interaction.tenant, interaction.event_id),
        "tenant": interaction.tenant,
        "event_id": interaction.event_id,
        "customer_id": customer_id,
        # Where identity resolution put it first: a split returns it there.
        "origin_customer_id": customer_id,
        "channel": channel_token(interaction.channel),
        "kind": KIND_TOKENS.get(interaction.kind, "unspecified"),
        "direction": DIRECTION_TOKENS.get(interaction.direction, "unspecified"),
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
        "conversation_ref": interaction.conversation_ref,
        "identifiers": list(identifiers),
        # Stored as BSON binary (the driver's mapping of `bytes`), read back with `bytes()`.
        "raw": interaction.SerializeToString(),
        "projected": False,
    }
    if case_id:
        doc["case_id"] = case_id
    if switched_from:
        doc["switched_from"] = switched_from
    return doc


def interaction_of(doc: Mapping[str, Any]) -> interaction_pb2.Interaction:
    """The interaction a log entry was recorded from."""
    return interaction_pb2.Interaction.FromString(bytes(doc["raw"]))


def entry_to_proto(doc: InteractionDoc) -> timeline_pb2.TimelineEntry:
    """A stored interaction as a timeline entry, with its page cursor."""
    return timeline_pb2.TimelineEntry(
        interaction=interaction_of(doc),
        customer_id=doc["customer_id"],
        recorded_at=to_timestamp(doc.get("recorded_at")),
        cursor=encode_cursor(aware(doc["occurred_at"]), doc["event_id"]),
        case_id=doc.get("case_id", ""),
        switched_from=CHANNELS_BY_TOKEN.get(  # type: ignore[arg-type]
            doc.get("switched_from", ""), interaction_pb2.CHANNEL_UNSPECIFIED
        ),
    )
