"""Who is who: customer identifiers (plain and protected) and the actors of interactions."""

from __future__ import annotations

from collections.abc import Iterable

import strawberry
from google.protobuf.message import Message

from gateway.enums import IDENTIFIER_KINDS, ActorType, IdentifierKind
from gateway.from_proto import read_field
from gateway.scalars import optional
from tsunagu.v1 import interaction_pb2, timeline_pb2


@strawberry.type
class Identifier:
    kind: IdentifierKind
    value: str
    network: str | None = strawberry.field(description="Social network, for SOCIAL_HANDLE.")
    verified: bool

    @classmethod
    def from_proto(cls, identifier: interaction_pb2.Identifier) -> Identifier | None:
        """Convert an identifier; ``None`` for a kind this gateway does not know."""
        kind = IDENTIFIER_KINDS.from_proto(identifier.kind)
        if kind is None:
            return None
        return cls(
            kind=kind,
            value=identifier.value,
            network=optional(identifier.network),
            verified=identifier.verified,
        )

    @classmethod
    def known(cls, identifiers: Iterable[interaction_pb2.Identifier]) -> list[Identifier]:
        """Convert identifiers, leaving out kinds this gateway does not know."""
        converted = (cls.from_proto(identifier) for identifier in identifiers)
        return [identifier for identifier in converted if identifier is not None]


@strawberry.type(
    description=("An identifier kept on the customer but never used to match customers, and why.")
)
class ProtectedIdentifier:
    kind: IdentifierKind
    value: str
    network: str | None = strawberry.field(description="Social network, for SOCIAL_HANDLE.")
    reason: str = strawberry.field(
        description=(
            '"blocklisted" (never a person), "shared" (carried by more customers than the '
            'tenant allows) or "invalid" (could not be normalised).'
        )
    )

    @classmethod
    def known(
        cls, protected: Iterable[timeline_pb2.ProtectedIdentifier]
    ) -> list[ProtectedIdentifier]:
        """Convert protected identifiers, leaving out kinds this gateway does not know."""
        converted = []
        for entry in protected:
            identifier = Identifier.from_proto(entry.identifier)
            if identifier is not None:
                converted.append(
                    cls(
                        kind=identifier.kind,
                        value=identifier.value,
                        network=identifier.network,
                        reason=entry.reason,
                    )
                )
        return converted


@strawberry.type
class Actor:
    type: ActorType | None
    id: str | None = strawberry.field(description="Agent, bot or system id; null for customers.")
    display_name: str | None

    @classmethod
    def of(cls, message: Message, field: str) -> Actor | None:
        """The ``Actor`` field ``field`` of a proto message; ``None`` when unset."""
        return read_field(message, field, cls)
