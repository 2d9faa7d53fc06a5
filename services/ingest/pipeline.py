"""Validation and normalisation of an interaction before it is published (pure logic)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from ulid import ULID

from services.ingest.channels import NORMALIZERS
from services.ingest.errors import InvalidInteraction
from tsunagu.identifiers import IdentifierFormatError, normalize_identifier
from tsunagu.identifiers.phone import is_supported_region
from tsunagu.v1 import interaction_pb2 as pb

# Strings carry text, never terminal or protocol control: C0 controls other than tab and the
# line breaks are refused everywhere (NUL in particular breaks C-string based consumers).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_TENANT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NIL_UUID = "00000000-0000-0000-0000-000000000000"
_NIL_ULID = "0" * 26
_ULID_LENGTH = 26

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_NANOS_PER_SECOND = 1_000_000_000

_ID_BYTES = 256
_SUBJECT_BYTES = 998  # RFC 5322 line length limit
_URL_BYTES = 2048
# Derived refs carry a prefix and possibly a network on top of a 256-byte id.
_CONVERSATION_REF_BYTES = 512
# Limits by field path without indices; every other string field is an id or a short label.
_TEXT_FIELDS = frozenset(
    {
        "content.text",
        "call.transcript",
        "email.text_body",
        "email.html_body",
        "web_form.fields.value",
    }
)
_FIXED_LIMITS: Mapping[str, int] = MappingProxyType(
    {
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


@dataclass(frozen=True, slots=True)
class _ChannelRules:
    """What one ingestion channel accepts."""

    name: str
    detail: str  # member of the `detail` oneof
    kinds: frozenset[int]
    required: tuple[str, ...]  # fields of the detail message that must not be blank


_RULES: Mapping[int, _ChannelRules] = MappingProxyType(
    {
        pb.CHANNEL_CHAT: _ChannelRules("chat", "chat", frozenset({pb.KIND_MESSAGE}), ()),
        pb.CHANNEL_VOICE: _ChannelRules(
            "voice",
            "call",
            frozenset({pb.KIND_CALL_STARTED, pb.KIND_CALL_TRANSFERRED, pb.KIND_CALL_ENDED}),
            ("call_id",),
        ),
        pb.CHANNEL_EMAIL: _ChannelRules(
            "email", "email", frozenset({pb.KIND_EMAIL}), ("message_id", "from_address")
        ),
        pb.CHANNEL_SMS: _ChannelRules("sms", "sms", frozenset({pb.KIND_MESSAGE}), ("from_number",)),
        pb.CHANNEL_SOCIAL: _ChannelRules(
            "social", "social", frozenset({pb.KIND_MESSAGE}), ("network", "handle")
        ),
        pb.CHANNEL_WEB: _ChannelRules(
            "web", "web_form", frozenset({pb.KIND_FORM_SUBMISSION}), ("form_id",)
        ),
    }
)


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    """What one ingestion deployment accepts, and its limits.

    Attributes:
        channel: The `interaction_pb2.Channel` this deployment accepts (one per deployment).
        default_region: Phone region for national-format numbers, unless the tenant has one.
        tenant_regions: Per-tenant default phone region.
        max_text_bytes: UTF-8 bound of each long text (content text, transcript, mail bodies,
            form values).
        max_event_bytes: Bound of the serialized interaction.
        max_identifiers: Bound of the identifiers, as sent and after channel extraction.
        max_clock_skew: How far in the future `occurred_at` may be.
    """

    channel: int
    default_region: str = "JP"
    tenant_regions: Mapping[str, str] = field(default_factory=dict)
    max_text_bytes: int = 64 * 1024
    max_event_bytes: int = 512 * 1024
    max_identifiers: int = 32
    max_clock_skew: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        """Fail at start-up, not on the first event, when the deployment is misconfigured."""
        if self.channel not in _RULES:
            raise ValueError(f"no ingestion normaliser for {_channel_label(self.channel)}")
        for region in (self.default_region, *self.tenant_regions.values()):
            if not is_supported_region(region):
                raise ValueError(f"unknown phone region {region!r}")
        if min(self.max_text_bytes, self.max_event_bytes, self.max_identifiers) <= 0:
            raise ValueError("limits must be positive")
        if self.max_clock_skew < timedelta(0):
            raise ValueError("max_clock_skew must not be negative")

    def region_for(self, tenant: str) -> str:
        """Return the default phone region for `tenant`.

        Args:
            tenant: Tenant id.

        Returns:
            The tenant's region when configured, else `default_region`.
        """
        return self.tenant_regions.get(tenant, self.default_region)


def prepare(interaction: pb.Interaction, *, policy: IngestPolicy, now: datetime) -> pb.Interaction:
    """Validate an interaction and return its normalised copy, ready to publish.

    Steps: structural validation, the channel's normaliser, identifier normalisation and
    de-duplication, then size and character checks on the result. Strings are also checked
    on the way in, so that errors name the field the client sent and the normalisers never
    work on oversized input.

    Args:
        interaction: The interaction as the adapter submitted it; never mutated.
        policy: This deployment's channel and limits.
        now: Current time (timezone-aware), for the clock-skew check.

    Returns:
        A new, normalised interaction.

    Raises:
        InvalidInteraction: The interaction is refused; `field` is the proto field path
            (`identifiers[2].value`, `email.message_id`, ...).
        ValueError: `now` is naive.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    _check_event_size(interaction, policy)
    result = pb.Interaction()
    result.CopyFrom(interaction)
    _validate_structure(result, policy=policy, now=now)
    _check_strings(result, policy)
    region = policy.region_for(result.tenant)
    NORMALIZERS[result.channel](result, region=region)
    _normalize_identifiers(result, policy=policy, region=region)
    _check_strings(result, policy)
    _check_event_size(result, policy)
    return result


