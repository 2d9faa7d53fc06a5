"""The case state machine on its own: assignment windows, statuses, SLA clocks, follow-ups."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.timeline.cases.events import CaseEvent
from services.timeline.cases.lifecycle import (
    STATUSES,
    CaseRefusedError,
    apply_event,
    assign,
    case_id_for,
    decided_by_open_case,
    is_open,
    new_case,
    open_case_after,
    task_id_for,
)
from services.timeline.cases.model import CaseDoc
from services.timeline.cases.policy import CasePolicy
from tests.unit.case_events import POLICY, T0, TENANT, action, contact, reply


class Desk:
    """What the recorder does with the pure functions: assign, then apply, per event."""

    def __init__(self, policy: CasePolicy = POLICY) -> None:
        self.policy = policy
        self.cases: dict[str, CaseDoc] = {}
        self.switches: list[str] = []
        self.assigned: list[str] = []

    def feed(self, *events: CaseEvent) -> str:
        case_id = ""
        for event in events:
            requested = self.cases.get(event.case_id) if event.case_id else None
            assignment = assign(
                TENANT, list(self.cases.values()), event, self.policy, requested=requested
            )
            case_id = assignment.case_id
            self.switches.append(assignment.switched_from)
            self.assigned.append(case_id)
            if not case_id:
                continue
            base = (
                new_case(tenant=TENANT, case_id=case_id, customer_id="cus_1", event=event)
                if assignment.opens
                else self.cases[case_id]
            )
            self.cases[case_id] = apply_event(base, event, self.policy)
        return case_id

    def __getitem__(self, case_id: str) -> CaseDoc:
        return self.cases[case_id]


def test_first_contact_opens_a_case_whose_id_comes_from_the_event() -> None:
    desk = Desk()
    first = contact()
    case_id = desk.feed(first)
    assert case_id == case_id_for(TENANT, first.event_id)
    assert case_id != case_id_for("other-tenant", first.event_id)
    case = desk[case_id]
    assert case["status"] == "open"
    assert case["opened_at"] == first.occurred_at
    assert case["channels"] == ["chat"]
    assert case["customer_id"] == case["origin_customer_id"] == "cus_1"


def test_a_call_while_the_chat_case_is_open_attaches_and_records_the_switch() -> None:
    desk = Desk()
    case_id = desk.feed(contact("chat"))
    assert desk.feed(contact("voice", minutes=30)) == case_id
    assert desk.switches[-1] == "chat"
    assert desk.feed(contact("voice", minutes=31)) == case_id
    assert desk.switches[-1] == ""  # same channel: no switch
    assert desk[case_id]["channels"] == ["chat", "voice"]
    assert desk[case_id]["last_channel"] == "voice"
    assert desk[case_id]["interaction_count"] == 3


def test_a_contact_after_the_attach_window_opens_a_new_case() -> None:
    desk = Desk(CasePolicy(attach_window=timedelta(hours=2)))
    first = desk.feed(contact(minutes=0))
    assert desk.feed(contact(minutes=119)) == first
    # Activity moves the window: 119 + 121 minutes is more than 2 h after the last contact.
    second = desk.feed(contact("email", minutes=119 + 121))
    assert second != first
    assert desk[first]["status"] == "open"  # the stale case is not closed, just not joined
    assert desk[second]["reopen_count"] == 0


def test_an_answer_makes_the_case_pending_and_the_customers_reply_opens_it_again() -> None:
    desk = Desk()
    case_id = desk.feed(contact(minutes=0))
    desk.feed(reply(minutes=5))
    assert desk[case_id]["status"] == "pending"
    assert desk[case_id]["first_response_seconds"] == 300
    assert desk[case_id]["owner_agent_id"] == "a1"  # the first agent who acted
    desk.feed(contact(minutes=9))
    assert desk[case_id]["status"] == "open"
    desk.feed(reply(minutes=12, agent="a2"))
    assert desk[case_id]["first_response_seconds"] == 300  # the first one counts
    assert desk[case_id]["owner_agent_id"] == "a1"


def test_a_progress_update_counts_as_a_response() -> None:
    desk = Desk()
    case_id = desk.feed(contact(minutes=0))
    desk.feed(action("progress_update", minutes=60, message="We are checking"))
    assert desk[case_id]["status"] == "pending"
    assert desk[case_id]["first_response_seconds"] == 3600


def test_a_bot_or_system_message_is_not_a_first_response() -> None:
    desk = Desk()
    case_id = desk.feed(contact(minutes=0))
    bot = CaseEvent(
        event_id="bot-1",
        occurred_at=T0 + timedelta(minutes=1),
        channel="chat",
        direction="outbound",
        actor_type="bot",
    )
    desk.feed(bot)
    assert desk[case_id]["first_response_at"] is None
    assert desk[case_id]["status"] == "open"


def test_handoff_moves_owner_and_queue_and_keeps_the_context() -> None:
    desk = Desk()
    case_id = desk.feed(contact())
    desk.feed(
        action(
            "handoff",
            minutes=3,
            to_channel="voice",
            to_queue="billing",
            to_agent="a9",
            summary="Wants a refund",
            open_questions=["Which order?"],
        )
    )
    case = desk[case_id]
    assert case["owner_agent_id"] == "a9"
    assert case["queue"] == "billing"
    handoff = case["last_handoff"]
    assert handoff is not None
    assert handoff["summary"] == "Wants a refund"
    assert handoff["open_questions"] == ["Which order?"]
    assert case["status"] == "open"  # a handoff is not an answer to the customer


def test_escalation_raises_the_level_and_sticks_until_resolved() -> None:
    desk = Desk()
    case_id = desk.feed(contact())
    desk.feed(action("escalation", minutes=1, level=2, reason="legal"))
    assert (desk[case_id]["status"], desk[case_id]["escalation_level"]) == ("escalated", 2)
    desk.feed(action("escalation", minutes=2, level=1, reason="lower?"))
    assert desk[case_id]["escalation_level"] == 2  # escalation never lowers the level
    desk.feed(action("escalation", minutes=3))
    assert desk[case_id]["escalation_level"] == 3  # no level given: one up
    desk.feed(reply(minutes=4), contact(minutes=5))
    assert desk[case_id]["status"] == "escalated"
    desk.feed(action("resolution", minutes=6, summary="refunded"))
    assert desk[case_id]["status"] == "resolved"


def test_transfer_owes_the_customer_a_follow_up_until_they_hear_back() -> None:
    desk = Desk()
    case_id = desk.feed(contact())
    transfer = action("transfer", minutes=10, agent="a1", to_department="logistics", reason="")
    desk.feed(transfer)
    [task] = desk[case_id]["follow_ups"]
    assert task["id"] == task_id_for(TENANT, transfer.event_id)
    assert task["agent_id"] == "a1"
    assert task["reason"] == "transferred to logistics"
    assert task["due_at"] == transfer.occurred_at + POLICY.follow_up_due
    assert desk[case_id]["department"] == "logistics"
    assert desk[case_id]["next_follow_up_due"] == task["due_at"]
    # A note is not the customer hearing back; a reply from anyone is.
    desk.feed(action("note", minutes=11, text="waiting for logistics"))
    assert not desk[case_id]["follow_ups"][0]["done"]
    answer = reply(minutes=30, agent="a5")
    desk.feed(answer)
    [task] = desk[case_id]["follow_ups"]
    assert task["done"]
    assert task["done_by_event_id"] == answer.event_id
    assert desk[case_id]["next_follow_up_due"] is None


def test_complete_follow_up_names_its_task_and_an_unknown_task_is_refused() -> None:
    desk = Desk()
    case_id = desk.feed(contact())
    transfer = action("transfer", minutes=1, to_department="billing")
    desk.feed(transfer)
    task_id = task_id_for(TENANT, transfer.event_id)
    with pytest.raises(CaseRefusedError):
        desk.feed(action("complete_follow_up", minutes=2, task_id="fup_nope"))
    assert desk.feed(action("complete_follow_up", minutes=3, task_id=task_id)) == case_id
    assert desk[case_id]["follow_ups"][0]["done"]


def test_resolution_stops_the_clock_and_a_contact_within_the_window_reopens() -> None:
    desk = Desk()
    case_id = desk.feed(contact(minutes=0))
    desk.feed(action("resolution", minutes=90, summary="Sent a replacement"))
    case = desk[case_id]
    assert case["status"] == "resolved"
    assert case["resolution_seconds"] == 90 * 60
    assert case["resolution_summary"] == "Sent a replacement"
    assert open_case_after(case_id, [case]) is None  # the open case went: look for another
    desk.feed(action("csat", minutes=100, score=4, comment="quick"))
    assert desk[case_id]["csat"] == {"score": 4, "comment": "quick"}
    assert desk[case_id]["status"] == "resolved"  # agent actions never reopen by themselves
    assert desk.feed(contact("email", minutes=90 + 71 * 60)) == case_id
    case = desk[case_id]
    assert (case["status"], case["reopen_count"]) == ("open", 1)
    assert case["resolved_at"] is None
    assert case["resolution_seconds"] is None
    assert desk.switches[-1] == "chat"


def test_a_contact_after_the_reopen_window_opens_a_new_case() -> None:
    desk = Desk()
    case_id = desk.feed(contact(minutes=0))
    desk.feed(action("resolution", minutes=10))
    later = desk.feed(contact(minutes=10 + 72 * 60 + 1))
    assert later != case_id
    assert desk[case_id]["reopen_count"] == 0


def test_a_message_written_before_the_resolution_but_arriving_after_it_does_not_reopen() -> None:
    desk = Desk()
    case_id = desk.feed(contact(minutes=0))
    desk.feed(action("resolution", minutes=10))
    assert desk.feed(contact(minutes=9)) == case_id
    assert desk[case_id]["status"] == "resolved"
    assert desk[case_id]["reopen_count"] == 0


def test_outbound_traffic_with_no_case_around_opens_none() -> None:
    desk = Desk()
    assert desk.feed(reply(minutes=0)) == ""
    assert desk.cases == {}


def test_agent_action_without_a_case_goes_to_the_open_case_however_old() -> None:
    desk = Desk(CasePolicy(attach_window=timedelta(hours=1)))
    case_id = desk.feed(contact(minutes=0))
    assert desk.feed(action("note", minutes=600, text="still on it")) == case_id


def test_agent_action_with_no_case_to_go_to_opens_one() -> None:
    desk = Desk()
    case_id = desk.feed(action("cancellation_request", reason="financial_burden"))
    assert case_id
    assert desk[case_id]["cancellation_request"] == {"reason": "financial_burden"}


def test_tags_are_a_union_in_order_of_first_use() -> None:
    desk = Desk()
    case_id = desk.feed(contact())
    desk.feed(action("tag", tags=["delivery", "refund"]), action("tag", tags=["refund", "vip"]))
    assert desk[case_id]["tags"] == ["delivery", "refund", "vip"]


def test_applying_an_event_leaves_the_case_it_was_given_as_it_was() -> None:
    desk = Desk()
    case_id = desk.feed(contact(), action("tag", tags=["delivery"]))
    desk.feed(action("transfer", minutes=10, to_department="logistics", reason=""))
    given = desk[case_id]
    before = copy.deepcopy(given)
    # A new channel, a new tag, the follow-up done and another owed: each list changes.
    email, tag, answer, transfer = (
        apply_event(given, event, POLICY)
        for event in (
            contact("email", minutes=20),
            action("tag", minutes=21, tags=["refund"]),
            reply(minutes=30, agent="a5"),
            action("transfer", minutes=40, to_department="billing", reason=""),
        )
    )
    assert email["channels"] == ["chat", "email"]
    assert tag["tags"] == ["delivery", "refund"]
    assert answer["follow_ups"][0]["done"]
    assert len(transfer["follow_ups"]) == 2
    assert given == before


def test_a_late_first_response_dated_before_the_case_opened_never_goes_negative() -> None:
    desk = Desk()
    case_id = desk.feed(contact(minutes=10))
    desk.feed(reply(minutes=5))  # arrives late, dated before the case opened
    assert desk[case_id]["first_response_seconds"] is None
    desk.feed(reply(minutes=12))
    assert desk[case_id]["first_response_seconds"] == 120


# -- properties --------------------------------------------------------------------------------


_MAKERS: dict[str, Callable[[int, str], CaseEvent]] = {
    "contact": lambda minutes, channel: contact(channel, minutes=minutes),
    "reply": lambda minutes, channel: reply(channel, minutes=minutes),
    "progress": lambda minutes, _: action("progress_update", minutes=minutes, message="u"),
    "escalate": lambda minutes, _: action("escalation", minutes=minutes, level=0, reason="r"),
    "transfer": lambda minutes, _: action("transfer", minutes=minutes, to_department="d"),
    "resolve": lambda minutes, _: action("resolution", minutes=minutes, summary="done"),
    "note": lambda minutes, _: action("note", minutes=minutes, text="n"),
    "csat": lambda minutes, _: action("csat", minutes=minutes, score=3, comment=""),
}


def _event(kind: str, minutes: int, channel: str) -> CaseEvent:
    return _MAKERS[kind](minutes, channel)


_events = st.lists(
    st.tuples(
        st.sampled_from(sorted(_MAKERS)),
        # Out of order on purpose: times jump back and forth over days.
        st.integers(min_value=0, max_value=60 * 24 * 20),
        st.sampled_from(["chat", "voice", "email"]),
    ),
    min_size=1,
    max_size=40,
)


def _feed_all(spec: Sequence[tuple[str, int, str]]) -> Desk:
    desk = Desk()
    for kind, minutes, channel in spec:
        desk.feed(_event(kind, minutes, channel))
    return desk


@settings(max_examples=300, deadline=None)
@given(_events)
def test_clocks_are_never_negative_and_statuses_stay_consistent(
    spec: list[tuple[str, int, str]],
) -> None:
    desk = _feed_all(spec)
    assigned = 0
    for case in desk.cases.values():
        assert case["status"] in STATUSES
        for clock in (case["first_response_seconds"], case["resolution_seconds"]):
            assert clock is None or clock >= 0
        assert (case["status"] == "resolved") == (case["resolved_at"] is not None)
        assert (case["resolution_seconds"] is None) == (case["resolved_at"] is None)
        assert case["reopen_count"] >= 0
        open_due = [t["due_at"] for t in case["follow_ups"] if not t["done"]]
        assert case["next_follow_up_due"] == (min(open_due) if open_due else None)
        assert len(set(case["channels"])) == len(case["channels"])
        if case["escalation_level"] == 0:
            assert case["status"] != "escalated"
        assigned += case["interaction_count"]
    # Every event lands on exactly one case; only agent replies with no case around land on none.
    assert assigned == sum(1 for case_id in desk.assigned if case_id)
    for (kind, _, _), case_id in zip(spec, desk.assigned, strict=True):
        assert case_id or kind == "reply"


@settings(max_examples=100, deadline=None)
@given(_events)
def test_the_same_events_in_the_same_order_give_the_same_cases(
    spec: list[tuple[str, int, str]],
) -> None:
    events = [_event(kind, minutes, channel) for kind, minutes, channel in spec]
    first, second = Desk(), Desk()
    first.feed(*events)
    second.feed(*events)
    assert first.cases == second.cases


def _profile_open_case(current: str, touched: CaseDoc, cases: dict[str, CaseDoc]) -> str:
    """The profile's `open_case_id` after `touched` changed, as the projector keeps it (with
    the case `current` names, as the batch read it)."""
    after = open_case_after(current, [touched], current_case=cases.get(current))
    if after is not None:
        return after
    still_open = [c for c in cases.values() if is_open(c)]
    latest = max(still_open, key=lambda c: (c["updated_at"], c["_id"]), default=None)
    return latest["_id"] if latest else ""


# A customer's history: each event some time after (or before: events of one customer can
# arrive out of time order) the one before, from minutes to beyond the attach window, so that
# idle open cases and recent resolutions both occur; agents' actions sometimes name one of
# the customer's cases (an older open one, say).
_GAPS = [-60 * 24 * 8, -60 * 24, -60, 0, 5, 60, 60 * 24, 60 * 24 * 3, 60 * 24 * 8]
_histories = st.lists(
    st.tuples(
        st.sampled_from(sorted(_MAKERS)),
        st.sampled_from(_GAPS),
        st.sampled_from(["chat", "voice", "email"]),
        st.one_of(st.none(), st.integers(min_value=0, max_value=9)),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=1000, deadline=None)
@given(_histories, st.sampled_from(sorted(_MAKERS)), st.sampled_from(_GAPS))
def test_an_event_the_open_case_settles_goes_where_all_the_cases_would_send_it(
    history: list[tuple[str, int, str, int | None]], kind: str, gap: int
) -> None:
    """The batch reads only a customer's open case (its profile's, kept by `open_case_after`)
    when that settles the event: then assignment over it alone equals assignment over every
    case.
    """
    desk = Desk()
    open_id, minutes = "", 0
    for kind_, step, channel, named in history:
        minutes += step
        event = _event(kind_, minutes, channel)
        if named is not None and event.is_agent_action and desk.cases:
            event = replace(event, case_id=sorted(desk.cases)[named % len(desk.cases)])
        case_id = desk.feed(event)
        if case_id:
            open_id = _profile_open_case(open_id, desk[case_id], desk.cases)
    event = _event(kind, minutes + gap, "chat")
    if not open_id or not decided_by_open_case(desk[open_id], event, POLICY):
        return
    everything = assign(TENANT, list(desk.cases.values()), event, POLICY)
    alone = assign(TENANT, [desk[open_id]], event, POLICY)
    assert alone == everything


def test_the_open_case_does_not_settle_a_late_contact_a_resolved_one_or_a_task() -> None:
    desk = Desk()
    case_id = desk.feed(contact(minutes=0))
    case = desk[case_id]
    assert decided_by_open_case(case, contact(minutes=60), POLICY)
    assert decided_by_open_case(case, action("note", minutes=60 * 24 * 30, text="n"), POLICY)
    assert not decided_by_open_case(case, contact(minutes=60 * 24 * 8), POLICY)
    assert not decided_by_open_case(
        case, action("complete_follow_up", minutes=1, task_id="t"), POLICY
    )
    desk.feed(action("resolution", minutes=5, summary="done"))
    assert not decided_by_open_case(desk[case_id], contact(minutes=6), POLICY)


def test_an_older_open_case_touched_in_the_past_does_not_become_the_open_case() -> None:
    day = 60 * 24
    desk = Desk()
    older = desk.feed(contact(minutes=0))
    newer = desk.feed(contact(minutes=8 * day))  # the older one went idle: a new case
    # An agent's note on the older case, dated before the newer case's last activity.
    desk.feed(action("note", minutes=day, case_id=older, text="checked the parcel"))

    assert open_case_after(newer, [desk[older]], current_case=desk[newer]) == newer
    # Without the current case the answer takes the store.
    assert open_case_after(newer, [desk[older]]) is None
    # Touched later than the current one's last activity, it is the open case.
    desk.feed(action("note", minutes=9 * day, case_id=older, text="called back"))
    assert open_case_after(newer, [desk[older]], current_case=desk[newer]) == older
    # A resolved current case never stays.
    desk.feed(action("resolution", minutes=9 * day + 1, case_id=newer, summary="done"))
    assert open_case_after(newer, [desk[older]], current_case=desk[newer]) == older
