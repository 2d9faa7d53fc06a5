"""Records one interaction: de-duplicate, resolve the customer, append, project."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bson import Binary
from opentelemetry import trace

from services.timeline.cases import (
    Assignment,
    CaseEvent,
    CasePolicy,
    CaseRefusedError,
    apply_event,
    assign,
    case_event_from,
    case_id_for,
    new_case,
)
from services.timeline.cases.lifecycle import fold, open_case_after, remark_of
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
from services.timeline.projection import Contact, apply_contact, with_open_case, with_remark
from services.timeline.store import TimelineStore
from services.timeline.store.cases import CaseStore
from services.timeline.store.database import IdentityKey
from services.timeline.store.documents import (
    KIND_TOKENS,
    Document,
    aware,
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
    # The case the interaction was attached to, and that case's status after the batch.
    case_id: str = ""
    case_status: str = ""


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
    # Set when the interaction belongs to a case (`doc["case_id"]`).
    event: CaseEvent | None = None


@dataclass(slots=True)
class _Batch:
    """Writes resolved but not yet flushed, and outcomes of flushes done mid-batch.

    `cases` holds the cases of the batch's customers as the batch has changed them so far
    (read once per customer), so that the second chat message of a batch attaches to the
    case its first one opened. It is dropped at every flush: the store is then the truth.
    """

    items: list[_Pending] = field(default_factory=list)
    queued: dict[tuple[str, str], str] = field(default_factory=dict)
    flushed: dict[int, Recorded | Exception] = field(default_factory=dict)
    cases: dict[str, Document] = field(default_factory=dict)
    case_customers: set[tuple[str, str]] = field(default_factory=set)

    def add(self, item: _Pending) -> None:
        self.items.append(item)
        self.queued[(item.doc["tenant"], item.doc["event_id"])] = item.doc["customer_id"]


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
        case_policy_for: Callable[[str], CasePolicy] = lambda _tenant: CasePolicy(),
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
        self._case_policy_for = case_policy_for
        self.cases = CaseStore(store)

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
                if state.get("case_id"):
                    await self._rebuild_case(tenant, state["case_id"])
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

        event = case_event_from(interaction, occurred_at)
        assignment = Assignment("")
        if event is not None:
            assignment = await self._assign_case(tenant, customer_id, event, batch)
        ident_docs = tuple(
            _identifier_doc(key, i, network, protected.get(key)) for key, i, network in identifiers
        )
        doc = self._document(interaction, customer_id, occurred_at, ident_docs)
        if assignment.case_id:
            doc["case_id"] = assignment.case_id
        if assignment.switched_from:
            doc["switched_from"] = assignment.switched_from
        batch.add(
            _Pending(
                index,
                doc,
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
                    remark=remark_of(event, assignment.case_id) if event is not None else None,
                    event_id=event_id,
                ),
                merged,
                restored,
                event if assignment.case_id else None,
            )
        )
        return None

    async def _assign_case(
        self, tenant: str, customer_id: str, event: CaseEvent, batch: _Batch
    ) -> Assignment:
        """Decide the event's case against the batch's view of the customer's cases."""
        policy = self._case_policy_for(tenant)
        if (tenant, customer_id) not in batch.case_customers:
            for case in await self.cases.recent(tenant, customer_id):
                batch.cases.setdefault(case["_id"], case)
            batch.case_customers.add((tenant, customer_id))
        requested = None
        if event.case_id:
            requested = batch.cases.get(event.case_id)
            if requested is None or requested["tenant"] != tenant:
                requested = (await self.cases.get(tenant, [event.case_id])).get(event.case_id)
            if requested is None or not await self._same_customer(
                tenant, requested["customer_id"], customer_id
            ):
                raise PermanentError(
                    f"agent action names case {event.case_id!r}, "
                    f"which is not a case of customer {customer_id}"
                )
        known = [
            case
            for case in batch.cases.values()
            if case["tenant"] == tenant and case["customer_id"] == customer_id
        ]
        try:
            assignment = assign(tenant, known, event, policy, requested=requested)
        except CaseRefusedError as exc:
            raise PermanentError(str(exc)) from exc
        if assignment.case_id:
            base = (
                new_case(
                    tenant=tenant, case_id=assignment.case_id, customer_id=customer_id, event=event
                )
                if assignment.opens
                else batch.cases[assignment.case_id]
            )
            batch.cases[assignment.case_id] = apply_event(base, event, policy)
        return assignment

    async def _same_customer(self, tenant: str, case_customer: str, customer_id: str) -> bool:
        if case_customer == customer_id:
            return True
        # The case's customer may have been merged into this one and not re-pointed yet.
        return customer_id in await self.resolver.live_customers(tenant, {case_customer})

    async def _flush(self, batch: _Batch) -> dict[int, Recorded | Exception]:
        """Write what the batch holds: the log, then each customer's profile, then the flags."""
        items, batch.items = batch.items, []
        outcomes: dict[int, Recorded | Exception] = dict(batch.flushed)
        batch.flushed.clear()
        batch.cases.clear()
        batch.case_customers.clear()
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
                cases = await self._write_cases(tenant, [i for i in pending if i.event])
                owner = await self._project(
                    tenant, customer_id, [item.contact for item in pending], list(cases.values())
                )
            except Exception as exc:  # noqa: BLE001 - retried on redelivery (stays unprojected)
                outcomes.update({item.index: exc for item in pending})
                continue
            await self._store.mark_many_projected(tenant, [i.doc["event_id"] for i in pending])
            for item in pending:
                case_id = item.doc.get("case_id", "")
                outcomes[item.index] = Recorded(
                    item.doc["event_id"],
                    tenant,
                    owner,
                    duplicate=False,
                    merged_ids=item.merged,
                    restored_ids=item.restored,
                    case_id=case_id,
                    case_status=cases[case_id]["status"] if case_id in cases else "",
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

    async def _write_cases(self, tenant: str, items: list[_Pending]) -> dict[str, Document]:
        """Apply the new events to their cases (stored state, version-checked); case id → case.

        Assignment decided each event's case when the batch was prepared; here the events
        are applied to what the store holds now, so a concurrent writer's changes are kept.
        """
        if not items:
            return {}
        policy = self._case_policy_for(tenant)
        by_case: dict[str, list[tuple[str, CaseEvent]]] = {}
        for item in items:
            if item.event is not None:
                by_case.setdefault(item.doc["case_id"], []).append(
                    (item.doc["customer_id"], item.event)
                )
        stored = await self.cases.get(tenant, by_case)
        written: dict[str, Document] = {}
        for case_id, events in by_case.items():
            for _ in range(MAX_ATTEMPTS):
                current = stored.get(case_id)
                customer_id, opening = events[0]
                case = current or new_case(
                    tenant=tenant, case_id=case_id, customer_id=customer_id, event=opening
                )
                for _customer, event in events:
                    case = apply_event(case, event, policy)
                if current is None:
                    done = await self.cases.insert(case)
                else:
                    done = await self.cases.replace(case, expected_version=current["version"])
                if done:
                    written[case_id] = case
                    break
                stored.update(await self.cases.get(tenant, [case_id]))
            else:
                raise ConcurrentUpdateError(f"case {case_id} kept changing")
        return written

    async def _project(
        self,
        tenant: str,
        customer_id: str,
        contacts: list[Contact],
        cases: list[Document],
    ) -> str:
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
            if cases:
                open_case = open_case_after(customer.get("open_case_id", ""), cases)
                if open_case is None:
                    latest = await self.cases.latest_open(tenant, customer_id)
                    open_case = latest["_id"] if latest else ""
                updated = with_open_case(updated, open_case)
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

    async def _rebuild_case(self, tenant: str, case_id: str) -> None:
        """Rebuild a case from the interactions attached to it (after a crash mid-write).

        The event that opened the case goes first, the others in `occurred_at` order.
        """
        log_docs = await self.cases.case_log(tenant, case_id)
        entries = [
            (doc, event)
            for doc in log_docs
            if (
                event := case_event_from(
                    interaction_pb2.Interaction.FromString(bytes(doc["raw"])),
                    aware(doc["occurred_at"]),
                )
            )
            is not None
        ]
        if not entries:
            return
        entries.sort(key=lambda e: case_id_for(tenant, e[1].event_id) != case_id)
        first = entries[0][0]
        for _ in range(MAX_ATTEMPTS):
            current = (await self.cases.get(tenant, [case_id])).get(case_id)
            # A merge may have moved the case since: keep whose it is now, and where it began.
            owner = current or first
            rebuilt = fold(
                tenant=tenant,
                case_id=case_id,
                customer_id=owner["customer_id"],
                events=[event for _, event in entries],
                policy=self._case_policy_for(tenant),
            )
            if rebuilt is None:
                return
            rebuilt["origin_customer_id"] = owner.get("origin_customer_id", owner["customer_id"])
            if current is None:
                if await self.cases.insert(rebuilt):
                    return
            elif await self.cases.replace(rebuilt, expected_version=current["version"]):
                return
        raise ConcurrentUpdateError(f"case {case_id} kept changing")

    async def _rebuild_projection(self, tenant: str, customer_id: str) -> None:
        open_case = await self.cases.latest_open(tenant, customer_id)
        remark = None
        if source := await self.cases.latest_remark_source(tenant, customer_id):
            event = case_event_from(
                interaction_pb2.Interaction.FromString(bytes(source["raw"])),
                aware(source["occurred_at"]),
            )
            remark = remark_of(event, source.get("case_id", "")) if event else None
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
                "open_case_id": open_case["_id"] if open_case else "",
            }
            if remark is not None:
                updated = with_remark(updated, remark)
            if await self._store.replace_customer(updated, expected_version=customer["version"]):
                return
        raise ConcurrentUpdateError(f"customer {customer_id} kept changing")