def _validate_structure(
    interaction: pb.Interaction, *, policy: IngestPolicy, now: datetime
) -> None:
    interaction.event_id = _normalize_event_id(interaction.event_id)
    if not interaction.tenant:
        raise InvalidInteraction("tenant", "required")
    if not _TENANT.fullmatch(interaction.tenant):
        raise InvalidInteraction(
            "tenant", "must be 1..63 characters of a-z, 0-9, '_' or '-', starting alphanumeric"
        )
    rules = _RULES[policy.channel]
    if interaction.channel != policy.channel:
        raise InvalidInteraction(
            "channel",
            f"got {_channel_label(interaction.channel)}: this service accepts {rules.name} only",
        )
    _check_enum("kind", interaction.kind, pb.Kind.DESCRIPTOR)
    if interaction.kind not in rules.kinds:
        expected = ", ".join(sorted(pb.Kind.Name(pb.Kind.ValueType(k)) for k in rules.kinds))
        raise InvalidInteraction(
            "kind",
            f"{pb.Kind.Name(interaction.kind)} is not accepted on {rules.name}; "
            f"expected {expected}",
        )
    _check_enum("direction", interaction.direction, pb.Direction.DESCRIPTOR)
    _check_occurred_at(interaction, policy=policy, now=now)
    _default_actor(interaction)
    if len(interaction.identifiers) > policy.max_identifiers:
        raise InvalidInteraction("identifiers", f"at most {policy.max_identifiers} identifiers")
    _check_detail(interaction, rules)


def _normalize_event_id(event_id: str) -> str:
    if not event_id:
        raise InvalidInteraction("event_id", "required")
    lowered = event_id.lower()
    if _UUID.fullmatch(lowered):
        # The nil UUID is what an adapter sends when it forgot to set the id; accepting it
        # would de-duplicate every later event of that adapter away.
        if lowered == _NIL_UUID:
            raise InvalidInteraction("event_id", "the nil UUID is not a unique id")
        return lowered
    if len(event_id) == _ULID_LENGTH:
        try:
            canonical = str(ULID.from_str(event_id))
        except ValueError as exc:
            raise InvalidInteraction("event_id", f"not a UUID nor a ULID: {exc}") from exc
        if canonical == _NIL_ULID:
            raise InvalidInteraction("event_id", "the nil ULID is not a unique id")
        return canonical
    raise InvalidInteraction("event_id", "must be a UUID (hyphenated) or a ULID")


def _check_enum(name: str, value: int, descriptor: EnumDescriptor) -> None:
    # proto3 keeps unknown enum numbers as they came over the wire: check them explicitly.
    if value == 0:
        raise InvalidInteraction(name, "required (must not be UNSPECIFIED)")
    if value not in descriptor.values_by_number:
        raise InvalidInteraction(name, f"unknown {name} value {value}")


def _check_occurred_at(interaction: pb.Interaction, *, policy: IngestPolicy, now: datetime) -> None:
    if not interaction.HasField("occurred_at"):
        raise InvalidInteraction("occurred_at", "required")
    stamp = interaction.occurred_at
    if not 0 <= stamp.nanos < _NANOS_PER_SECOND:
        raise InvalidInteraction("occurred_at", "nanos out of range")
    # Compared as integer nanoseconds: a Timestamp can hold years no datetime can.
    occurred = stamp.seconds * _NANOS_PER_SECOND + stamp.nanos
    if occurred < _nanos_since_epoch(_EARLIEST):
        raise InvalidInteraction("occurred_at", "before 2000-01-01")
    latest = now + policy.max_clock_skew
    if occurred > _nanos_since_epoch(latest):
        raise InvalidInteraction(
            "occurred_at", f"in the future by more than {policy.max_clock_skew} (clock skew)"
        )


