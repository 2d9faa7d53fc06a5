"""Case writes for the recorder: assignment against a batch's view, version-checked writes,
and rebuilding a case from the log after a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import KW_ONLY, dataclass, field
from functools import partial

from services.timeline.cases.events import CaseEvent, case_event_from
from services.timeline.cases.lifecycle import (
    Assignment,
    CaseRefusedError,
    apply_event,
    assign,
    case_id_for,
    decided_by_open_case,
    fold,
    is_open,
    new_case,
)
from services.timeline.cases.model import CaseDoc
from services.timeline.cases.policy import CasePolicy
from services.timeline.cases.records import CaseRecords
from services.timeline.errors import ConcurrentUpdateError, PermanentError
from services.timeline.interactions.records import InteractionLog
from services.timeline.retry import CONFLICT, Lost, retry_on_conflict
from services.timeline.store.documents import aware
from tsunagu.v1 import interaction_pb2

SameCustomer = Callable[[str, str, str], Awaitable[bool]]
"""(tenant, case's customer, event's customer) → whether they are one customer now."""


@dataclass(slots=True)
class CaseView:
    """The cases of a batch's customers as the batch has changed them so far (read once per
    customer), so that the second chat message of a batch attaches to the case its first one
    opened. A flush drops the cases of the customers it wrote: the store is then the truth.
    """

    cases: dict[str, CaseDoc] = field(default_factory=dict)
    customers: set[tuple[str, str]] = field(default_factory=set)
    # The cases as the store held them when read: the flush writes the batch's events onto
    # these at their version instead of reading them again (a changed version is a lost race).
    stored: dict[str, CaseDoc] = field(default_factory=dict)
    # Customers of whom only the open case was read (`CaseKeeper.preload`) → its id.
    partial: dict[tuple[str, str], str] = field(default_factory=dict)
    # The cases the batch's events opened: not in the store yet, so the flush does not read them.
    opened: set[str] = field(default_factory=set)

    def clear(self) -> None:
        self.cases.clear()
        self.customers.clear()
        self.stored.clear()
        self.partial.clear()
        self.opened.clear()

    def forget(self, tenant: str, customer_ids: Collection[str]) -> None:
        """Drop these customers' cases (the batch wrote or moved them): they are read again."""
        held = {**self.stored, **self.cases}
        gone = [
            i for i, c in held.items() if c["tenant"] == tenant and c["customer_id"] in customer_ids
        ]
        for case_id in gone:
            self.cases.pop(case_id, None)
            self.stored.pop(case_id, None)
            self.opened.discard(case_id)
        self.customers.difference_update((tenant, c) for c in customer_ids)
        for customer_id in customer_ids:
            self.partial.pop((tenant, customer_id), None)

    def load(self, tenant: str, customer_id: str, cases: list[CaseDoc]) -> None:
        """Add a customer's recent cases as read from the store (what the batch changed of
        them already is kept).
        """
        for case in cases:
            self.cases.setdefault(case["_id"], case)
            self.stored.setdefault(case["_id"], case)
        self.customers.add((tenant, customer_id))
        self.partial.pop((tenant, customer_id), None)

    def load_open_case(self, tenant: str, customer_id: str, case: CaseDoc) -> None:
        """Add only a customer's open case: enough for most events (`decided_by_open_case`)."""
        self.load(tenant, customer_id, [case])
        self.partial[(tenant, customer_id)] = case["_id"]


@dataclass(frozen=True, slots=True)
class CaseChange:
    """One event to apply to a case at flush time."""

    case_id: str
    customer_id: str
    event: CaseEvent


