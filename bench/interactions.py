"""Interactions the benchmarks submit: inbound, from a customer, with a fresh event id."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from tsunagu.v1 import interaction_pb2 as pb


def inbound(
    tenant: str,
    channel: pb.Channel.ValueType,
    kind: pb.Kind.ValueType,
    at: datetime,
    identifiers: Iterable[pb.Identifier],
    **detail: object,
) -> pb.Interaction:
    """A customer's interaction; `detail` holds its content and channel detail messages."""
    fields = {"event_id": str(uuid.uuid4()), "tenant": tenant, "channel": channel, "kind": kind}
    interaction = pb.Interaction(**fields, **detail)  # type: ignore[arg-type]
    interaction.direction = pb.DIRECTION_INBOUND
    interaction.actor.type = pb.ACTOR_TYPE_CUSTOMER
    interaction.identifiers.extend(identifiers)
    interaction.occurred_at.FromDatetime(at)
    return interaction
