"""Size, character and time limits of an interaction on the bus."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from tsunagu.contracts.errors import ContractViolation, Reason
from tsunagu.v1 import interaction_pb2 as pb

# Strings carry text, never terminal or protocol control: C0 controls other than tab and the
# line breaks are refused everywhere (NUL in particular breaks C-string based consumers).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NANOS_PER_SECOND = 1_000_000_000

ID_BYTES = 256
_SUBJECT_BYTES = 998  # RFC 5322 line length limit
_URL_BYTES = 2048
# Derived refs carry a prefix and possibly a network on top of a 256-byte id.
_CONVERSATION_REF_BYTES = 512
# Long texts, by field path without indices; every other string field is an id or a short
# label, except in agent actions where all but the ids below are an agent's words.
_TEXT_FIELDS = frozenset(
    {
        "content.text",
        "call.transcript",
        "email.text_body",
        "email.html_body",
        "web_form.fields.value",
    }
)
_AGENT_ACTION_IDS = frozenset(
    {
        "agent_action.customer_id",
        "agent_action.case_id",
        "agent_action.merge_customers.customer_ids",
    }
)
MAX_CONSENT_EVIDENCE_BYTES = 8 * 1024
"""What the customer said or ticked, quoted: a few sentences, not a transcript."""
_FIXED_LIMITS: Mapping[str, int] = MappingProxyType(
    {
        "consent.evidence": MAX_CONSENT_EVIDENCE_BYTES,
        "content.subject": _SUBJECT_BYTES,
        "email.subject": _SUBJECT_BYTES,
        "chat.page_url": _URL_BYTES,
        "web_form.page_url": _URL_BYTES,
        "social.post_url": _URL_BYTES,
        "call.recording_uri": _URL_BYTES,
        "content.attachments.uri": _URL_BYTES,
        "conversation_ref": _CONVERSATION_REF_BYTES,
    }
)

# What the timeline accepts from any producer; a producer may be stricter, never looser.
MAX_TEXT_BYTES = 64 * 1024
MAX_EVENT_BYTES = 512 * 1024
MAX_IDENTIFIERS = 32
MAX_CLOCK_SKEW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of one interaction.

    Attributes:
        max_text_bytes: UTF-8 bound of each long text (content text, transcript, mail bodies,
            form values, an agent's words).
        max_event_bytes: Bound of the serialized interaction.
        max_identifiers: Bound of the identifiers.
        max_clock_skew: How far in the future `occurred_at` may be.
    """

    max_text_bytes: int = MAX_TEXT_BYTES
    max_event_bytes: int = MAX_EVENT_BYTES
    max_identifiers: int = MAX_IDENTIFIERS
    max_clock_skew: timedelta = MAX_CLOCK_SKEW

    def __post_init__(self) -> None:
        """Fail at start-up when a producer is configured looser than the timeline accepts."""
        if min(self.max_text_bytes, self.max_event_bytes, self.max_identifiers) <= 0:
            raise ValueError("limits must be positive")
        if self.max_clock_skew < timedelta(0):
            raise ValueError("max_clock_skew must not be negative")
        for name, value, ceiling in (
            ("max_text_bytes", self.max_text_bytes, MAX_TEXT_BYTES),
            ("max_event_bytes", self.max_event_bytes, MAX_EVENT_BYTES),
            ("max_identifiers", self.max_identifiers, MAX_IDENTIFIERS),
        ):
            if value > ceiling:
                raise ValueError(f"{name}: at most {ceiling}, the timeline's limit")
        if self.max_clock_skew > MAX_CLOCK_SKEW:
            raise ValueError(f"max_clock_skew: at most {MAX_CLOCK_SKEW}, the timeline's limit")


BUS_LIMITS = Limits()


