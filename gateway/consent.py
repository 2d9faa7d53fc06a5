"""A customer's consent per channel x purpose, as agents see it on the profile."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Self

import strawberry

from gateway.agent_actions import PlannedAction, check_text
from gateway.enums import CHANNELS, CONSENT_PURPOSES, Channel, ConsentPurpose, ProtoEnumMapping
from gateway.scalars import instant, optional, optional_id
from tsunagu.v1 import interaction_pb2


@strawberry.enum(description="How a consent decision reached us.")
class ConsentSource(enum.Enum):
    CUSTOMER_CHANNEL = strawberry.enum_value(
        "CUSTOMER_CHANNEL", description="The customer said so on a channel (a reply, a chat)."
    )
    AGENT_RECORDED = strawberry.enum_value(
        "AGENT_RECORDED", description="An agent recorded what the customer said (the phone)."
    )
    WEB_FORM = "WEB_FORM"


CONSENT_SOURCES = ProtoEnumMapping(ConsentSource, interaction_pb2.ConsentSource, "CONSENT_SOURCE_")


@strawberry.type(
    description=(
        "The customer's current decision for one channel x purpose: the newest one wins "
        "(across merged customers too). Each change is also an entry on the timeline."
    )
)
class Consent:
    channel: Channel
    purpose: ConsentPurpose
    granted: bool = strawberry.field(description="False: withdrawn (or never given).")
    source: ConsentSource | None
    changed_at: datetime | None
    event_id: strawberry.ID | None = strawberry.field(
        description="The consent change on the timeline that decided it (with its evidence)."
    )

    @classmethod
    def known(cls, states: Iterable[interaction_pb2.ConsentState]) -> list[Self]:
        """The decisions this gateway can name (a channel or purpose newer than it: left out)."""
        known: list[Self] = []
        for state in states:
            channel = CHANNELS.from_proto(state.channel)
            purpose = CONSENT_PURPOSES.from_proto(state.purpose)
            if channel is None or purpose is None:
                continue
            known.append(
                cls(
                    channel=channel,
                    purpose=purpose,
                    granted=state.granted,
                    source=CONSENT_SOURCES.from_proto(state.source),
                    changed_at=instant(state, "changed_at"),
                    event_id=optional_id(state.event_id),
                )
            )
        return known


@strawberry.type(description="The decision a CONSENT_CHANGE entry of the timeline records.")
class ConsentChange:
    channel: Channel | None
    purpose: ConsentPurpose | None
    granted: bool
    source: ConsentSource | None
    evidence: str | None = strawberry.field(
        description="What the customer said or ticked, in their words (personal, masked)."
    )

    @classmethod
    def of(cls, interaction: interaction_pb2.Interaction) -> Self | None:
        """The interaction's consent decision; ``None`` for other interactions."""
        if not interaction.HasField("consent"):
            return None
        change = interaction.consent
        return cls(
            channel=CHANNELS.from_proto(change.channel),
            purpose=CONSENT_PURPOSES.from_proto(change.purpose),
            granted=change.granted,
            source=CONSENT_SOURCES.from_proto(change.source),
            evidence=optional(change.evidence),
        )


MAX_EVIDENCE = 2_000
"""What the customer said, quoted by the agent: a sentence or two (the bus allows 8 KiB)."""


def record_consent(
    *, channel: Channel, purpose: ConsentPurpose, granted: bool, evidence: str | None
) -> PlannedAction:
    """An agent records a consent the customer gave or withdrew (on the phone)."""
    change = interaction_pb2.ConsentChange(
        channel=CHANNELS.to_proto(channel),
        purpose=CONSENT_PURPOSES.to_proto(purpose),
        granted=granted,
        source=interaction_pb2.CONSENT_SOURCE_AGENT_RECORDED,
        evidence=check_text("evidence", evidence, limit=MAX_EVIDENCE, required=False),
    )
    return PlannedAction(
        interaction_pb2.KIND_CONSENT_CHANGE, interaction_pb2.AgentActionDetail(), consent=change
    )
