"""Records one interaction: de-duplicate, resolve the customer, append, project."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bson import Binary
from opentelemetry import trace

from services.timeline.identity.resolver import (
    MAX_ATTEMPTS,
    ConcurrentUpdateError,
    IdentityResolver,
)
from services.timeline.projection import Contact, apply_contact
from services.timeline.store import TimelineStore
from services.timeline.store.database import IdentityKey
from services.timeline.store.documents import (
    IDENTIFIER_TOKENS,
    KIND_TOKENS,
    Document,
    channel_token,
    interaction_key,
)
from tsunagu.identifiers import IdentifierFormatError, NormalizedIdentifier, normalize_identifier
from tsunagu.v1 import interaction_pb2

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

DIRECTION_TOKENS = {
    v.number: v.name.removeprefix("DIRECTION_").lower()
    for v in interaction_pb2.Direction.DESCRIPTOR.values
}


class PermanentError(ValueError):
    """The event can never be recorded as it is (it goes to the dead-letter stream)."""


@dataclass(frozen=True, slots=True)
class Recorded:
    event_id: str
    tenant: str
    customer_id: str
    duplicate: bool
    merged_ids: list[str] = field(default_factory=list)


def _identifier_doc(ident: NormalizedIdentifier, network: str) -> dict[str, object]:
    doc: dict[str, object] = {"kind": IDENTIFIER_TOKENS[ident.kind], "value": ident.value}
    if network:
        doc["network"] = network
    if not ident.matchable:
        doc["matchable"] = False
    return doc


class TimelineRecorder:
    """Turns interactions from the stream into the customer timeline; safe to repeat."""

    def __init__(
        self,
        store: TimelineStore,
        *,
        region_for: Callable[[str], str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._region_for = region_for
        self._clock = clock
        self.resolver = IdentityResolver(store, clock=clock)

    async def record(self, interaction: interaction_pb2.Interaction) -> Recorded:
        tenant, event_id = interaction.tenant, interaction.event_id
        if not tenant or not event_id:
            raise PermanentError("interaction without tenant or event_id")
        with tracer.start_as_current_span("timeline.record") as span:
            span.set_attribute("tsunagu.channel", channel_token(interaction.channel))
            state = await self._store.interaction_state(tenant, event_id)
            if state is not None:
                customer_id = state["customer_id"]
                if not state.get("projected"):
                    # A previous delivery stored the event but stopped before projecting it.
                    await self._rebuild_projection(tenant, customer_id)
                    await self._store.mark_projected(tenant, event_id)
                return Recorded(event_id, tenant, customer_id, duplicate=True)

            identifiers = self._normalized(interaction)
            try:
                occurred_at = interaction.occurred_at.ToDatetime(tzinfo=UTC)
            except (ValueError, OverflowError) as exc:
                raise PermanentError(f"occurred_at out of range: {exc}") from exc
            merged: list[str] = []
            if interaction.WhichOneof("detail") == "agent_action":
                customer_id = await self._subject_customer(
                    tenant, interaction.agent_action.customer_id
                )
            else:
                keys: list[IdentityKey] = list(
                    dict.fromkeys(
                        (IDENTIFIER_TOKENS[i.kind], i.value) for i, _ in identifiers if i.matchable
                    )
                )
                resolution = await self.resolver.resolve(
                    tenant=tenant, event_id=event_id, occurred_at=occurred_at, keys=keys
                )
                customer_id, merged = resolution.customer_id, resolution.merged_ids

            ident_docs = tuple(_identifier_doc(i, network) for i, network in identifiers)
            doc = self._document(interaction, customer_id, occurred_at, ident_docs)
            if not await self._store.insert_interaction(doc):
                return Recorded(event_id, tenant, customer_id, duplicate=True)
            contact = Contact(
                channel=doc["channel"],
                occurred_at=occurred_at,
                display_name=(
                    interaction.actor.display_name
                    if interaction.actor.type == interaction_pb2.ACTOR_TYPE_CUSTOMER
                    else ""
                ),
                identifiers=ident_docs,
            )
            await self._project(tenant, customer_id, contact)
            await self._store.mark_projected(tenant, event_id)
            return Recorded(event_id, tenant, customer_id, duplicate=False, merged_ids=merged)

    def _normalized(
        self, interaction: interaction_pb2.Interaction
    ) -> list[tuple[NormalizedIdentifier, str]]:
        region = self._region_for(interaction.tenant)
        result = []
        for ident in interaction.identifiers:
            try:
                normalized = normalize_identifier(ident, default_region=region)
            except IdentifierFormatError as exc:
                # Ingestion rejects these; one from another producer is kept off the match.
                log.warning("ignoring identifier of event %s: %s", interaction.event_id, exc)
                continue
            result.append((normalized, ident.network))
        return result

    async def _subject_customer(self, tenant: str, customer_id: str) -> str:
        if not customer_id:
            raise PermanentError("agent action without a customer_id")
        live = await self.resolver.live_customers(tenant, {customer_id})
        if not live:
            raise PermanentError(f"agent action for unknown customer {customer_id}")
        return next(iter(live))

    def _document(
        self,
        interaction: interaction_pb2.Interaction,
        customer_id: str,
        occurred_at: datetime,
        identifiers: tuple[dict[str, object], ...],
    ) -> Document:
        return {
            "_id": interaction_key(interaction.tenant, interaction.event_id),
            "tenant": interaction.tenant,
            "event_id": interaction.event_id,
            "customer_id": customer_id,
            # Where identity resolution put it first: a split returns it there.
            "origin_customer_id": customer_id,
            "channel": channel_token(interaction.channel),
            "kind": KIND_TOKENS.get(interaction.kind, "unspecified"),
            "direction": DIRECTION_TOKENS.get(interaction.direction, "unspecified"),
            "occurred_at": occurred_at,
            "recorded_at": self._clock(),
            "conversation_ref": interaction.conversation_ref,
            "identifiers": list(identifiers),
            "raw": Binary(interaction.SerializeToString()),
            "projected": False,
        }

    async def _project(self, tenant: str, customer_id: str, contact: Contact) -> None:
        for _ in range(MAX_ATTEMPTS):
            customer = (await self._store.get_customers(tenant, [customer_id])).get(customer_id)
            if customer is None:
                raise ConcurrentUpdateError(f"customer {customer_id} vanished")
            updated = apply_contact(customer, contact)
            if await self._store.replace_customer(updated, expected_version=customer["version"]):
                return
        raise ConcurrentUpdateError(f"customer {customer_id} kept changing")

    async def _rebuild_projection(self, tenant: str, customer_id: str) -> None:
        by_channel = await self._store.channel_counts(tenant, customer_id)
        first, last = await self._store.contact_bounds(tenant, customer_id)
        for _ in range(MAX_ATTEMPTS):
            customer = (await self._store.get_customers(tenant, [customer_id])).get(customer_id)
            if customer is None:
                return
            updated = {
                **customer,
                "by_channel": by_channel,
                "channels": sorted(by_channel),
                "interaction_count": sum(by_channel.values()),
                "first_contact_at": first or customer.get("first_contact_at"),
                "last_contact_at": last or customer.get("last_contact_at"),
            }
            if await self._store.replace_customer(updated, expected_version=customer["version"]):
                return
        raise ConcurrentUpdateError(f"customer {customer_id} kept changing")
