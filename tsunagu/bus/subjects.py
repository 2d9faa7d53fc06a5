"""Stream and subject names; the tenant is a token of every subject."""

from __future__ import annotations

from tsunagu.v1 import interaction_pb2

INTERACTIONS_STREAM = "INTERACTIONS"
INTERACTIONS_SUBJECTS = "interactions.>"
DEAD_LETTER_STREAM = "INTERACTIONS_DLQ"
DEAD_LETTER_SUBJECTS = "dlq.interactions.>"
TIMELINE_UPDATED_PREFIX = "timeline.updated"
# A short-lived capture of the notices (published on core NATS), for followers catching up.
TIMELINE_UPDATED_STREAM = "TIMELINE_UPDATED"
TIMELINE_UPDATED_SUBJECTS = f"{TIMELINE_UPDATED_PREFIX}.>"
IDENTITY_STREAM = "IDENTITY"
IDENTITY_SUBJECTS = "identity.>"

# Subject tokens of the channels: lower-case enum names without the prefix.
CHANNEL_TOKENS: dict[int, str] = {
    value.number: value.name.removeprefix("CHANNEL_").lower()
    for value in interaction_pb2.Channel.DESCRIPTOR.values
    if value.number != interaction_pb2.CHANNEL_UNSPECIFIED
}
CHANNELS_BY_TOKEN: dict[str, int] = {token: number for number, token in CHANNEL_TOKENS.items()}


def interaction_subject(tenant: str, channel: int) -> str:
    """`interactions.<tenant>.<channel>`: where an interaction of that tenant and channel goes."""
    return f"interactions.{tenant}.{CHANNEL_TOKENS[channel]}"


def dead_letter_subject(original: str) -> str:
    """The dead-letter subject of a message that exhausted its deliveries."""
    return f"dlq.{original}"


def identity_subject(change: str, tenant: str) -> str:
    """`identity.merged.<tenant>` / `identity.split.<tenant>`: a merge or split committed."""
    return f"identity.{change}.{tenant}"


def timeline_updated_subject(tenant: str, customer_id: str) -> str:
    """`timeline.updated.<tenant>.<customer>`: published after the timeline committed an event."""
    return f"{TIMELINE_UPDATED_PREFIX}.{tenant}.{customer_id}"