@dataclass(frozen=True, slots=True)
class CaseKeeper:
    """Decides and writes cases; per-tenant windows come from `policy_for`."""

    store: CaseRecords
    _: KW_ONLY
    interactions: InteractionLog
    policy_for: Callable[[str], CasePolicy]
    same_customer: SameCustomer

    async def assign(
        self, tenant: str, customer_id: str, event: CaseEvent, view: CaseView
    ) -> Assignment:
        """Decide the event's case against the batch's view of the customer's cases.

        Raises:
            PermanentError: The event names a case that is not the customer's, or one it
                cannot apply to.
        """
        policy = self.policy_for(tenant)
        if (tenant, customer_id) not in view.customers or (
            not event.case_id and not self._decided(view, tenant, customer_id, event, policy)
        ):
            view.load(tenant, customer_id, await self.store.recent(tenant, customer_id))
        requested = None
        if event.case_id:
            requested = view.cases.get(event.case_id)
            if requested is None or requested["tenant"] != tenant:
                requested = (await self.store.get(tenant, [event.case_id])).get(event.case_id)
                if requested is not None:
                    view.stored.setdefault(requested["_id"], requested)
            if requested is None or not await self.same_customer(
                tenant, requested["customer_id"], customer_id
            ):
                raise PermanentError(
                    f"agent action names case {event.case_id!r}, "
                    f"which is not a case of customer {customer_id}"
                )
        known = [
            case
            for case in view.cases.values()
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
                else view.cases[assignment.case_id]
            )
            view.cases[assignment.case_id] = apply_event(base, event, policy)
            if assignment.opens:
                view.opened.add(assignment.case_id)
        return assignment

    @staticmethod
    def _decided(
        view: CaseView, tenant: str, customer_id: str, event: CaseEvent, policy: CasePolicy
    ) -> bool:
        """Whether the view holds enough of the customer's cases to assign `event`."""
        if (tenant, customer_id) not in view.partial:
            return True
        open_case = view.cases.get(view.partial[(tenant, customer_id)])
        return open_case is not None and decided_by_open_case(open_case, event, policy)

    async def preload(self, tenant: str, open_cases: Mapping[str, str], view: CaseView) -> None:
        """Read many customers' cases into the view: customer id → its profile's open case.

        A customer's open case (`open_case_id`, kept by every write of its profile) is read
        by `_id`, all in one round trip, and is all `assign` needs for most events; it reads
        the rest of a customer's recent cases only for an event it does not settle. The
        customers without one (or whose open case is no longer open, or no longer theirs)
        have their recent cases read together, one `customer_id` read each (`recent_of`).
        """
        wanted = {c: i for c, i in open_cases.items() if (tenant, c) not in view.customers}
        found = await self.store.get(tenant, {i for i in wanted.values() if i})
        rest = []
        for customer_id, case_id in wanted.items():
            case = found.get(case_id)
            if case is not None and case["customer_id"] == customer_id and is_open(case):
                view.load_open_case(tenant, customer_id, case)
            else:
                rest.append(customer_id)
        for customer_id, cases in (await self.store.recent_of(tenant, rest)).items():
            view.load(tenant, customer_id, cases)

    async def write(self, tenant: str, changes: list[CaseChange]) -> dict[str, CaseDoc]:
        """Apply the new events to their cases (stored state, version-checked); case id → case.

        Raises:
            ConcurrentUpdateError: A case kept changing under other writers.
        """
        written, failed = await self.write_many(tenant, changes, {}, ())
        for error in failed.values():
            raise error
        return written

    async def write_many(
        self,
        tenant: str,
        changes: list[CaseChange],
        stored: Mapping[str, CaseDoc],
        opened: Collection[str],
    ) -> tuple[dict[str, CaseDoc], dict[str, ConcurrentUpdateError]]:
        """Apply the new events to their cases in one version-checked bulk write.

        Assignment decided each event's case when the batch was prepared; here the events
        are applied to `stored` (the cases as read then), to nothing for the cases `opened`
        (the batch's events opened them: new), and to the others as read now. A case another
        writer changed (or created) since is read again and retried alone, so a concurrent
        writer's changes are kept.

        Returns:
            Case id → the case as written; case id → why it was not (it kept changing).
        """
        if not changes:
            return {}, {}
        policy = self.policy_for(tenant)
        by_case: dict[str, list[CaseChange]] = {}
        for change in changes:
            by_case.setdefault(change.case_id, []).append(change)
        bases = {i: stored[i] for i in by_case if i in stored}
        unread = [i for i in by_case if i not in bases and i not in opened]
        if unread:
            bases.update(await self.store.get(tenant, unread))
        planned = {
            case_id: self._applied(tenant, case_id, events, bases.get(case_id), policy)
            for case_id, events in by_case.items()
        }
        lost = await self.store.save_many(
            [(case, bases[i]["version"] if i in bases else None) for i, case in planned.items()]
        )
        written = {i: case for i, case in planned.items() if i not in lost}
        failed: dict[str, ConcurrentUpdateError] = {}
        fresh = await self.store.get(tenant, lost) if lost else {}
        for case_id in sorted(lost):
            try:
                written[case_id] = await retry_on_conflict(
                    partial(self._write_once, tenant, case_id, by_case[case_id], fresh, policy),
                    what=f"case {case_id}",
                )
            except ConcurrentUpdateError as exc:
                failed[case_id] = exc
        return written, failed

    def _applied(
        self,
        tenant: str,
        case_id: str,
        events: list[CaseChange],
        current: CaseDoc | None,
        policy: CasePolicy,
    ) -> CaseDoc:
        """The case with the events applied (a new case when there is none yet)."""
        case = current or new_case(
            tenant=tenant,
            case_id=case_id,
            customer_id=events[0].customer_id,
            event=events[0].event,
        )
        for change in events:
            case = apply_event(case, change.event, policy)
        return case

    async def _write_once(
        self,
        tenant: str,
        case_id: str,
        events: list[CaseChange],
        stored: dict[str, CaseDoc],
        policy: CasePolicy,
    ) -> CaseDoc | Lost:
        """One version-checked write of a case; on a lost race `stored` is read again."""
        current = stored.get(case_id)
        case = self._applied(tenant, case_id, events, current, policy)
        if await self._save(case, current):
            return case
        stored.update(await self.store.get(tenant, [case_id]))
        return CONFLICT

    async def _save(self, case: CaseDoc, current: CaseDoc | None) -> bool:
        if current is None:
            return await self.store.insert(case)
        return await self.store.replace(case, expected_version=current["version"])

    async def rebuild(self, tenant: str, case_id: str) -> None:
        """Rebuild a case from the interactions attached to it (after a crash mid-write).

        The event that opened the case goes first, the others in `occurred_at` order.
        """
        log_docs = await self.interactions.case_log(tenant, case_id)
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

        async def rebuild_once() -> Lost | None:
            current = (await self.store.get(tenant, [case_id])).get(case_id)
            # A merge may have moved the case since: keep whose it is now, and where it began.
            if current is not None:
                customer_id, origin = current["customer_id"], current["origin_customer_id"]
            else:
                customer_id = first["customer_id"]
                origin = str(first.get("origin_customer_id", customer_id))
            rebuilt = fold(
                tenant=tenant,
                case_id=case_id,
                customer_id=customer_id,
                events=[event for _, event in entries],
                policy=self.policy_for(tenant),
            )
            if rebuilt is None:
                return None
            rebuilt["origin_customer_id"] = origin
            return None if await self._save(rebuilt, current) else CONFLICT

        await retry_on_conflict(rebuild_once, what=f"case {case_id}")