def check_occurred_at(interaction: pb.Interaction, *, limits: Limits, now: datetime) -> None:
    """`occurred_at` is set, after 2000-01-01 and not further ahead of `now` than the skew.

    Raises:
        ContractViolation: `occurred_at_invalid`.
        ValueError: `now` is naive.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not interaction.HasField("occurred_at"):
        raise _bad_time("required")
    stamp = interaction.occurred_at
    if not 0 <= stamp.nanos < _NANOS_PER_SECOND:
        raise _bad_time("nanos out of range")
    # Compared as integer nanoseconds: a Timestamp can hold years no datetime can.
    occurred = stamp.seconds * _NANOS_PER_SECOND + stamp.nanos
    if occurred < _nanos_since_epoch(EARLIEST):
        raise _bad_time("before 2000-01-01")
    if occurred > _nanos_since_epoch(now + limits.max_clock_skew):
        raise _bad_time(f"in the future by more than {limits.max_clock_skew} (clock skew)")


def _bad_time(reason: str) -> ContractViolation:
    return ContractViolation("occurred_at", reason, code=Reason.OCCURRED_AT_INVALID)


def _nanos_since_epoch(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def check_strings(interaction: pb.Interaction, *, limits: Limits) -> None:
    """No control characters in any string, and each within its field's byte limit.

    Raises:
        ContractViolation: `control_characters`, `text_too_large` (a long-text field) or
            `field_too_long` (an id or label), naming the field path with indices.
    """
    for path, schema_path, value in _strings(interaction, "", ""):
        if CONTROL_CHARACTERS.search(value):
            raise ContractViolation(
                path, "contains control characters", code=Reason.CONTROL_CHARACTERS
            )
        text = _is_text(schema_path)
        limit = limits.max_text_bytes if text else _FIXED_LIMITS.get(schema_path, ID_BYTES)
        # Cheap bound first: a string of n characters is at most 4n UTF-8 bytes.
        if len(value) * 4 > limit and len(value.encode("utf-8")) > limit:
            code = Reason.TEXT_TOO_LARGE if text else Reason.FIELD_TOO_LONG
            raise ContractViolation(path, f"longer than {limit} bytes (UTF-8)", code=code)


def _is_text(schema_path: str) -> bool:
    if schema_path.startswith("agent_action."):
        return schema_path not in _AGENT_ACTION_IDS
    return schema_path in _TEXT_FIELDS


def _strings(message: Message, path: str, schema_path: str) -> Iterator[tuple[str, str, str]]:
    """Yield `(field path, field path without indices, value)` for every set string field."""
    for descriptor, value in message.ListFields():
        here = f"{path}{descriptor.name}"
        schema_here = f"{schema_path}{descriptor.name}"
        if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            if descriptor.is_repeated:
                for index, item in enumerate(value):
                    yield from _strings(item, f"{here}[{index}].", f"{schema_here}.")
            else:
                yield from _strings(value, f"{here}.", f"{schema_here}.")
        elif descriptor.type == FieldDescriptor.TYPE_STRING:
            if descriptor.is_repeated:
                for index, item in enumerate(value):
                    yield f"{here}[{index}]", schema_here, item
            else:
                yield here, schema_here, value


def check_event_size(interaction: pb.Interaction, *, limits: Limits) -> None:
    """The serialized interaction fits `max_event_bytes`.

    Raises:
        ContractViolation: `event_too_large`.
    """
    size = interaction.ByteSize()
    if size > limits.max_event_bytes:
        raise ContractViolation(
            "interaction",
            f"{size} bytes serialized; at most {limits.max_event_bytes}",
            code=Reason.EVENT_TOO_LARGE,
        )


def check_identifier_count(interaction: pb.Interaction, *, limits: Limits) -> None:
    """At most `max_identifiers` identifiers.

    Raises:
        ContractViolation: `too_many_identifiers`.
    """
    if len(interaction.identifiers) > limits.max_identifiers:
        raise ContractViolation(
            "identifiers",
            f"at most {limits.max_identifiers} identifiers",
            code=Reason.TOO_MANY_IDENTIFIERS,
        )
