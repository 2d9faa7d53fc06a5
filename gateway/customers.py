"""Customers as GraphQL sees them: one person across channels, with what agents said last."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Self

import strawberry

from gateway.consent import Consent
from gateway.enums import CHANNELS, Channel, Kind
from gateway.from_proto import read_field
from gateway.identifiers import Actor, Identifier, ProtectedIdentifier
from gateway.scalars import instant, optional, optional_id
from tsunagu.v1 import timeline_pb2

_log = logging.getLogger(__name__)


@strawberry.type
class ChannelCount:
    channel: Channel
    count: int


@strawberry.type(description="What the last agent said about the customer (a note or a handoff).")
class AgentRemark:
    """Mirrors ``tsunagu.v1.AgentRemark``, read by ``gateway.from_proto``."""

    event_id: strawberry.ID
    kind: Kind | None
    agent: Actor | None
    text: str | None
    open_questions: list[str]
    occurred_at: datetime | None
    case_id: strawberry.ID | None


@strawberry.type
class CustomerFields:
    """What a customer is, without its links to other nodes (see ``gateway.nodes``)."""

    id: strawberry.ID
    display_name: str | None
    identifiers: list[Identifier]
    channels: list[Channel]
    first_contact_at: datetime | None
    last_contact_at: datetime | None
    interaction_count: int
    interactions_by_channel: list[ChannelCount]
    merged_ids: list[strawberry.ID] = strawberry.field(
        description="Ids of customers merged into this one; they still resolve to it."
    )
    last_agent_remark: AgentRemark | None = strawberry.field(
        description="What the last agent said (note or handoff): shown at the top of the view."
    )
    open_case_id: strawberry.ID | None = strawberry.field(
        description="The customer's open (not resolved) case, if any."
    )
    protected_identifiers: list[ProtectedIdentifier] = strawberry.field(
        description=(
            "Identifiers kept on the customer but never used to match customers "
            "(blocklisted, shared or invalid), each with its reason."
        )
    )
    consents: list[Consent] = strawberry.field(
        description=(
            "Consent per channel x purpose (no entry: never asked). Outreach needs a granted one."
        )
    )

    @classmethod
    def from_proto(cls, customer: timeline_pb2.Customer) -> Self:
        """Convert a customer profile."""
        channels = (CHANNELS.from_proto(channel) for channel in customer.channels)
        return cls(
            id=strawberry.ID(customer.id),
            display_name=optional(customer.display_name),
            identifiers=Identifier.known(customer.identifiers),
            channels=[channel for channel in channels if channel is not None],
            first_contact_at=instant(customer, "first_contact_at"),
            last_contact_at=instant(customer, "last_contact_at"),
            interaction_count=customer.interaction_count,
            interactions_by_channel=_channel_counts(customer),
            merged_ids=[strawberry.ID(merged) for merged in customer.merged_ids],
            last_agent_remark=read_field(customer, "last_agent_remark", AgentRemark),
            open_case_id=optional_id(customer.open_case_id),
            protected_identifiers=ProtectedIdentifier.known(customer.protected_identifiers),
            consents=Consent.known(customer.consents),
        )


def _channel_counts(customer: timeline_pb2.Customer) -> list[ChannelCount]:
    counts: list[ChannelCount] = []
    # The map is keyed by channel name; accept "CHANNEL_CHAT", "CHAT" or "chat" alike.
    for key, count in customer.interactions_by_channel.items():
        channel = CHANNELS.from_name(key)
        if channel is None:
            _log.warning(
                "customer %s: unknown channel %r in interactions_by_channel", customer.id, key
            )
            continue
        counts.append(ChannelCount(channel=channel, count=count))
    order = list(Channel)
    return sorted(counts, key=lambda entry: order.index(entry.channel))
