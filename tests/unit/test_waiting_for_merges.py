"""Which events of a batch wait for the merges at the end of their round, and which go ahead."""

from __future__ import annotations

from datetime import UTC, datetime

from services.timeline.identity.documents import IdentityDoc
from services.timeline.identity.policy import IdentityKey
from services.timeline.identity.resolver import Lookup, MergePlan
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.profile import new_customer
from services.timeline.read_ahead import ReadAhead, Waiting

T0 = datetime(2026, 11, 1, tzinfo=UTC)
TENANT = "acme"
PHONE: IdentityKey = ("phone", "+819011112222")
EMAIL: IdentityKey = ("email", "a@example.jp")
OTHER: IdentityKey = ("email", "other@example.jp")
OLD: IdentityKey = ("phone", "+819033334444")
NEW: IdentityKey = ("chat_visitor", "v-new")


def _customer(customer_id: str) -> CustomerDoc:
    return new_customer(tenant=TENANT, customer_id=customer_id, created_at=T0, first_contact_at=T0)


def _identity(key: IdentityKey, customer_id: str) -> IdentityDoc:
    return {"_id": key[1], "kind": key[0], "value": key[1], "customer_id": customer_id}


def _ahead() -> ReadAhead:
    """Phone → cus_a, email → cus_b, other → cus_c; old → cus_old, merged into cus_a."""
    ahead = ReadAhead()
    ahead.lookups[TENANT] = Lookup(
        docs={
            PHONE: _identity(PHONE, "cus_a"),
            EMAIL: _identity(EMAIL, "cus_b"),
            OTHER: _identity(OTHER, "cus_c"),
            OLD: _identity(OLD, "cus_old"),
        },
        target={"cus_a": "cus_a", "cus_b": "cus_b", "cus_c": "cus_c", "cus_old": "cus_a"},
        live={c: _customer(c) for c in ("cus_a", "cus_b", "cus_c")},
    )
    return ahead


def _waiting_for_a_merge(ahead: ReadAhead) -> Waiting:
    """The event at index 3 links cus_a (by phone) and cus_b (by email)."""
    waiting = Waiting()
    plan = MergePlan("evt-link", [_customer("cus_a"), _customer("cus_b")], {})
    waiting.add(3, TENANT, "evt-link", [PHONE, EMAIL], ahead, plan=plan)
    return waiting


def test_nothing_waits_while_nothing_waits_before_it() -> None:
    ahead = _ahead()

    assert not Waiting().must_wait(TENANT, "evt-1", [PHONE], ahead, agent_action=True)
    assert not Waiting().must_wait(TENANT, "evt-1", [PHONE], None, agent_action=False)


def test_an_event_of_another_customer_goes_ahead_of_a_waiting_merge() -> None:
    ahead = _ahead()
    waiting = _waiting_for_a_merge(ahead)

    assert not waiting.must_wait(TENANT, "evt-5", [OTHER], ahead, agent_action=False)
    # A key nobody holds (a new customer) does not lead to the merge either.
    assert not waiting.must_wait(TENANT, "evt-6", [NEW], ahead, agent_action=False)
    # The same key in another tenant is another identifier.
    ahead.lookups["globex"] = Lookup(
        docs={PHONE: _identity(PHONE, "cus_z")},
        target={"cus_z": "cus_z"},
        live={"cus_z": _customer("cus_z")},
    )
    assert not waiting.must_wait("globex", "evt-7", [PHONE], ahead, agent_action=False)


def test_an_event_presenting_a_waiting_events_identifier_waits() -> None:
    ahead = _ahead()
    waiting = _waiting_for_a_merge(ahead)

    assert waiting.must_wait(TENANT, "evt-5", [PHONE], ahead, agent_action=False)
    assert waiting.must_wait(TENANT, "evt-6", [OTHER, EMAIL], ahead, agent_action=False)


def test_an_event_leading_to_a_merged_customer_through_a_merge_chain_waits() -> None:
    ahead = _ahead()
    waiting = _waiting_for_a_merge(ahead)

    # OLD is held by cus_old, merged into cus_a before: it leads to a customer being merged.
    assert waiting.must_wait(TENANT, "evt-5", [OLD], ahead, agent_action=False)


def test_a_redelivery_of_a_waiting_event_waits_for_it() -> None:
    ahead = _ahead()
    waiting = _waiting_for_a_merge(ahead)

    assert waiting.must_wait(TENANT, "evt-link", [], ahead, agent_action=False)


def test_an_event_the_batch_read_does_not_hold_for_waits() -> None:
    ahead = _ahead()
    waiting = _waiting_for_a_merge(ahead)
    ahead.touched.add((TENANT, OTHER))  # the batch wrote its customer: it would read afresh

    assert waiting.must_wait(TENANT, "evt-5", [OTHER], ahead, agent_action=False)
    assert waiting.must_wait(TENANT, "evt-6", [NEW], None, agent_action=False)


def test_from_an_agent_action_that_waits_on_everything_waits() -> None:
    ahead = _ahead()
    waiting = _waiting_for_a_merge(ahead)

    assert waiting.must_wait(TENANT, "evt-note", [], ahead, agent_action=True)
    waiting.add(4, TENANT, "evt-note", [], ahead, barrier=True)

    assert waiting.must_wait(TENANT, "evt-5", [OTHER], ahead, agent_action=False)
    assert waiting.indices == [3, 4]
    assert [index for index, _ in waiting.plans[TENANT]] == [3]


def test_an_event_that_waits_makes_its_own_customers_wait_too() -> None:
    ahead = _ahead()
    waiting = _waiting_for_a_merge(ahead)
    # It presents the merge's phone (so it waits) and OTHER: cus_c's later events wait too,
    # so that they stay behind it.
    waiting.add(5, TENANT, "evt-5", [PHONE, OTHER], ahead)

    assert waiting.must_wait(
        TENANT, "evt-6", [("email", "c2@example.jp"), OTHER], ahead, agent_action=False
    )
    assert ("acme", "cus_c") in waiting.customers
