"""The unit of work of recording a batch: dedupe → resolve → assign case → append → project."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import datetime

from opentelemetry import trace

from services.timeline.cases.events import CaseEvent, case_event_from
from services.timeline.cases.keeper import CaseChange, CaseKeeper, CaseView
from services.timeline.cases.lifecycle import Assignment, remark_of
from services.timeline.cases.model import CaseDoc
from services.timeline.errors import ConcurrentUpdateError, PermanentError
from services.timeline.identity.commands import IDENTITY_ACTIONS, IdentityCommands
from services.timeline.identity.policy import IdentityKey, IdentityPolicy
from services.timeline.identity.presented import (
    Normalised,
    Presented,
    matchable_keys,
    presented,
    verified_keys,
)
from services.timeline.identity.resolver import IdentityResolver, Merged, MergePlan, Resolution
from services.timeline.interactions.entries import (
    entry_to_proto,
    interaction_document,
    occurred_at,
)
from services.timeline.interactions.model import InteractionDoc, InteractionState
from services.timeline.interactions.records import InteractionLog
from services.timeline.profiles.contacts import contact_from
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.profile import Contact
from services.timeline.profiles.projector import Projector
from services.timeline.read_ahead import ReadAhead, Waiting
from services.timeline.store.error_text import error_text
from tsunagu.v1 import interaction_pb2, timeline_pb2

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# A batch is recorded in rounds: merges wait for the end of their round (with the events
# that depend on them) and are done together. Past this many rounds (merges that keep
# losing races), the rest is recorded one merge at a time, each done when it is met.
MAX_ROUNDS = 4


@dataclass(frozen=True, slots=True)
class Recorded:
    """The outcome of recording one interaction: what the `timeline.updated` notice says."""

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
    # The stored entry as readers get it; None for a duplicate that was announced before
    # (a duplicate whose notice never went out carries it, to be announced now).
    entry: timeline_pb2.TimelineEntry | None = None
    # False: stored and projected, but not yet marked projected in the log; the caller marks
    # it with its notice (`mark_announced`, or `mark_projected` when the notice failed).
    marked: bool = True


@dataclass(slots=True)
class _Pending:
    index: int
    doc: InteractionDoc
    contact: Contact
    merged: list[str]
    restored: list[str] = field(default_factory=list)
    # Set when the interaction belongs to a case (`doc["case_id"]`).
    event: CaseEvent | None = None


@dataclass(slots=True)
class _Batch:
    """Writes resolved but not yet flushed, and outcomes of flushes done mid-batch."""

    items: list[_Pending] = field(default_factory=list)
    queued: dict[tuple[str, str], str] = field(default_factory=dict)
    flushed: dict[int, Recorded | Exception] = field(default_factory=dict)
    cases: CaseView = field(default_factory=CaseView)
    # Identities and customers read for the rest of the batch; gone at a flush.
    ahead: ReadAhead | None = None
    # False once a read-ahead failed: each event then reads for itself and fails alone.
    reads_ahead: bool = True
    # Events left for the next round, and the merges they wait for; False in the last round.
    waiting: Waiting = field(default_factory=Waiting)
    defers: bool = True
    # Merges done at the end of the last round, by the index of the event that asked.
    merged: dict[int, Merged] = field(default_factory=dict)
    # Each event's identifiers, normalised once for the batch (the read-ahead needs their
    # keys, the event's own resolution all of them, in every round it is prepared in).
    presented: dict[int, list[Presented]] = field(default_factory=dict)
    normalised: Normalised = field(default_factory=dict)

    def add(self, item: _Pending) -> None:
        self.items.append(item)
        self.queued[(item.doc["tenant"], item.doc["event_id"])] = item.doc["customer_id"]


@dataclass(frozen=True, slots=True)
class TimelineRecorder:
    """Turns interactions from the stream into the customer timeline; safe to repeat.

    It only orders the slices' steps; every collaborator is handed in (see `bootstrap`).
    """

    _: KW_ONLY
    interactions: InteractionLog
    resolver: IdentityResolver
    commands: IdentityCommands
    cases: CaseKeeper
    projector: Projector
    identity_for: Callable[[str], IdentityPolicy]
    clock: Callable[[], datetime]

    async def record(self, interaction: interaction_pb2.Interaction) -> Recorded:
        """Record one interaction; raises what `record_batch` would report for it."""
        outcome = (await self.record_batch([interaction]))[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def record_batch(
        self,
        interactions: Sequence[interaction_pb2.Interaction],
        *,
        marks_with_notices: bool = False,
    ) -> list[Recorded | Exception]:
        """Record interactions in order; one outcome each, a failure never fails the others.

        `marks_with_notices`: the caller announces the batch and then marks it projected and
        announced in one write (`mark_announced`); the events of the batch's last flush come
        back `marked=False`. (A flush before a merge marks its events itself: the merge's
        recount must find them projected.)

        Store round trips are shared by the batch, whatever its size: per tenant, one
        duplicate lookup, one read of the identities every event presents, one of their
        customers and one of those customers' recent cases, one insert each of the new
        customers and their identifiers; then one `insert_many`, one bulk write of the cases,
        one of the profiles and one flag update. Identity resolution stays one event at a
        time, in order, against that read (an event whose keys the batch changed since reads
        for itself), and everything pending is flushed before a merge so that the merge moves
        and counts a complete log; later events on the customers a flush or a merge wrote
        read for themselves, the others keep the batch's read.

        Merges are batched: an event that links customers waits for the end of the round,
        and so does every later event that could depend on it (one presenting its
        identifiers or leading to its customers, one whose identifiers the round cannot
        vouch for, and everything from an agent action on); the others are recorded as they
        come. At the end of the round everything queued is flushed once, the merges are done
        together (`IdentityResolver.merge_many`), and the events that waited are recorded in
        order in the next round. Order is kept per customer, not across the batch.
        """
        outcomes: list[Recorded | Exception | None] = [None] * len(interactions)
        batch = _Batch()
        with tracer.start_as_current_span(
            "timeline.record_batch", attributes={"tsunagu.batch.items": len(interactions)}
        ):
            known: dict[str, dict[str, InteractionState]] = {}
            for tenant in {i.tenant for i in interactions if i.tenant}:
                known[tenant] = await self.interactions.interaction_states(
                    tenant, [i.event_id for i in interactions if i.tenant == tenant]
                )
            indices = list(range(len(interactions)))
            for round_ in range(1, MAX_ROUNDS + 1):
                batch.defers = round_ < MAX_ROUNDS
                for position, index in enumerate(indices):
                    if batch.ahead is None and batch.reads_ahead:
                        # At the start, and after an identity command made the last read stale.
                        rest = {i: interactions[i] for i in indices[position:]}
                        await self._read_ahead(rest, known, batch)
                    interaction = interactions[index]
                    try:
                        outcomes[index] = await self._prepare(
                            index, interaction, known.get(interaction.tenant, {}), batch
                        )
                    except Exception as exc:  # noqa: BLE001 - reported for this item only
                        outcomes[index] = exc
                waiting, batch.waiting = batch.waiting, Waiting()
                if not waiting.indices:
                    break
                # The merges move and count a complete log: what is queued is written first.
                batch.flushed.update(await self._flush(batch))
                merged = await self._merge_waiting(waiting, batch, outcomes)
                # A merge done a round ago whose event waited again: what it read may be
                # stale after this round's merges, so that event reads afresh.
                batch.merged = {i: replace(m, lookup=None) for i, m in batch.merged.items()}
                batch.merged.update(merged)
                indices = [i for i in waiting.indices if outcomes[i] is None]
            last = await self._flush(batch, marks=not marks_with_notices)
            for index, outcome in last.items():
                outcomes[index] = outcome
        return [o if o is not None else RuntimeError("not recorded") for o in outcomes]

    async def _read_ahead(
        self,
        interactions: Mapping[int, interaction_pb2.Interaction],
        known: dict[str, dict[str, InteractionState]],
        batch: _Batch,
    ) -> None:
        """Read the identities, customers and recent cases of these events at once, and create
        the customers of those whose identifiers nobody holds yet.
        """
        events: dict[str, list[tuple[str, datetime, list[IdentityKey]]]] = {}
        for index, interaction in interactions.items():
            tenant = interaction.tenant
            if (
                not tenant
                or interaction.event_id in known.get(tenant, {})
                or interaction.WhichOneof("detail") == "agent_action"
            ):
                continue
            try:
                found = matchable_keys(self._presented(index, interaction, batch))
                event = (interaction.event_id, occurred_at(interaction), found)
            except Exception:  # noqa: BLE001, S112 - the item fails alone when it is prepared
                continue
            events.setdefault(tenant, []).append(event)
        ahead = ReadAhead()
        try:
            for tenant, of_tenant in events.items():
                lookup = await self.resolver.look_up(tenant, {k for e in of_tenant for k in e[2]})
                lookup, created = await self.resolver.create_many(tenant, of_tenant, lookup)
                for customer_id in created:
                    batch.cases.load(tenant, customer_id, [])  # a new customer has no cases
                ahead.lookups[tenant] = lookup
                open_cases = {c: doc.get("open_case_id", "") for c, doc in lookup.live.items()}
                await self.cases.preload(tenant, open_cases, batch.cases)
        except Exception as exc:  # noqa: BLE001 - the per-event reads report it per event
            log.warning("reading ahead for a batch failed: %s", error_text(exc))
            batch.reads_ahead = False
            return
        batch.ahead = ahead

    def _presented(
        self, index: int, interaction: interaction_pb2.Interaction, batch: _Batch
    ) -> list[Presented]:
        """The event's normalised identifiers, worked out once per batch (and each identifier
        the batch's events present once).
        """
        found = batch.presented.get(index)
        if found is None:
            policy = self.identity_for(interaction.tenant)
            found = presented(interaction, policy, normalised=batch.normalised)
            batch.presented[index] = found
        return found

    async def _prepare(
        self,
        index: int,
        interaction: interaction_pb2.Interaction,
        known: dict[str, InteractionState],
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
            await self._recover(tenant, event_id, state)
            return await self._seen_before(tenant, event_id, state)

        identifiers = self._presented(index, interaction, batch)
        detail = interaction.WhichOneof("detail")
        keys = matchable_keys(identifiers)
        done = batch.merged.get(index)
        if batch.defers and batch.waiting.must_wait(
            tenant,
            event_id,
            keys,
            batch.ahead,
            agent_action=detail == "agent_action",
            own=done.lookup if done is not None else None,
        ):
            batch.waiting.add(
                index, tenant, event_id, keys, batch.ahead, barrier=detail == "agent_action"
            )
            return None
        at = occurred_at(interaction)
        merged: list[str] = []
        restored: list[str] = []
        protected: dict[IdentityKey, str] = {}
        action = interaction.agent_action.WhichOneof("action") if detail == "agent_action" else None
        if action in IDENTITY_ACTIONS:
            # It moves records between customers: everything queued is written first, and
            # the rest of the batch is read for again.
            batch.flushed.update(await self._flush(batch))
            batch.ahead = None
            batch.cases.clear()
            outcome = await self.commands.apply(interaction, self.clock())
            customer_id, merged, restored = (
                outcome.customer_id,
                outcome.merged_ids,
                outcome.restored_ids,
            )
        elif detail == "agent_action":
            customer_id = await self._subject_customer(tenant, interaction.agent_action.customer_id)
            if action == "outreach":
                # A consent queued earlier in this batch counts: it is written first.
                batch.flushed.update(await self._flush(batch))
                await self.projector.check_outreach(
                    tenant, customer_id, interaction.agent_action.outreach
                )
        else:
            resolution = await self._resolve(
                index,
                tenant=tenant,
                event_id=event_id,
                at=at,
                presented_keys=(keys, verified_keys(identifiers)),
                batch=batch,
            )
            if resolution is None:
                return None  # it waits for its merge, at the end of the round
            customer_id, merged = resolution.customer_id, resolution.merged_ids
            protected = resolution.protected
            if resolution.created:
                batch.cases.load(tenant, customer_id, [])  # a new customer has no cases yet

        event = case_event_from(interaction, at)
        assignment = Assignment("")
        if event is not None:
            assignment = await self.cases.assign(tenant, customer_id, event, batch.cases)
        ident_docs = [p.document(protected.get(p.key)) for p in identifiers]
        doc = interaction_document(
            interaction,
            customer_id=customer_id,
            occurred_at=at,
            recorded_at=self.clock(),
            identifiers=ident_docs,
            case_id=assignment.case_id,
            switched_from=assignment.switched_from,
        )
        remark = remark_of(event, assignment.case_id) if event is not None else None
        contact = contact_from(interaction, occurred_at=at, identifiers=ident_docs, remark=remark)
        batch.add(
            _Pending(index, doc, contact, merged, restored, event if assignment.case_id else None)
        )
        return None

    async def _resolve(
        self,
        index: int,
        *,
        tenant: str,
        event_id: str,
        at: datetime,
        presented_keys: tuple[list[IdentityKey], frozenset[IdentityKey]],
        batch: _Batch,
    ) -> Resolution | None:
        """Resolve the customer; None when the event links customers that are to be merged
        at the end of the round (it waits for that). In the last round: flush, then merge.

        The flush comes first so that the merge re-points and recounts a complete log.
        `presented_keys`: the keys to match on, and those of them the channel verified.
        """
        keys, verified = presented_keys
        ahead = batch.ahead
        done = batch.merged.pop(index, None)
        if done is not None:
            # Its merge was done at the end of the last round: resolve from what it left.
            lookup = done.lookup
        else:
            lookup = ahead.lookup_for(tenant, keys) if ahead is not None else None
        resolution = await self.resolver.resolve(
            tenant=tenant,
            event_id=event_id,
            occurred_at=at,
            keys=keys,
            verified=verified,
            may_merge=False,
            lookup=lookup,
        )
        if ahead is not None:
            ahead.note(tenant, keys, resolution)
        if not resolution.merge_needed:
            if done is not None:
                return replace(resolution, merged_ids=done.merged_ids)
            return resolution
        if batch.defers and resolution.plan is not None:
            batch.waiting.add(index, tenant, event_id, keys, ahead, plan=resolution.plan)
            return None
        batch.flushed.update(await self._flush(batch))
        merged = await self.resolver.resolve(
            tenant=tenant,
            event_id=event_id,
            occurred_at=at,
            keys=keys,
            verified=verified,
            may_merge=True,
            lookup=resolution.lookup,
        )
        # The merge moved the records of these customers; the rest of the read still holds.
        self._forget(batch, tenant, {merged.customer_id, *merged.merged_ids})
        return merged

    async def _merge_waiting(
        self,
        waiting: Waiting,
        batch: _Batch,
        outcomes: list[Recorded | Exception | None],
    ) -> dict[int, Merged]:
        """Do the merges the round's events asked for, together; by the asking event's index.

        A merge another merge beat is left out: its event resolves again in the next round
        (and asks for the merge of what is live by then). One that failed otherwise fails
        its event alone.
        """
        done: dict[int, Merged] = {}
        for tenant, planned in waiting.plans.items():
            plans: list[MergePlan] = [plan for _, plan in planned]
            try:
                results = await self.resolver.merge_many(tenant, plans)
            except Exception as exc:  # noqa: BLE001 - the merges' events fail, nothing else
                log.warning("merging for a batch failed: %s", error_text(exc))
                for index, _ in planned:
                    outcomes[index] = exc
                continue
            for (index, _), result in zip(planned, results, strict=True):
                if isinstance(result, ConcurrentUpdateError):
                    continue
                if isinstance(result, Exception):
                    outcomes[index] = result
                    continue
                done[index] = result
                # The merge moved these customers' records; the rest of the read still holds.
                self._forget(batch, tenant, {result.survivor_id, *result.merged_ids})
                batch.cases.load(tenant, result.survivor_id, result.cases)
                if batch.ahead is not None and result.survivor is not None:
                    # As the merge wrote it: the next flush's base for it, without a read.
                    batch.ahead.hold(tenant, result.survivor)
        return done

    async def _recover(self, tenant: str, event_id: str, state: InteractionState) -> None:
        """A previous delivery stored the event but stopped before projecting it: the slices
        rebuild what it may have left half-written.
        """
        if state.get("projected"):
            return
        if state.get("case_id"):
            await self.cases.rebuild(tenant, state["case_id"])
        await self.projector.rebuild(tenant, state["customer_id"])
        await self.interactions.mark_projected(tenant, [event_id])

    async def _seen_before(self, tenant: str, event_id: str, state: InteractionState) -> Recorded:
        """A redelivered event: stored before, and announced unless the process stopped first."""
        if state.get("announced"):
            return Recorded(event_id, tenant, state["customer_id"], duplicate=True)
        [doc] = await self.interactions.get_interactions(tenant, [event_id])
        return Recorded(
            event_id,
            tenant,
            doc["customer_id"],
            duplicate=True,
            case_id=doc.get("case_id", ""),
            entry=entry_to_proto(doc),
        )

    async def mark_announced(self, recorded: Sequence[Recorded]) -> None:
        """Note that these events' notices went out (a redelivery will not repeat them), and
        that those recorded `marked=False` are projected: one write per tenant.
        """
        await self._mark([o for o in recorded if o.entry is not None], announced=True)

    async def mark_projected(self, recorded: Sequence[Recorded]) -> None:
        """Mark projected those recorded `marked=False` whose notices did not go out: they
        are visible to readers, and their redelivery announces them without rebuilding.
        """
        await self._mark([o for o in recorded if not o.marked], announced=False)

    async def _mark(self, recorded: Sequence[Recorded], *, announced: bool) -> None:
        """Flag these events projected (and `announced`): one write per tenant."""
        by_tenant: dict[str, list[str]] = {}
        for outcome in recorded:
            by_tenant.setdefault(outcome.tenant, []).append(outcome.event_id)
        for tenant, event_ids in by_tenant.items():
            await self.interactions.mark_projected(tenant, event_ids, announced=announced)

    async def _flush(self, batch: _Batch, *, marks: bool = True) -> dict[int, Recorded | Exception]:
        """Write what the batch holds: the log, then the cases and profiles, then the flags
        (`marks`; else the caller writes them with the notices' mark).
        """
        items, batch.items = batch.items, []
        outcomes: dict[int, Recorded | Exception] = dict(batch.flushed)
        batch.flushed.clear()
        # What the batch read is the base of these writes, and stale after them for the
        # customers they write; the rest of it stands for the rest of the batch.
        ahead = batch.ahead
        stored_cases, opened_cases = dict(batch.cases.stored), set(batch.cases.opened)
        written: dict[str, set[str]] = {}
        for item in items:
            written.setdefault(item.doc["tenant"], set()).add(item.doc["customer_id"])
        known = {t: dict(ahead.customers(t)) if ahead else {} for t in written}
        for tenant, customer_ids in written.items():
            self._forget(batch, tenant, customer_ids)
        if not items:
            return outcomes
        try:
            inserted = await self.interactions.insert_interactions([item.doc for item in items])
        except Exception as exc:  # noqa: BLE001 - every item of the failed write is retried
            outcomes.update({item.index: exc for item in items})
            return outcomes
        by_tenant: dict[str, list[_Pending]] = {}
        for item in items:
            if item.doc["_id"] in inserted:
                by_tenant.setdefault(item.doc["tenant"], []).append(item)
            else:
                doc = item.doc
                outcomes[item.index] = Recorded(
                    doc["event_id"], doc["tenant"], doc["customer_id"], duplicate=True
                )
        for tenant, pending in by_tenant.items():
            projected = await self._project_all(
                tenant, pending, stored_cases, opened_cases, known[tenant], marks=marks
            )
            # A customer merged away meanwhile had its records moved to its survivor.
            self._forget(
                batch,
                tenant,
                {o.customer_id for o in projected.values() if isinstance(o, Recorded)},
            )
            outcomes.update(projected)
        return outcomes

    @staticmethod
    def _forget(batch: _Batch, tenant: str, customer_ids: set[str]) -> None:
        """The batch wrote these customers: what it read of them and their cases is stale."""
        if batch.ahead is not None:
            batch.ahead.forget(tenant, customer_ids)
        batch.cases.forget(tenant, customer_ids)

    async def _project_all(
        self,
        tenant: str,
        pending: list[_Pending],
        stored_cases: dict[str, CaseDoc],
        opened_cases: set[str],
        known: dict[str, CustomerDoc],
        *,
        marks: bool,
    ) -> dict[int, Recorded | Exception]:
        """Write the cases and profiles of newly appended items: one bulk write each, over
        the cases the batch read (`stored_cases`) or opened (`opened_cases`).

        A customer whose case or profile could not be written fails alone; its items stay
        unprojected, and their redelivery rebuilds what the write may have left half-done.
        """
        by_customer: dict[str, list[_Pending]] = {}
        for item in pending:
            by_customer.setdefault(item.doc["customer_id"], []).append(item)
        failed: dict[str, Exception] = {}
        try:
            cases, lost = await self.cases.write_many(
                tenant,
                [
                    CaseChange(i.doc["case_id"], i.doc["customer_id"], i.event)
                    for i in pending
                    if i.event is not None
                ],
                stored_cases,
                opened_cases,
            )
        except Exception as exc:  # noqa: BLE001 - retried on redelivery (stays unprojected)
            return {item.index: exc for item in pending}
        for item in pending:
            if item.doc.get("case_id", "") in lost:
                failed[item.doc["customer_id"]] = lost[item.doc["case_id"]]
        work = {
            customer_id: (
                [i.contact for i in items],
                list(
                    {i.doc["case_id"]: cases[i.doc["case_id"]] for i in items if i.event}.values()
                ),
            )
            for customer_id, items in by_customer.items()
            if customer_id not in failed
        }
        owners: dict[str, str] = {}
        try:
            projected = await self.projector.project_many(tenant, work, known, stored_cases)
        except Exception as exc:  # noqa: BLE001 - retried on redelivery (stays unprojected)
            projected = dict.fromkeys(work, exc)
        for customer_id, result in projected.items():
            try:
                if isinstance(result, Exception):
                    raise result
                owners[customer_id] = (
                    customer_id if result else await self._moved(tenant, customer_id)
                )
            except Exception as exc:  # noqa: BLE001 - this customer's items only
                failed[customer_id] = exc
        done = [i for c in owners for i in by_customer[c]]
        if marks:
            await self.interactions.mark_projected(tenant, [i.doc["event_id"] for i in done])
        outcomes: dict[int, Recorded | Exception] = {
            i.index: failed[c] for c, items in by_customer.items() if c in failed for i in items
        }
        for item in done:
            owner = owners[item.doc["customer_id"]]
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
                entry=entry_to_proto(item.doc | {"customer_id": owner}),
                marked=marks,
            )
        return outcomes

    async def _moved(self, tenant: str, customer_id: str) -> str:
        """Another replica merged the customer after we resolved to it: move what we appended
        to the survivor and recount it from the log (so nothing is counted twice); returns it.
        """
        target = await self.resolver.survivor_ids(tenant, {customer_id})
        survivor = target.get(customer_id)
        if survivor is None:
            raise ConcurrentUpdateError(f"customer {customer_id} has no live survivor")
        await self.resolver.move_records(tenant, [customer_id], survivor)
        await self.projector.rebuild(tenant, survivor)
        return survivor

    async def _subject_customer(self, tenant: str, customer_id: str) -> str:
        if not customer_id:
            raise PermanentError("agent action without a customer_id")
        live = await self.resolver.live_customers(tenant, {customer_id})
        if not live:
            raise PermanentError(f"agent action for unknown customer {customer_id}")
        return next(iter(live))
