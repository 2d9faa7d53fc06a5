"""Case assignment and writes against an in-memory case store: windows per tenant, races."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from services.timeline.cases import CaseEvent, CasePolicy, case_id_for
from services.timeline.cases.keeper import CaseChange, CaseKeeper, CaseView
from services.timeline.errors import PermanentError
from tests.unit.case_events import POLICY, action, contact
from tests.unit.memory_stores import MemoryCases, MemoryLog

CUSTOMER = "cus_1"
HOUR = 60  # minutes
POLICIES = {
    "acme": POLICY,
    # A tenant whose cases go stale within a day and never reopen after an hour.
    "brisk": CasePolicy(attach_window=timedelta(days=1), reopen_window=timedelta(hours=1)),
}


async def _same_customer(_tenant: str, first: str, second: str) -> bool:
    return first == second


class Desk:
    """What the recorder does per batch: assign each event, then write the batch's cases."""

    def __init__(self) -> None:
        self.cases = MemoryCases()
        self.keeper = CaseKeeper(
            self.cases,
            interactions=MemoryLog(),
            policy_for=POLICIES.__getitem__,
            same_customer=_same_customer,
        )

    async def batch(self, tenant: str, *events: CaseEvent) -> list[str]:
        view = CaseView()
        changes = []
        for event in events:
            assignment = await self.keeper.assign(tenant, CUSTOMER, event, view)
            changes.append(CaseChange(assignment.case_id, CUSTOMER, event))
        await self.keeper.write(tenant, changes)
        return [change.case_id for change in changes]


async def test_contacts_attach_within_the_tenants_window_and_open_a_new_case_after_it() -> None:
    desk = Desk()
    first = contact(minutes=0)
    [opened] = await desk.batch("acme", first)
    assert opened == case_id_for("acme", first.event_id)
    assert await desk.batch("acme", contact(minutes=6 * 24 * HOUR)) == [opened]
    [fresh] = await desk.batch("acme", contact(minutes=(6 * 24 + 8 * 24) * HOUR))
    assert fresh != opened
    assert desk.cases.docs[opened]["interaction_count"] == 2


async def test_the_same_gap_opens_a_new_case_for_a_tenant_with_a_shorter_window() -> None:
    desk = Desk()
    [opened] = await desk.batch("brisk", contact(minutes=0))
    [later] = await desk.batch("brisk", contact(minutes=30 * HOUR))
    assert later != opened


async def test_a_contact_soon_after_resolution_reopens_the_case_and_a_late_one_does_not() -> None:
    desk = Desk()
    [opened] = await desk.batch("acme", contact(minutes=0))
    await desk.batch("acme", action("resolution", minutes=1 * HOUR, summary="done"))
    assert desk.cases.docs[opened]["status"] == "resolved"
    assert await desk.batch("acme", contact(minutes=30 * HOUR)) == [opened]
    assert desk.cases.docs[opened]["status"] == "open"
    assert desk.cases.docs[opened]["reopen_count"] == 1
    await desk.batch("acme", action("resolution", minutes=31 * HOUR, summary="done"))
    [fresh] = await desk.batch("acme", contact(minutes=(31 + 73) * HOUR))
    assert fresh != opened


async def test_a_batch_sees_the_case_its_first_event_opened() -> None:
    desk = Desk()
    cases = await desk.batch(
        "acme", contact(minutes=0), contact(minutes=1 * HOUR), contact(minutes=2 * HOUR)
    )
    assert len(set(cases)) == 1
    assert desk.cases.docs[cases[0]]["interaction_count"] == 3


async def test_a_write_that_loses_its_race_is_applied_again_to_the_stored_case() -> None:
    desk = Desk()
    [opened] = await desk.batch("acme", contact(minutes=0))
    desk.cases.lose_next("replace", times=2)
    await desk.batch("acme", contact(minutes=1 * HOUR))
    case = desk.cases.docs[opened]
    assert (case["interaction_count"], case["version"]) == (2, 1)


async def test_an_action_naming_a_case_of_another_customer_is_refused() -> None:
    desk = Desk()
    other = contact(minutes=0)
    view = CaseView()
    assignment = await desk.keeper.assign("acme", "cus_other", other, view)
    await desk.keeper.write("acme", [CaseChange(assignment.case_id, "cus_other", other)])
    named = dataclasses.replace(
        action("resolution", minutes=1 * HOUR, summary="done"), case_id=assignment.case_id
    )
    with pytest.raises(PermanentError, match="not a case of customer"):
        await desk.keeper.assign("acme", CUSTOMER, named, CaseView())
