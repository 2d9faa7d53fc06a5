"""Conversions between stored documents and the protobuf contracts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

from tsunagu.bus.subjects import CHANNEL_TOKENS, CHANNELS_BY_TOKEN
from tsunagu.v1 import interaction_pb2, timeline_pb2

Document = dict[str, Any]


class IdentifierDoc(TypedDict):
    """An identifier as stored on an interaction and a profile (normalised, keyed)."""

    kind: str
    value: str
    network: NotRequired[str]
    # True when a channel verified it (an unverified identifier links no customers).
    verified: NotRequired[bool]
    # False when it matches nobody; `protected` says why ("invalid", "blocklisted", "shared").
    matchable: NotRequired[bool]
    protected: NotRequired[str]


def enum_tokens(enum: EnumDescriptor, prefix: str) -> dict[int, str]:
    """Each value of a contract enum → its stored token (`KIND_NOTE` → "note")."""
    return {v.number: v.name.removeprefix(prefix).lower() for v in enum.values}


def by_token(tokens: dict[int, str]) -> dict[str, int]:
    """The reverse of `enum_tokens`: stored token → enum value."""
    return {token: number for number, token in tokens.items()}


KIND_TOKENS = enum_tokens(interaction_pb2.Kind.DESCRIPTOR, "KIND_")
KINDS_BY_TOKEN = by_token(KIND_TOKENS)
IDENTIFIER_TOKENS = enum_tokens(interaction_pb2.IdentifierKind.DESCRIPTOR, "IDENTIFIER_KIND_")
IDENTIFIERS_BY_TOKEN = by_token(IDENTIFIER_TOKENS)
DIRECTION_TOKENS = enum_tokens(interaction_pb2.Direction.DESCRIPTOR, "DIRECTION_")


def aware(value: datetime) -> datetime:
    """Stored datetimes are UTC; some stores hand them back naive."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def to_timestamp(value: datetime | None) -> Timestamp:
    stamp = Timestamp()
    if value is not None:
        stamp.FromDatetime(aware(value))
    return stamp


def interaction_key(tenant: str, event_id: str) -> str:
    return f"{tenant}/{event_id}"


def identifier_to_proto(ident: Mapping[str, Any]) -> interaction_pb2.Identifier:
    """A stored (normalised) identifier as the contract's `Identifier`."""
    return interaction_pb2.Identifier(
        kind=IDENTIFIERS_BY_TOKEN.get(ident["kind"], 0),  # type: ignore[arg-type]
        value=ident["value"],
        network=ident.get("network", ""),
        verified=bool(ident.get("verified", False)),
    )


def customer_to_proto(doc: Mapping[str, Any]) -> timeline_pb2.Customer:
    customer = timeline_pb2.Customer(
        id=doc["_id"],
        tenant=doc["tenant"],
        display_name=doc.get("display_name", ""),
        interaction_count=doc.get("interaction_count", 0),
        merged_ids=doc.get("merged_ids", []),
    )
    for ident in doc.get("identifiers", []):
        if ident.get("matchable", True):
            customer.identifiers.append(identifier_to_proto(ident))
        else:
            customer.protected_identifiers.append(
                timeline_pb2.ProtectedIdentifier(
                    identifier=identifier_to_proto(ident),
                    reason=ident.get("protected", "invalid"),
                )
            )
    customer.channels.extend(
        CHANNELS_BY_TOKEN[c]  # type: ignore[misc]
        for c in doc.get("channels", [])
        if c in CHANNELS_BY_TOKEN
    )
    if doc.get("first_contact_at"):
        customer.first_contact_at.CopyFrom(to_timestamp(doc["first_contact_at"]))
    if doc.get("last_contact_at"):
        customer.last_contact_at.CopyFrom(to_timestamp(doc["last_contact_at"]))
    for channel, count in doc.get("by_channel", {}).items():
        customer.interactions_by_channel[channel] = count
    customer.open_case_id = doc.get("open_case_id") or ""
    if remark := doc.get("last_agent_remark"):
        customer.last_agent_remark.CopyFrom(remark_to_proto(remark))
    customer.consents.extend(
        consent_to_proto(c) for _, c in sorted(doc.get("consents", {}).items())
    )
    return customer


def consent_to_proto(doc: Mapping[str, Any]) -> interaction_pb2.ConsentState:
    """One current consent decision as stored by the profile (`profiles.consents`)."""
    purposes, sources = interaction_pb2.ConsentPurpose, interaction_pb2.ConsentSource
    state = interaction_pb2.ConsentState(
        channel=CHANNELS_BY_TOKEN.get(doc["channel"], 0),  # type: ignore[arg-type]
        purpose=purposes.Value(f"CONSENT_PURPOSE_{doc['purpose'].upper()}"),
        granted=bool(doc["granted"]),
        source=sources.Value(f"CONSENT_SOURCE_{doc['source'].upper()}"),
        event_id=doc.get("event_id", ""),
    )
    state.changed_at.CopyFrom(to_timestamp(doc["changed_at"]))
    return state


def remark_to_proto(doc: Document) -> timeline_pb2.AgentRemark:
    """What the last agent said (stored by the projection from a note or handoff)."""
    agent = doc.get("agent", {})
    remark = timeline_pb2.AgentRemark(
        event_id=doc.get("event_id", ""),
        kind=KINDS_BY_TOKEN.get(doc.get("kind", ""), 0),  # type: ignore[arg-type]
        agent=interaction_pb2.Actor(
            type=interaction_pb2.ACTOR_TYPE_AGENT,
            id=agent.get("id", ""),
            display_name=agent.get("display_name", ""),
        ),
        text=doc.get("text", ""),
        open_questions=doc.get("open_questions", []),
        case_id=doc.get("case_id", ""),
    )
    if doc.get("occurred_at"):
        remark.occurred_at.CopyFrom(to_timestamp(doc["occurred_at"]))
    return remark


def channel_token(channel: int) -> str:
    return CHANNEL_TOKENS.get(channel, "unspecified")
