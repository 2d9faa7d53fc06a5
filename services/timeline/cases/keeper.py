"""Case writes for the recorder: assignment against a batch's view, version-checked writes,
and rebuilding a case from the log after a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from functools import partial

from services.timeline.cases.events import CaseEvent, case_event_from
from services.timeline.cases.lifecycle import (
    Assignment,
    CaseRefusedError,
    apply_event,
    assign,
    case_id_for,
    fold,
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
    opened. Dropped at every flush: the store is then the truth.
    """

    cases: dict[str, CaseDoc] = field(default_factory=dict)
    customers: set[tuple[str, str]] = field(default_factory=set)
    # The cases as the store held them when read: the flush writes the batch's events onto
    # these at their version instead of reading them again (a changed version is a lost race).
    stored: dict[str, CaseDoc] = field(default_factory=dict)

    def clear(self) -> None:
        self.cases.clear()
        self.customers.clear()
        self.stored.clear()

    def load(self, tenant: str, customer_id: str, cases: list[CaseDoc]) -> None:
        """Add a customer's cases as read from the store."""
        for case in cases:
            self.cases.setdefault(case["_id"], case)
            self.stored.setdefault(case["_id"], case)
        self.customers.add((tenant, customer_id))


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
        if (tenant, customer_id) not in view.customers:
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
        return assignment

    async def preload(self, tenant: str, customer_ids: Iterable[str], view: CaseView) -> None:
        """Read the recent cases of many customers into the view in one round trip."""
        wanted = [c for c in customer_ids if (tenant, c) not in view.customers]
        for customer_id, cases in (await self.store.recent_of(tenant, wanted)).items():
            view.load(tenant, customer_id, cases)

    async def write(self, tenant: str, changes: list[CaseChange]) -> dict[str, CaseDoc]:
        """Apply the new events to their cases (stored state, version-checked); case id → case.

        Raises:
            ConcurrentUpdateError: A case kept changing under other writers.
        """
        written, failed = await self.write_many(tenant, changes, {})
        for error in failed.values():
            raise error
        return written

    async def write_many(
        self, tenant: str, changes: list[CaseChange], stored: Mapping[str, CaseDoc]
    ) -> tuple[dict[str, CaseDoc], dict[str, ConcurrentUpdateError]]:
        """Apply the new events to their cases in one version-checked bulk write.

        Assignment decided each event's case when the batch was prepared; here the events
        are applied to `stored` (the cases as read then; the others are read now), and a
        case another writer changed since is read again and retried alone, so a concurrent
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
        bases.update(await self.store.get(tenant, [i for i in by_case if i not in bases]))
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
