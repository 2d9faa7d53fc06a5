"""Records one interaction: de-duplicate, resolve the customer, append, project."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bson import Binary
from opentelemetry import trace

from services.timeline.errors import PermanentError
from services.timeline.identity.commands import IDENTITY_ACTIONS, IdentityCommands
from services.timeline.identity.policy import INVALID, IdentityPolicy
from services.timeline.identity.resolver import (
    MAX_ATTEMPTS,
    ConcurrentUpdateError,
    IdentityAnnouncer,
    IdentityResolver,
)
from services.timeline.identity.signals import ADDRESS_FIELDS
from services.timeline.identity.split import MergeSplitter
from services.timeline.identity.suggestions import MergeSuggestions
from services.timeline.projection import Contact, apply_contact
from services.timeline.store import TimelineStore
from services.timeline.store.database import IdentityKey
from services.timeline.store.documents import (
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


@dataclass(frozen=True, slots=True)
class Recorded:
    event_id: str
    tenant: str
    customer_id: str
    duplicate: bool
    merged_ids: list[str] = field(default_factory=list)
    # Customers a split in this event gave their records back to.
    restored_ids: list[str] = field(default_factory=list)


def _identifier_doc(
    key: IdentityKey, ident: NormalizedIdentifier, network: str, protected: str | None
) -> dict[str, object]:
    kind, value = key
    doc: dict[str, object] = {"kind": kind, "value": value}
    if network:
        doc["network"] = network
    if not ident.matchable:
        doc["matchable"] = False
        doc["protected"] = INVALID
    elif protected:
        doc["matchable"] = False
        doc["protected"] = protected
    return doc


def _address(interaction: interaction_pb2.Interaction) -> str:
    """A postal address the customer typed into a web form, if any (a soft signal)."""
    if interaction.WhichOneof("detail") != "web_form":
        return ""
    for form_field in interaction.web_form.fields:
        if form_field.name.strip().lower() in ADDRESS_FIELDS and form_field.value.strip():
            return form_field.value
    return ""


@dataclass(slots=True)
class _Pending:
    index: int
    doc: Document
    contact: Contact
    merged: list[str]
    restored: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Batch:
    """Writes resolved but not yet flushed, and outcomes of flushes done mid-batch."""

    items: list[_Pending] = field(default_factory=list)
    queued: dict[tuple[str, str], str] = field(default_factory=dict)
    flushed: dict[int, Recorded | Exception] = field(default_factory=dict)

    def add(
        self,
        index: int,
        doc: Document,
        contact: Contact,
        merged: list[str],
        restored: list[str],
    ) -> None:
        self.items.append(_Pending(index, doc, contact, merged, restored))
        self.queued[(doc["tenant"], doc["event_id"])] = doc["customer_id"]


class TimelineRecorder:
    """Turns interactions from the stream into the customer timeline; safe to repeat."""

    def __init__(
        self,
        store: TimelineStore,
        *,
        region_for: Callable[[str], str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        identity_for: Callable[[str], IdentityPolicy] | None = None,
        announce_identity: IdentityAnnouncer | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._identity_for = identity_for or (lambda tenant: IdentityPolicy(region_for(tenant)))
        self.resolver = IdentityResolver(
            store, clock=clock, policy_for=self._identity_for, announce=announce_identity
        )
        self.splitter = MergeSplitter(store, self.resolver)
        self.suggestions = MergeSuggestions(store)
        self._commands = IdentityCommands(self.resolver, self.splitter, self.suggestions)

    async def record(self, interaction: interaction_pb2.Interaction) -> Recorded:
        """Record one interaction; raises what `record_batch` would report for it."""
        outcome = (await self.record_batch([interaction]))[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def record_batch(
        self, interactions: Sequence[interaction_pb2.Interaction]
    ) -> list[Recorded | Exception]:
        """Record interactions in order; one outcome each, a failure never fails the others.

        Store round trips are shared by the batch: one duplicate lookup per tenant, one
        `insert_many`, one projection write per customer and one flag update. Identity
        resolution stays one event at a time, in order, and everything pending is flushed
        before a merge so that the merge moves and counts a complete log.
        """
        outcomes: list[Recorded | Exception | None] = [None] * len(interactions)
        batch = _Batch()
        with tracer.start_as_current_span(
            "timeline.record_batch", attributes={"tsunagu.batch.items": len(interactions)}
        ):
            known: dict[str, dict[str, Document]] = {}
            for tenant in {i.tenant for i in interactions if i.tenant}:
                known[tenant] = await self._store.interaction_states(
                    tenant, [i.event_id for i in interactions if i.tenant == tenant]
                )
            for index, interaction in enumerate(interactions):
                try:
                    outcomes[index] = await self._prepare(
                        index, interaction, known.get(interaction.tenant, {}), batch
                    )
                except Exception as exc:  # noqa: BLE001 - reported for this item only
                    outcomes[index] = exc
            for index, outcome in (await self._flush(batch)).items():
                outcomes[index] = outcome
        return [o if o is not None else RuntimeError("not recorded") for o in outcomes]

    async def _prepare(
        self,
        index: int,
        interaction: interaction_pb2.Interaction,
        known: dict[str, Document],
        batch: _Batch,
    ) -> Recorded | None:
        """Resolve one interaction and queue its writes; None when queued for the flush."""
        tenant, event_id = interaction.tenant, interaction.event_id
        if not tenant or not event_id:
            raise PermanentError("interaction without tenant or event_id")
        earlier = batch.queued.get((tenant, event_id))
        if earlier is not None:
            return Recorded(event_id, tenant, earlier, duplicate=True)
        state = known.get(event_id)
        if state is not None:
            customer_id = state["customer_id"]
            if not state.get("projected"):
                # A previous delivery stored the event but stopped before projecting it.
                await self._rebuild_projection(tenant, customer_id)
                await self._store.mark_projected(tenant, event_id)
            return Recorded(event_id, tenant, customer_id, duplicate=True)

        policy = self._identity_for(tenant)
        identifiers = [(policy.key(i), i, network) for i, network in self._normalized(interaction)]
        try:
            occurred_at = interaction.occurred_at.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError) as exc:
            raise PermanentError(f"occurred_at out of range: {exc}") from exc

        async def flush_before_merge() -> None:
            batch.flushed.update(await self._flush(batch))

        merged: list[str] = []
        restored: list[str] = []
        protected: dict[IdentityKey, str] = {}
        action = (
            interaction.agent_action.WhichOneof("action")
            if interaction.WhichOneof("detail") == "agent_action"
            else None
        )
        if action in IDENTITY_ACTIONS:
            # It moves records between customers: everything queued is written first.
            await flush_before_merge()
            outcome = await self._commands.apply(interaction, self._clock())
            customer_id, merged, restored = (
                outcome.customer_id,
                outcome.merged_ids,
                outcome.restored_ids,
            )
        elif interaction.WhichOneof("detail") == "agent_action":
            customer_id = await self._subject_customer(tenant, interaction.agent_action.customer_id)
        else:
            keys = list(dict.fromkeys(key for key, i, _ in identifiers if i.matchable))
            resolution = await self.resolver.resolve(
                tenant=tenant,
                event_id=event_id,
                occurred_at=occurred_at,
                keys=keys,
                before_merge=flush_before_merge,
            )
            customer_id, merged = resolution.customer_id, resolution.merged_ids
            protected = resolution.protected

        ident_docs = tuple(
            _identifier_doc(key, i, network, protected.get(key)) for key, i, network in identifiers
        )
        batch.add(
            index,
            self._document(interaction, customer_id, occurred_at, ident_docs),
            Contact(
                channel=channel_token(interaction.channel),
                occurred_at=occurred_at,
                display_name=(
                    interaction.actor.display_name
                    if interaction.actor.type == interaction_pb2.ACTOR_TYPE_CUSTOMER
                    else ""
                ),
                identifiers=ident_docs,
                address=_address(interaction),
                event_id=event_id,
            ),
            merged,
            restored,
        )
        return None

    async def _flush(self, batch: _Batch) -> dict[int, Recorded | Exception]:
        """Write what the batch holds: the log, then each customer's profile, then the flags."""
        items, batch.items = batch.items, []
        outcomes: dict[int, Recorded | Exception] = dict(batch.flushed)
        batch.flushed.clear()
        if not items:
            return outcomes
        try:
            inserted = await self._store.insert_interactions([item.doc for item in items])
        except Exception as exc:  # noqa: BLE001 - every item of the failed write is retried
            outcomes.update({item.index: exc for item in items})
            return outcomes
        new = [item for item in items if item.doc["_id"] in inserted]
        by_customer: dict[tuple[str, str], list[_Pending]] = {}
        for item in new:
            by_customer.setdefault((item.doc["tenant"], item.doc["customer_id"]), []).append(item)
        for (tenant, customer_id), pending in by_customer.items():
            try:
                owner = await self._project(tenant, customer_id, [item.contact for item in pending])
            except Exception as exc:  # noqa: BLE001 - retried on redelivery (stays unprojected)
                outcomes.update({item.index: exc for item in pending})
                continue
            await self._store.mark_many_projected(tenant, [i.doc["event_id"] for i in pending])
            for item in pending:
                outcomes[item.index] = Recorded(
                    item.doc["event_id"],
                    tenant,
                    owner,
                    duplicate=False,
                    merged_ids=item.merged,
                    restored_ids=item.restored,
                )
        for item in items:
            if item.doc["_id"] not in inserted:
                doc = item.doc
                outcomes[item.index] = Recorded(
                    doc["event_id"], doc["tenant"], doc["customer_id"], duplicate=True
                )
        return outcomes

    def _normalized(
        self, interaction: interaction_pb2.Interaction
    ) -> list[tuple[NormalizedIdentifier, str]]:
        region = self._identity_for(interaction.tenant).region
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

    async def _project(self, tenant: str, customer_id: str, contacts: list[Contact]) -> str:
        """Apply contacts to the customer's profile; returns the customer they ended up on."""
        for _ in range(MAX_ATTEMPTS):
            customer = (await self._store.get_customers(tenant, [customer_id])).get(customer_id)
            if customer is None:
                raise ConcurrentUpdateError(f"customer {customer_id} vanished")
            if customer.get("merged_into"):
                return await self._follow_merge(tenant, customer_id)
            updated = customer
            for contact in contacts:
                updated = apply_contact(updated, contact)
            if await self._store.replace_customer(updated, expected_version=customer["version"]):
                signals_changed = any(
                    updated.get(f) and updated.get(f) != customer.get(f)
                    for f in ("name_key", "address_key")
                )
                if signals_changed:
                    await self.suggestions.suggest_for(updated, at=self._clock())
                return customer_id
        raise ConcurrentUpdateError(f"customer {customer_id} kept changing")

    async def _follow_merge(self, tenant: str, customer_id: str) -> str:
        """Another replica merged the customer after we resolved to it: move what we appended
        to the survivor and recount it from the log (so nothing is counted twice).
        """
        target, _ = await self.resolver.survivors(tenant, {customer_id})
        survivor = target.get(customer_id)
        if survivor is None:
            raise ConcurrentUpdateError(f"customer {customer_id} has no live survivor")
        await self._store.repoint_interactions(tenant, [customer_id], survivor)
        await self._store.repoint_identities(tenant, [customer_id], survivor)
        await self._rebuild_projection(tenant, survivor)
        return survivor

    async def _rebuild_projection(self, tenant: str, customer_id: str) -> None:
        for _ in range(MAX_ATTEMPTS):
            customer = (await self._store.get_customers(tenant, [customer_id])).get(customer_id)
            if customer is None:
                return
            # Read the log after the version: a concurrent append either is in these counts or
            # changes the version first. Its writer skips what `counted_pending` lists.
            pending = await self._store.unprojected_events(tenant, customer_id)
            by_channel = await self._store.channel_counts(tenant, customer_id)
            first, last = await self._store.contact_bounds(tenant, customer_id)
            updated = {
                **customer,
                "counted_pending": pending,
                "by_channel": by_channel,
                "channels": sorted(by_channel),
                "interaction_count": sum(by_channel.values()),
                "first_contact_at": first or customer.get("first_contact_at"),
                "last_contact_at": last or customer.get("last_contact_at"),
            }
            if await self._store.replace_customer(updated, expected_version=customer["version"]):
                return
        raise ConcurrentUpdateError(f"customer {customer_id} kept changing")
