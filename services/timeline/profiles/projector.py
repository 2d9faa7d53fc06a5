"""Keeps customer profiles true to the log: per batch, and rebuilt after a crash."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass

from services.timeline.cases.events import case_event_from
from services.timeline.cases.lifecycle import open_case_after, remark_of
from services.timeline.cases.model import CaseDoc
from services.timeline.cases.records import CaseRecords
from services.timeline.errors import ConcurrentUpdateError
from services.timeline.interactions.entries import interaction_of
from services.timeline.interactions.records import InteractionLog
from services.timeline.profiles.consents import permits, purpose_token
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.profile import (
    Contact,
    apply_contact,
    with_open_case,
    with_remark,
    with_tally,
)
from services.timeline.profiles.records import CustomerRecords
from services.timeline.retry import CONFLICT, Lost, retry_on_conflict
from services.timeline.store.documents import aware, channel_token
from tsunagu.contracts.errors import ContractViolation, Reason
from tsunagu.v1 import interaction_pb2


def _applied(customer: CustomerDoc, contacts: list[Contact], open_case: str | None) -> CustomerDoc:
    """The profile with the contacts applied and its open case set (None: left as it is)."""
    updated = customer
    for contact in contacts:
        updated = apply_contact(updated, contact)
    return updated if open_case is None else with_open_case(updated, open_case)


Suggest = Callable[[CustomerDoc], Awaitable[object]]
"""Called with a profile whose soft signals (name, address) just changed."""

_SIGNAL_FIELDS = ("name_key", "address_key")


@dataclass(frozen=True, slots=True)
class Projector:
    """Applies contacts to profiles with version-checked writes."""

    customers: CustomerRecords
    _: KW_ONLY
    interactions: InteractionLog
    cases: CaseRecords
    suggest: Suggest

    async def project(
        self, tenant: str, customer_id: str, contacts: list[Contact], cases: list[CaseDoc]
    ) -> bool:
        """Apply contacts (and the batch's cases) to the customer's profile.

        Returns:
            False when the customer was merged away since it was resolved: the caller moves
            what it appended to the survivor and recounts it there.
        """

        async def attempt() -> bool | Lost:
            customer = (await self.customers.get_customers(tenant, [customer_id])).get(customer_id)
            if customer is None:
                raise ConcurrentUpdateError(f"customer {customer_id} vanished")
            if customer.get("merged_into"):
                return False
            open_case = open_case_after(customer.get("open_case_id", ""), cases) if cases else None
            if cases and open_case is None:
                latest = await self.cases.latest_open(tenant, customer_id)
                open_case = latest["_id"] if latest else ""
            updated = _applied(customer, contacts, open_case)
            if not await self.customers.replace_customer(
                updated, expected_version=customer["version"]
            ):
                return CONFLICT
            await self._signals_changed(customer, updated)
            return True

        return await retry_on_conflict(attempt, what=f"customer {customer_id}")

    async def project_many(
        self,
        tenant: str,
        work: Mapping[str, tuple[list[Contact], list[CaseDoc]]],
        known: Mapping[str, CustomerDoc],
        known_cases: Mapping[str, CaseDoc] | None = None,
    ) -> dict[str, bool | Exception]:
        """`project` for many customers: one bulk write of the profiles at their versions.

        `known` holds customers as read earlier in the batch (the others are read now, in
        one round trip), and `known_cases` cases as read then (by id: their open cases, for
        `open_case_after`); a profile another writer changed since, one merged away, or one
        whose open case needs the store is left to `project`, which reads it again.

        Returns:
            Customer id → what `project` would return, or the error that stopped it.
        """
        bases = {c: known[c] for c in work if c in known}
        bases.update(
            await self.customers.get_customers(tenant, [c for c in work if c not in bases])
        )
        planned: dict[str, tuple[CustomerDoc, CustomerDoc]] = {}
        for customer_id, (contacts, cases) in work.items():
            customer = bases.get(customer_id)
            if customer is None or customer.get("merged_into"):
                continue
            current = customer.get("open_case_id", "")
            current_case = (known_cases or {}).get(current)
            if current_case is not None and current_case["customer_id"] != customer_id:
                current_case = None  # moved since (a merge or a split): the store says
            open_case = (
                open_case_after(current, cases, current_case=current_case) if cases else None
            )
            # Otherwise only the store knows the open case: `project` reads it.
            if not cases or open_case is not None:
                planned[customer_id] = (customer, _applied(customer, contacts, open_case))
        lost = await self.customers.replace_customers(
            [(updated, customer["version"]) for customer, updated in planned.values()]
        )
        outcomes: dict[str, bool | Exception] = {}
        for customer_id, (contacts, cases) in work.items():
            try:
                if customer_id in planned and customer_id not in lost:
                    await self._signals_changed(*planned[customer_id])
                    outcomes[customer_id] = True
                else:
                    outcomes[customer_id] = await self.project(tenant, customer_id, contacts, cases)
            except Exception as exc:  # noqa: BLE001 - reported for this customer only
                outcomes[customer_id] = exc
        return outcomes

    async def check_outreach(
        self, tenant: str, customer_id: str, outreach: interaction_pb2.OutreachAction
    ) -> None:
        """Refuse an outreach the customer has not consented to (or withdrew consent for).

        Raises:
            ContractViolation: `consent_required` (the event is dead-lettered, never stored).
        """
        customer = (await self.customers.get_customers(tenant, [customer_id])).get(customer_id)
        channel, purpose = channel_token(outreach.channel), purpose_token(outreach.purpose)
        if customer is None or not permits(customer.get("consents", {}), channel, purpose):
            raise ContractViolation(
                "agent_action.outreach",
                f"customer {customer_id} has not granted {channel} x {purpose}",
                code=Reason.CONSENT_REQUIRED,
            )

    async def _signals_changed(self, before: CustomerDoc, after: CustomerDoc) -> None:
        if any(after.get(f) and after.get(f) != before.get(f) for f in _SIGNAL_FIELDS):
            await self.suggest(after)

    async def rebuild(self, tenant: str, customer_id: str) -> None:
        """Recount the customer from its log (a crash between append and projection)."""
        open_case = await self.cases.latest_open(tenant, customer_id)
        remark = None
        if source := await self.interactions.latest_remark_source(tenant, customer_id):
            event = case_event_from(interaction_of(source), aware(source["occurred_at"]))
            remark = remark_of(event, source.get("case_id", "")) if event else None

        async def attempt() -> Lost | None:
            customer = (await self.customers.get_customers(tenant, [customer_id])).get(customer_id)
            if customer is None:
                return None
            tally = await self.interactions.tally(tenant, customer_id)
            updated = with_open_case(
                with_tally(customer, tally), open_case["_id"] if open_case else ""
            )
            if remark is not None:
                updated = with_remark(updated, remark)
            if await self.customers.replace_customer(updated, expected_version=customer["version"]):
                return None
            return CONFLICT

        await retry_on_conflict(attempt, what=f"customer {customer_id}")
