"""The channel-independent check of an `Interaction`: what every producer publishes."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message

from tsunagu.contracts.channels import CHANNEL_RULES, ChannelRules, channel_label
from tsunagu.contracts.errors import ContractViolation, Reason
from tsunagu.contracts.ids import canonical_event_id, check_tenant
from tsunagu.contracts.limits import (
    Limits,
    check_event_size,
    check_identifier_count,
    check_occurred_at,
    check_strings,
)
from tsunagu.v1 import interaction_pb2 as pb


def check_interaction(
    interaction: pb.Interaction, *, limits: Limits, now: datetime, channel: int | None = None
) -> None:
    """Check an interaction against the contract; never mutates it.

    Checks, in order: canonical event id, tenant name, channel (known, and `channel` when
    given), kind and direction (known, the kind one of the channel's), actor type, occurred_at
    (after 2000, at most the clock skew ahead of `now`), identifier count, the detail matching
    the channel with its required fields, every string (control characters, byte limits), and
    the serialized size.

    Args:
        interaction: The interaction as it would be (or was) published.
        limits: Size and time bounds.
        now: Current time (timezone-aware).
        channel: The only channel the caller accepts, if it accepts one only.

    Raises:
        ContractViolation: The first rule broken, with its field path and reason code.
        ValueError: `now` is naive.
    """
    if canonical_event_id(interaction.event_id) != interaction.event_id:
        raise ContractViolation(
            "event_id",
            "not in canonical form (lower-case UUID or upper-case ULID)",
            code=Reason.EVENT_ID_INVALID,
        )
    check_tenant(interaction.tenant)
    rules = channel_rules(interaction.channel, expected=channel)
    check_kind(interaction.kind, interaction.channel, rules)
    check_enum(
        "direction", interaction.direction, pb.Direction.DESCRIPTOR, Reason.DIRECTION_INVALID
    )
    check_occurred_at(interaction, limits=limits, now=now)
    if interaction.actor.type not in pb.ActorType.DESCRIPTOR.values_by_number:
        raise ContractViolation(
            "actor.type",
            f"unknown actor type value {interaction.actor.type}",
            code=Reason.ACTOR_INVALID,
        )
    check_identifier_count(interaction, limits=limits)
    check_detail(interaction, rules)
    check_consent(interaction)
    check_strings(interaction, limits=limits)
    check_event_size(interaction, limits=limits)


def channel_rules(channel: int, *, expected: int | None = None) -> ChannelRules:
    """The rules of `channel`, which must be known (and `expected`, when given).

    Raises:
        ContractViolation: `channel_invalid`.
    """
    if expected is not None and channel != expected:
        raise ContractViolation(
            "channel",
            f"got {channel_label(channel)}: this service accepts {channel_label(expected)} only",
            code=Reason.CHANNEL_INVALID,
        )
    rules = CHANNEL_RULES.get(channel)
    if rules is None:
        raise ContractViolation("channel", channel_label(channel), code=Reason.CHANNEL_INVALID)
    return rules


def check_enum(name: str, value: int, descriptor: EnumDescriptor, code: Reason) -> None:
    """A required enum: set, and a number the enum knows.

    Raises:
        ContractViolation: With `code`.
    """
    # proto3 keeps unknown enum numbers as they came over the wire: check them explicitly.
    if value == 0:
        raise ContractViolation(name, "required (must not be UNSPECIFIED)", code=code)
    if value not in descriptor.values_by_number:
        raise ContractViolation(name, f"unknown {name} value {value}", code=code)


def check_kind(kind: int, channel: int, rules: ChannelRules) -> None:
    """The kind is known and one of the channel's.

    Raises:
        ContractViolation: `kind_invalid`.
    """
    check_enum("kind", kind, pb.Kind.DESCRIPTOR, Reason.KIND_INVALID)
    if kind not in rules.kinds:
        expected = ", ".join(sorted(pb.Kind.Name(pb.Kind.ValueType(k)) for k in rules.kinds))
        raise ContractViolation(
            "kind",
            f"{pb.Kind.Name(pb.Kind.ValueType(kind))} is not accepted on "
            f"{channel_label(channel)}; expected {expected}",
            code=Reason.KIND_INVALID,
        )


def check_detail(interaction: pb.Interaction, rules: ChannelRules) -> None:
    """The detail is the channel's, with its required fields (an agent action: its action).

    Raises:
        ContractViolation: `detail_invalid`.
    """
    label = channel_label(interaction.channel)
    present = interaction.WhichOneof("detail")
    if present is None:
        raise ContractViolation(
            rules.detail, f"required for {label} interactions", code=Reason.DETAIL_INVALID
        )
    if present != rules.detail:
        raise ContractViolation(
            present,
            f"{present} detail on a {label} interaction; expected {rules.detail}",
            code=Reason.DETAIL_INVALID,
        )
    detail: Message = getattr(interaction, rules.detail)
    for name in rules.required:
        value: str = getattr(detail, name)
        if not value.strip():
            raise ContractViolation(
                f"{rules.detail}.{name}", "required", code=Reason.DETAIL_INVALID
            )
    if (
        present == "agent_action"
        and interaction.agent_action.WhichOneof("action") is None
        # An agent recording a consent: the decision is `Interaction.consent`.
        and interaction.kind != pb.KIND_CONSENT_CHANGE
    ):
        raise ContractViolation("agent_action", "names no action", code=Reason.DETAIL_INVALID)


def check_consent(interaction: pb.Interaction) -> None:
    """A consent change carries a decision (a known channel, purpose and source; its evidence
    is bounded with the other strings); an outreach names a known channel and purpose; no
    other event carries either.

    Raises:
        ContractViolation: `detail_invalid`.
    """
    is_change = interaction.kind == pb.KIND_CONSENT_CHANGE
    if interaction.HasField("consent") != is_change:
        raise ContractViolation(
            "consent",
            "required for KIND_CONSENT_CHANGE" if is_change else "only on KIND_CONSENT_CHANGE",
            code=Reason.DETAIL_INVALID,
        )
    if is_change:
        consent = interaction.consent
        _check_channel_purpose("consent", consent.channel, consent.purpose)
        if consent.source not in pb.ConsentSource.DESCRIPTOR.values_by_number or not (
            consent.source
        ):
            raise ContractViolation(
                "consent.source", "unknown or unspecified", code=Reason.DETAIL_INVALID
            )
    is_outreach = interaction.kind == pb.KIND_OUTREACH
    has_outreach = (
        interaction.WhichOneof("detail") == "agent_action"
        and interaction.agent_action.WhichOneof("action") == "outreach"
    )
    if is_outreach != has_outreach:
        raise ContractViolation(
            "agent_action.outreach",
            "KIND_OUTREACH and the outreach action go together",
            code=Reason.DETAIL_INVALID,
        )
    if is_outreach:
        outreach = interaction.agent_action.outreach
        _check_channel_purpose("agent_action.outreach", outreach.channel, outreach.purpose)


_CONSENT_CHANNELS = frozenset(
    {pb.CHANNEL_CHAT, pb.CHANNEL_VOICE, pb.CHANNEL_EMAIL, pb.CHANNEL_SMS, pb.CHANNEL_SOCIAL}
)


def _check_channel_purpose(path: str, channel: int, purpose: int) -> None:
    """A customer-facing channel (consent is about contacting the customer) and a purpose."""
    if channel not in _CONSENT_CHANNELS:
        raise ContractViolation(
            f"{path}.channel",
            f"{channel_label(channel)} is not a channel a customer is contacted on",
            code=Reason.DETAIL_INVALID,
        )
    if purpose not in pb.ConsentPurpose.DESCRIPTOR.values_by_number or not purpose:
        raise ContractViolation(
            f"{path}.purpose", f"unknown purpose value {purpose}", code=Reason.DETAIL_INVALID
        )
