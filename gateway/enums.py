"""GraphQL enums and their one mapping to and from the proto enums of ``tsunagu.v1``."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import strawberry

from tsunagu.v1 import interaction_pb2, timeline_pb2

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper


@strawberry.enum(description="Channel the customer (or the agent) used.")
class Channel(enum.Enum):
    CHAT = "CHAT"
    VOICE = "VOICE"
    EMAIL = "EMAIL"
    SMS = "SMS"
    SOCIAL = "SOCIAL"
    WEB = "WEB"
    AGENT_DESK = strawberry.enum_value(
        "AGENT_DESK", description="Agent-desk actions not tied to a customer-facing channel."
    )


@strawberry.enum(description="What happened.")
class Kind(enum.Enum):
    MESSAGE = "MESSAGE"
    CALL_STARTED = "CALL_STARTED"
    CALL_TRANSFERRED = "CALL_TRANSFERRED"
    CALL_ENDED = "CALL_ENDED"
    EMAIL = "EMAIL"
    FORM_SUBMISSION = "FORM_SUBMISSION"
    NOTE = "NOTE"
    HANDOFF = "HANDOFF"
    ESCALATION = "ESCALATION"
    PROGRESS_UPDATE = "PROGRESS_UPDATE"
    TRANSFER = "TRANSFER"
    RESOLUTION = "RESOLUTION"
    TAG = "TAG"
    CSAT_RESPONSE = "CSAT_RESPONSE"
    CANCELLATION_REQUEST = "CANCELLATION_REQUEST"
    CANCELLATION_OUTCOME = "CANCELLATION_OUTCOME"
    CONSENT_CHANGE = "CONSENT_CHANGE"
    CUSTOMERS_MERGED = "CUSTOMERS_MERGED"
    MERGE_SPLIT = "MERGE_SPLIT"
    MERGE_SUGGESTION_DISMISSED = "MERGE_SUGGESTION_DISMISSED"
    FOLLOW_UP_COMPLETED = "FOLLOW_UP_COMPLETED"
    OUTREACH = "OUTREACH"


@strawberry.enum
class Direction(enum.Enum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"
    INTERNAL = "INTERNAL"


@strawberry.enum(description="Kind of customer identifier.")
class IdentifierKind(enum.Enum):
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    CHAT_VISITOR = strawberry.enum_value(
        "CHAT_VISITOR", description="Anonymous chat widget visitor id."
    )
    SOCIAL_HANDLE = strawberry.enum_value(
        "SOCIAL_HANDLE", description="Handle on a social network; `network` names it."
    )
    EXTERNAL_CRM_ID = strawberry.enum_value(
        "EXTERNAL_CRM_ID", description="Id in the tenant's CRM or commerce system."
    )
    CHAT_LOGIN = strawberry.enum_value("CHAT_LOGIN", description="Login of a signed-in chat user.")


@strawberry.enum
class ActorType(enum.Enum):
    CUSTOMER = "CUSTOMER"
    AGENT = "AGENT"
    BOT = "BOT"
    SYSTEM = "SYSTEM"


@strawberry.enum(description="Why a customer asked to cancel.")
class CancellationReason(enum.Enum):
    NO_EFFECT = "NO_EFFECT"
    SURPLUS_STOCK = "SURPLUS_STOCK"
    CONDITION_IMPROVED = "CONDITION_IMPROVED"
    FINANCIAL_BURDEN = "FINANCIAL_BURDEN"
    SWITCHING_TO_COMPETITOR = "SWITCHING_TO_COMPETITOR"
    HEALTH = "HEALTH"
    OTHER = "OTHER"


@strawberry.enum
class CancellationOutcome(enum.Enum):
    RETAINED = "RETAINED"
    CANCELLED = "CANCELLED"
    PENDING = "PENDING"


@strawberry.enum(description="What a customer's consent to be contacted is for.")
class ConsentPurpose(enum.Enum):
    SUPPORT = "SUPPORT"
    MARKETING = "MARKETING"
    SURVEYS = "SURVEYS"
    PROACTIVE_OUTREACH = "PROACTIVE_OUTREACH"


@strawberry.enum(description="Where a case stands.")
class CaseStatus(enum.Enum):
    OPEN = "OPEN"
    PENDING = strawberry.enum_value(
        "PENDING", description="Waiting for the customer: an agent answered last."
    )
    ESCALATED = "ESCALATED"
    RESOLVED = "RESOLVED"


@strawberry.enum(description="What a mutation achieved before it answered.")
class WriteStatus(enum.Enum):
    STORED = strawberry.enum_value(
        "STORED", description="The timeline has stored the event: reads now include it."
    )
    ACCEPTED = strawberry.enum_value(
        "ACCEPTED",
        description=(
            "The event bus has the event durably, but the timeline had not stored it when "
            "the bounded wait ran out; it appears shortly. Do not resend."
        ),
    )


_GraphQLEnum = TypeVar("_GraphQLEnum", bound=enum.Enum)
_ProtoValue = TypeVar("_ProtoValue", bound=int)


class ProtoEnumMapping(Generic[_GraphQLEnum, _ProtoValue]):
    """Maps a GraphQL enum to a proto enum whose values are ``<PREFIX><MEMBER NAME>``.

    Built at import time, so a GraphQL member without a proto counterpart fails at start.
    The proto ``*_UNSPECIFIED`` value deliberately has no GraphQL member: it means "not set".
    """

    def __init__(
        self,
        graphql_enum: type[_GraphQLEnum],
        proto_enum: _EnumTypeWrapper[_ProtoValue],
        prefix: str,
    ) -> None:
        self.graphql_enum = graphql_enum
        self.proto_enum = proto_enum
        self.prefix = prefix
        self._to_proto = {member: proto_enum.Value(prefix + member.name) for member in graphql_enum}
        self._from_proto: dict[int, _GraphQLEnum] = {
            value: member for member, value in self._to_proto.items()
        }

    def to_proto(self, member: _GraphQLEnum) -> _ProtoValue:
        """Return the proto value of a GraphQL enum member."""
        return self._to_proto[member]

    def from_proto(self, value: int) -> _GraphQLEnum | None:
        """Return the GraphQL member of a proto value; ``None`` for unset or unknown values."""
        return self._from_proto.get(value)

    def from_name(self, name: str) -> _GraphQLEnum | None:
        """Read a member from its name, with or without the proto prefix, in any case.

        Args:
            name: e.g. ``"CHANNEL_CHAT"``, ``"CHAT"`` or ``"chat"``.

        Returns:
            The member, or ``None`` when the name is not one.
        """
        normalized = name.strip().upper().removeprefix(self.prefix)
        return self.graphql_enum.__members__.get(normalized)


CHANNELS = ProtoEnumMapping(Channel, interaction_pb2.Channel, "CHANNEL_")
KINDS = ProtoEnumMapping(Kind, interaction_pb2.Kind, "KIND_")
DIRECTIONS = ProtoEnumMapping(Direction, interaction_pb2.Direction, "DIRECTION_")
IDENTIFIER_KINDS = ProtoEnumMapping(
    IdentifierKind, interaction_pb2.IdentifierKind, "IDENTIFIER_KIND_"
)
ACTOR_TYPES = ProtoEnumMapping(ActorType, interaction_pb2.ActorType, "ACTOR_TYPE_")
CANCELLATION_REASONS = ProtoEnumMapping(
    CancellationReason, interaction_pb2.CancellationReason, "CANCELLATION_REASON_"
)
CANCELLATION_OUTCOMES = ProtoEnumMapping(
    CancellationOutcome, interaction_pb2.CancellationOutcome, "CANCELLATION_OUTCOME_"
)
CASE_STATUSES = ProtoEnumMapping(CaseStatus, timeline_pb2.CaseStatus, "CASE_STATUS_")
CONSENT_PURPOSES = ProtoEnumMapping(
    ConsentPurpose, interaction_pb2.ConsentPurpose, "CONSENT_PURPOSE_"
)

# Every mapping, by GraphQL enum: how a proto enum field is read into its GraphQL type.
PROTO_ENUMS: dict[type[enum.Enum], ProtoEnumMapping[Any, Any]] = {
    mapping.graphql_enum: mapping
    for mapping in (
        CHANNELS,
        KINDS,
        DIRECTIONS,
        IDENTIFIER_KINDS,
        ACTOR_TYPES,
        CANCELLATION_REASONS,
        CANCELLATION_OUTCOMES,
        CASE_STATUSES,
        CONSENT_PURPOSES,
    )
}
