"""Validation and normalisation of an interaction before it is published (pure logic)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.ingest.channels import NORMALIZERS, VERIFIABLE
from services.ingest.errors import InvalidInteraction
from services.ingest.redaction import redact_message
from tsunagu.contracts import Limits, Reason, canonical_event_id, channel_label, check_interaction
from tsunagu.contracts.limits import (
    MAX_CLOCK_SKEW,
    MAX_EVENT_BYTES,
    MAX_IDENTIFIERS,
    MAX_TEXT_BYTES,
    check_event_size,
)
from tsunagu.identifiers import IdentifierFormatError, normalize_identifier
from tsunagu.identifiers.phone import is_supported_region
from tsunagu.v1 import interaction_pb2 as pb


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    """What one ingestion deployment accepts, and its limits.

    Attributes:
        channel: The `interaction_pb2.Channel` this deployment accepts (one per deployment).
        default_region: Phone region for national-format numbers, unless the tenant has one.
        tenant_regions: Per-tenant default phone region.
        max_text_bytes: UTF-8 bound of each long text (content text, transcript, mail bodies,
            form values); at most the contract's.
        max_event_bytes: Bound of the serialized interaction; at most the contract's.
        max_identifiers: Bound of the identifiers, as sent and after channel extraction.
        max_clock_skew: How far in the future `occurred_at` may be.
    """

    channel: int
    default_region: str = "JP"
    tenant_regions: Mapping[str, str] = field(default_factory=dict)
    max_text_bytes: int = MAX_TEXT_BYTES
    max_event_bytes: int = MAX_EVENT_BYTES
    max_identifiers: int = MAX_IDENTIFIERS
    max_clock_skew: timedelta = MAX_CLOCK_SKEW

    def __post_init__(self) -> None:
        """Fail at start-up, not on the first event, when the deployment is misconfigured."""
        if self.channel not in NORMALIZERS:
            raise ValueError(f"no ingestion normaliser for {channel_label(self.channel)}")
        for region in (self.default_region, *self.tenant_regions.values()):
            if not is_supported_region(region):
                raise ValueError(f"unknown phone region {region!r}")
        _ = self.limits  # the contract refuses limits looser than the timeline accepts

    @property
    def limits(self) -> Limits:
        """This deployment's limits, as the contract checks them."""
        return Limits(
            max_text_bytes=self.max_text_bytes,
            max_event_bytes=self.max_event_bytes,
            max_identifiers=self.max_identifiers,
            max_clock_skew=self.max_clock_skew,
        )

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

    Steps: the write-path contract on the input (after canonicalising the event id and
    defaulting the actor), the channel's normaliser, identifier normalisation and
    de-duplication, card numbers in free text redacted, then the contract again on the
    result. Checking the input too makes errors name the field the client sent and keeps
    oversized input away from normalisers.

    Args:
        interaction: The interaction as the adapter submitted it; never mutated.
        policy: This deployment's channel and limits.
        now: Current time (timezone-aware), for the clock-skew check.

    Returns:
        A new, normalised interaction.

    Raises:
        ContractViolation: The interaction is refused; `field` is the proto field path
            (`identifiers[2].value`, `email.message_id`, ...), `code` the reason code.
        ValueError: `now` is naive.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    bounds = policy.limits
    check_event_size(interaction, limits=bounds)  # before copying what may be huge
    result = pb.Interaction()
    result.CopyFrom(interaction)
    result.event_id = canonical_event_id(result.event_id)
    _default_actor(result)
    check_interaction(result, limits=bounds, now=now, channel=policy.channel)
    region = policy.region_for(result.tenant)
    NORMALIZERS[result.channel](result, region=region)
    _normalize_identifiers(result, policy=policy, region=region)
    # After the normaliser, so text it builds (a form's `name: value` lines) is covered too.
    redact_message(result)
    check_interaction(result, limits=bounds, now=now, channel=policy.channel)
    return result


def _default_actor(interaction: pb.Interaction) -> None:
    if interaction.actor.type == pb.ACTOR_TYPE_UNSPECIFIED:
        # Inbound traffic comes from the customer; what a channel sends out (or keeps
        # internal, such as a whisper between agents) comes from the contact centre.
        inbound = interaction.direction == pb.DIRECTION_INBOUND
        interaction.actor.type = pb.ACTOR_TYPE_CUSTOMER if inbound else pb.ACTOR_TYPE_AGENT


def _normalize_identifiers(
    interaction: pb.Interaction, *, policy: IngestPolicy, region: str
) -> None:
    kept: dict[tuple[int, str], pb.Identifier] = {}
    vouchable = VERIFIABLE.get(interaction.channel, frozenset())
    for index, identifier in enumerate(interaction.identifiers):
        # Only kinds the channel can vouch for stay verified: a web form's "verified" email
        # is one anybody typed.
        identifier.verified &= identifier.kind in vouchable
        try:
            normalized = normalize_identifier(identifier, default_region=region)
        except IdentifierFormatError as exc:
            raise InvalidInteraction(
                f"identifiers[{index}].{exc.part}", str(exc), code=Reason.IDENTIFIER_INVALID
            ) from exc
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
            code=Reason.TOO_MANY_IDENTIFIERS,
        )
    del interaction.identifiers[:]
    interaction.identifiers.extend(kept.values())
    customer_inbound = (
        interaction.direction == pb.DIRECTION_INBOUND
        and interaction.actor.type == pb.ACTOR_TYPE_CUSTOMER
    )
    if customer_inbound and not interaction.identifiers:
        raise InvalidInteraction(
            "identifiers",
            "an inbound customer interaction needs at least one identifier",
            code=Reason.IDENTIFIERS_MISSING,
        )