def _nanos_since_epoch(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _default_actor(interaction: pb.Interaction) -> None:
    actor_type = interaction.actor.type
    if actor_type == pb.ACTOR_TYPE_UNSPECIFIED:
        # Inbound traffic comes from the customer; what a channel sends out (or keeps
        # internal, such as a whisper between agents) comes from the contact centre.
        inbound = interaction.direction == pb.DIRECTION_INBOUND
        interaction.actor.type = pb.ACTOR_TYPE_CUSTOMER if inbound else pb.ACTOR_TYPE_AGENT
    elif actor_type not in pb.ActorType.DESCRIPTOR.values_by_number:
        raise InvalidInteraction("actor.type", f"unknown actor type value {actor_type}")


def _check_detail(interaction: pb.Interaction, rules: _ChannelRules) -> None:
    present = interaction.WhichOneof("detail")
    if present is None:
        raise InvalidInteraction(rules.detail, f"required for {rules.name} interactions")
    if present != rules.detail:
        raise InvalidInteraction(
            present, f"{present} detail on a {rules.name} interaction; expected {rules.detail}"
        )
    detail: Message = getattr(interaction, rules.detail)
    for name in rules.required:
        value: str = getattr(detail, name)
        if not value.strip():
            raise InvalidInteraction(f"{rules.detail}.{name}", "required")


def _normalize_identifiers(
    interaction: pb.Interaction, *, policy: IngestPolicy, region: str
) -> None:
    kept: dict[tuple[int, str], pb.Identifier] = {}
    for index, identifier in enumerate(interaction.identifiers):
        try:
            normalized = normalize_identifier(identifier, default_region=region)
        except IdentifierFormatError as exc:
            raise InvalidInteraction(f"identifiers[{index}].{exc.part}", str(exc)) from exc
        key = (normalized.kind, normalized.value)
        if key in kept:
            # One identifier, seen twice: verified if any sighting was.
            kept[key].verified |= identifier.verified
            continue
        network, value = "", normalized.value
        if normalized.kind == pb.IDENTIFIER_KIND_SOCIAL_HANDLE:
            network, value = normalized.value.split(":", 1)
        kept[key] = pb.Identifier(
            kind=pb.IdentifierKind.ValueType(normalized.kind),
            value=value,
            network=network,
            verified=identifier.verified,
        )
    if len(kept) > policy.max_identifiers:
        raise InvalidInteraction(
            "identifiers",
            f"at most {policy.max_identifiers} identifiers (including those the channel adds)",
        )
    del interaction.identifiers[:]
    interaction.identifiers.extend(kept.values())
    customer_inbound = (
        interaction.direction == pb.DIRECTION_INBOUND
        and interaction.actor.type == pb.ACTOR_TYPE_CUSTOMER
    )
    if customer_inbound and not interaction.identifiers:
        raise InvalidInteraction(
            "identifiers", "an inbound customer interaction needs at least one identifier"
        )


def _check_strings(interaction: pb.Interaction, policy: IngestPolicy) -> None:
    for path, schema_path, value in _strings(interaction, "", ""):
        if _CONTROL.search(value):
            raise InvalidInteraction(path, "contains control characters")
        limit = _string_limit(schema_path, policy)
        # Cheap bound first: a string of n characters is at most 4n UTF-8 bytes.
        if len(value) * 4 > limit and len(value.encode("utf-8")) > limit:
            raise InvalidInteraction(path, f"longer than {limit} bytes (UTF-8)")


def _string_limit(schema_path: str, policy: IngestPolicy) -> int:
    if schema_path in _TEXT_FIELDS:
        return policy.max_text_bytes
    return _FIXED_LIMITS.get(schema_path, _ID_BYTES)


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


def _check_event_size(interaction: pb.Interaction, policy: IngestPolicy) -> None:
    size = interaction.ByteSize()
    if size > policy.max_event_bytes:
        raise InvalidInteraction(
            "interaction", f"{size} bytes serialized; at most {policy.max_event_bytes}"
        )


def _channel_label(channel: int) -> str:
    if channel in _RULES:
        return _RULES[channel].name
    known = pb.Channel.DESCRIPTOR.values_by_number.get(channel)
    return known.name if known is not None else f"channel {channel}"
