"""Proto3 scalars read as GraphQL values, and the checks every id argument goes through."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry
from google.protobuf.message import Message

from gateway.errors import bad_user_input

# Longer than any id the timeline hands out; stops abuse of id arguments.
MAX_ID_LENGTH = 256


def optional(value: str) -> str | None:
    """Read a proto3 string, where ``""`` means "not set", as an optional GraphQL string."""
    return value or None


def optional_id(value: str) -> strawberry.ID | None:
    """Read a proto3 id string (``""`` = not set) as an optional GraphQL ID."""
    return strawberry.ID(value) if value else None


def instant(message: Message, field: str) -> datetime | None:
    """A ``google.protobuf.Timestamp`` field of ``message`` in UTC; ``None`` when unset."""
    if not message.HasField(field):
        return None
    return getattr(message, field).ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


def seconds(message: Message, field: str) -> float | None:
    """A ``google.protobuf.Duration`` field of ``message`` in seconds; ``None`` when unset."""
    if not message.HasField(field):
        return None
    duration = getattr(message, field)
    return duration.seconds + duration.nanos / 1e9  # type: ignore[no-any-return]


def utc(value: datetime) -> datetime:
    """An instant from a client; naive instants are read as UTC, as everywhere in the gateway."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def check_id(name: str, value: str) -> str:
    """Check an id argument: not blank, not oversized, no control characters.

    Args:
        name: The argument's GraphQL name, for the message.
        value: The id as sent.

    Returns:
        The id.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` naming the argument.
    """
    if not value.strip():
        raise bad_user_input(f"`{name}` must not be empty.")
    if len(value) > MAX_ID_LENGTH:
        raise bad_user_input(f"`{name}` must be at most {MAX_ID_LENGTH} characters.")
    if not value.isprintable():
        raise bad_user_input(f"`{name}` must not contain control characters.")
    return str(value)
