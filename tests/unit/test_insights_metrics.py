"""The metric definitions of docs/insights.md, on hand-built cases (pure logic)."""

from __future__ import annotations

import csv
import io
import random

import pytest

from services.insights.calendar import Period, TenantCalendar
from services.insights.events import CaseEvent
from services.insights.facts import CaseFacts, fold_case
from services.insights.figures import (
    DAY,
    FIGURES_BY_NAME,
    Context,
    GroupBy,
    Targets,
    rows,
    to_csv,
)
from services.insights.risk import customers_at_risk
from tests.unit.insights_cases import MIN, T0, action, event, reply
from tsunagu.v1 import interaction_pb2 as ipb

FOLLOW_UP_DUE = DAY
TOKYO = TenantCalendar()


def fold(*events: CaseEvent) -> CaseFacts:
    facts = fold_case(events, follow_up_due_seconds=FOLLOW_UP_DUE)
    assert facts is not None
    return facts


def context(
    *cases: CaseFacts, now: float = T0 + 30 * DAY, aliases: dict[str, str] | None = None
) -> Context:
    aliases = aliases or {}

    def identity(customer: str) -> str:
        return aliases.get(customer, customer)

    contacts: dict[str, list[float]] = {}
    for c in cases:
        contacts.setdefault(identity(c.customer_id), []).extend(c.contact_times)
    return Context(
        now=now,
        targets=Targets(),
        identity=identity,
        contacts_of={k: sorted(v) for k, v in contacts.items()},
    )


def figure(name: str, *cases: CaseFacts, x: Context | None = None) -> float | None:
    return FIGURES_BY_NAME[name].value(list(cases), x or context(*cases))


def test_first_response_is_from_the_opening_contact_to_the_first_agent_answer() -> None:
    facts = fold(event(0), event(2), reply(10), event(20), reply(25))
    assert facts.first_response_seconds == 10 * MIN
    # The clock runs from the first unanswered contact: the follow-up at 2 min waits too.
    assert facts.response_seconds == [10 * MIN, 5 * MIN]
    assert figure("average_response_seconds", facts) == 7.5 * MIN


def test_a_reopen_restarts_the_clocks_and_counts_only_the_time_the_customer_waited() -> None:
    facts = fold(
        event(0),
        reply(10),
        action(15, "resolution"),
        event(100, conversation="chat-2"),
        reply(130),
        action(140, "resolution"),
    )
    assert facts.reopen_count == 1
    assert facts.first_response_seconds == 10 * MIN
    assert facts.response_seconds == [10 * MIN, 30 * MIN]
    # 15 min for the first episode, 40 for the reopened one; the resolved gap is not counted.
    assert facts.resolution_seconds == 55 * MIN
    assert facts.contacts == 2
    assert not facts.first_contact_resolution


def test_a_message_written_before_the_resolution_that_arrives_late_does_not_reopen() -> None:
    late = event(12, recorded_at=T0 + 60 * MIN)
    facts = fold(event(0), reply(10), action(15, "resolution"), late)
    assert facts.reopen_count == 0
    assert facts.resolved


def test_the_fold_ignores_order_and_duplicates() -> None:
    events = [event(0), reply(10), action(15, "resolution"), event(100), reply(130)]
    shuffled = events * 2
    random.Random(7).shuffle(shuffled)
    assert fold(*shuffled) == fold(*events)


def test_a_resolution_without_an_answer_is_not_a_response_time() -> None:
    facts = fold(event(0), action(15, "resolution"))
    assert facts.first_response_seconds is None
    assert facts.response_seconds == []
    assert figure("first_response_seconds", facts) is None


def test_contacts_and_unique_customers_are_never_confused() -> None:
    one = fold(event(0), event(1), event(5, conversation="chat-9"))
    two = fold(event(60, case_id="c2", customer_id="cust-2", conversation="call-1"))
    three = fold(event(90, case_id="c3", customer_id="cust-3", conversation="mail-1"))
    x = context(one, two, three, aliases={"cust-2": "cust-1"})
    [row] = rows([one, two, three], x, period=Period.ALL, by=GroupBy.NONE, calendar=TOKYO)
    assert row.contacts == 4
    # cust-2 was merged into cust-1: one person.
    assert row.unique_customers == 2
    assert row.values["cases"] == 3


def test_first_contact_resolution_needs_one_conversation_and_nobody_else() -> None:
    solved = fold(event(0), reply(5), action(6, "resolution"))
    transferred = fold(
        event(0, case_id="c2"),
        action(3, "transfer", case_id="c2"),
        reply(5, case_id="c2"),
        action(6, "resolution", case_id="c2"),
    )
    open_ = fold(event(0, case_id="c3"), reply(5, case_id="c3"))
    assert solved.first_contact_resolution
    assert not transferred.first_contact_resolution
    # Open cases are not in the denominator.
    assert figure("first_contact_resolution_rate", solved, transferred, open_) == 0.5
    assert figure("transfer_rate", solved, transferred, open_) == pytest.approx(1 / 3)


def test_repeat_contact_counts_any_channel_of_the_same_resolved_identity() -> None:
    chat = fold(event(0), reply(5), action(10, "resolution"))
    # Two days later on the phone, under a customer id since merged into cust-1.
    phone = fold(event(2 * 24 * 60, case_id="c2", customer_id="cust-9", channel=ipb.CHANNEL_VOICE))
    # Five days after that resolution by email: inside 7 days, outside 72 hours.
    other = fold(
        event(0, case_id="c3", customer_id="cust-3"),
        action(10, "resolution", case_id="c3", customer_id="cust-3"),
    )
    email = fold(event(5 * 24 * 60, case_id="c4", customer_id="cust-3", channel=ipb.CHANNEL_EMAIL))
    cases = (chat, phone, other, email)
    x = context(*cases, aliases={"cust-9": "cust-1"})
    assert [c.case_id for c in FIGURES_BY_NAME["repeat_contact_72h_rate"].cases(cases, x)] == ["c1"]
    assert figure("repeat_contact_72h_rate", *cases, x=x) == 0.5
    assert figure("repeat_contact_7d_rate", *cases, x=x) == 1.0
    # Without the merge, the phone call is somebody else's.
    assert figure("repeat_contact_72h_rate", *cases) == 0.0


def test_retention_rate_is_retained_among_decided_cancellation_requests() -> None:
    def request(case: str, reason: int, outcome: int | None) -> CaseFacts:
        events = [
            event(0, case_id=case),
            action(1, "cancellation_request", case_id=case, cancellation_reason=reason),
        ]
        if outcome is not None:
            events.append(
                action(9, "cancellation_outcome", case_id=case, cancellation_outcome=outcome)
            )
        return fold(*events)

    cases = [
        request("c1", ipb.CANCELLATION_REASON_SURPLUS_STOCK, ipb.CANCELLATION_OUTCOME_RETAINED),
        request("c2", ipb.CANCELLATION_REASON_SURPLUS_STOCK, ipb.CANCELLATION_OUTCOME_CANCELLED),
        request("c3", ipb.CANCELLATION_REASON_NO_EFFECT, None),
        fold(event(0, case_id="c4")),
    ]
    x = context(*cases)
    [row] = rows(cases, x, period=Period.ALL, by=GroupBy.NONE, calendar=TOKYO)
    assert row.values["cancellation_requests"] == 3
    # The pending request is not decided yet: neither kept nor lost.
    assert row.values["retention_rate"] == 0.5
    assert row.cancellations_by_reason == {"no_effect": 1, "surplus_stock": 2}


def test_csat_mean_top_two_share_response_rate_and_comments() -> None:
    def rated(case: str, score: int, comment: bool) -> CaseFacts:
        return fold(
            event(0, case_id=case),
            action(5, "resolution", case_id=case),
            action(9, "csat", case_id=case, csat_score=score, has_comment=comment),
        )

    cases = [rated("c1", 5, True), rated("c2", 4, False), rated("c3", 2, True)]
    cases.append(fold(event(0, case_id="c4"), action(5, "resolution", case_id="c4")))
    assert figure("csat_mean", *cases) == pytest.approx(11 / 3)
    assert figure("csat_top2_share", *cases) == pytest.approx(2 / 3)
    assert figure("csat_response_rate", *cases) == 0.75
    assert figure("csat_comments", *cases) == 2


def test_a_follow_up_is_overdue_when_not_done_by_its_due_time() -> None:
    late = fold(event(0), action(1, "transfer"))
    on_time = fold(
        event(0, case_id="c2"),
        action(1, "transfer", case_id="c2"),
        action(60, "complete_follow_up", case_id="c2"),
    )
    x = context(late, on_time, now=T0 + 2 * DAY)
    assert [c.case_id for c in FIGURES_BY_NAME["overdue_follow_ups"].cases([late, on_time], x)] == [
        "c1"
    ]
    # Before the due time nothing is overdue yet.
    assert figure("overdue_follow_ups", late, on_time, x=context(late, on_time, now=T0 + 3600)) == 0


def test_sla_breach_counts_unanswered_cases_past_the_target() -> None:
    waiting = fold(event(0))
    fast = fold(
        event(0, case_id="c2"), reply(5, case_id="c2"), action(6, "resolution", case_id="c2")
    )
    x = context(waiting, fast, now=T0 + 2 * 3600)
    assert [c.case_id for c in FIGURES_BY_NAME["sla_breaches"].cases([waiting, fast], x)] == ["c1"]


def test_periods_and_business_hours_are_the_tenants_local_ones() -> None:
    # 23:30 UTC on 31 December is 08:30 on 1 January in Tokyo: before opening time.
    early = fold(event(-30))
    late = fold(event(60, case_id="c2"))
    x = context(early, late)
    by_day = rows([early, late], x, period=Period.DAY, by=GroupBy.BUSINESS_HOURS, calendar=TOKYO)
    assert [(r.period, r.group) for r in by_day] == [("2026-01-01", "in"), ("2026-01-01", "out")]
    utc = TenantCalendar(zone="UTC")
    assert [
        r.period for r in rows([early, late], x, period=Period.DAY, by=GroupBy.NONE, calendar=utc)
    ] == [
        "2025-12-31",
        "2026-01-01",
    ]
    assert [
        r.period for r in rows([early], x, period=Period.MONTH, by=GroupBy.NONE, calendar=TOKYO)
    ] == ["2026-01-01"]
    assert [
        r.period for r in rows([early], x, period=Period.WEEK, by=GroupBy.NONE, calendar=TOKYO)
    ] == ["2025-12-29"]


def test_grouping_by_agent_channel_and_queue() -> None:
    a = fold(event(0), reply(5, agent="a1", queue="billing"))
    b = fold(event(0, case_id="c2", channel=ipb.CHANNEL_VOICE), reply(5, agent="a2", case_id="c2"))
    x = context(a, b)
    groups = {
        by: [r.group for r in rows([a, b], x, period=Period.ALL, by=by, calendar=TOKYO)]
        for by in (GroupBy.AGENT, GroupBy.CHANNEL, GroupBy.QUEUE)
    }
    assert groups == {
        GroupBy.AGENT: ["a1", "a2"],
        GroupBy.CHANNEL: ["chat", "voice"],
        GroupBy.QUEUE: ["", "billing"],
    }


def test_csv_has_one_row_per_case_and_defuses_formulas() -> None:
    a = fold(event(0), reply(5, agent="=HYPERLINK(1)"))
    b = fold(event(0, case_id="c2"))
    text = to_csv([a, b], context(a, b), TOKYO)
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["case_id"] for r in table] == ["c1", "c2"]
    assert table[0]["agent"] == "'=HYPERLINK(1)"
    assert table[0]["first_response_seconds"] == "300.0"


def test_customers_at_risk_are_ranked_with_reasons_and_evidence() -> None:
    cancelling = fold(
        event(0, customer_id="c-cancel"),
        action(1, "cancellation_request", customer_id="c-cancel", cancellation_reason=1),
    )
    unhappy = fold(
        event(0, case_id="c2", customer_id="c-unhappy"),
        reply(5, case_id="c2", customer_id="c-unhappy"),
        action(6, "resolution", case_id="c2", customer_id="c-unhappy"),
        action(9, "csat", case_id="c2", customer_id="c-unhappy", csat_score=1),
    )
    calm = fold(
        event(0, case_id="c3", customer_id="c-calm"),
        reply(5, case_id="c3", customer_id="c-calm"),
        action(6, "resolution", case_id="c3", customer_id="c-calm"),
    )
    frequent = [
        fold(
            event(i * 60, case_id=f"f{i}", customer_id="c-often", conversation=f"s{i}"),
            reply(i * 60 + 1, case_id=f"f{i}", customer_id="c-often"),
            action(i * 60 + 2, "resolution", case_id=f"f{i}", customer_id="c-often"),
        )
        for i in range(3)
    ]
    cases = [cancelling, unhappy, calm, *frequent]
    x = context(*cases, now=T0 + DAY)
    ranked = customers_at_risk(cases, x, identity=x.identity)
    assert [r.customer_id for r in ranked] == ["c-cancel", "c-unhappy", "c-often"]
    top = ranked[0].reasons[0]
    assert (top.code, top.case_id, top.event_id) == (
        "open_cancellation_request",
        "c1",
        cancelling.evidence["cancellation_request"],
    )
    assert ranked[1].reasons[0].event_id == unhappy.evidence["csat"]
    assert [r.code for r in ranked[2].reasons] == ["repeated_contacts"]


def test_a_call_counts_as_one_contact_whatever_events_it_is_told_by() -> None:
    call = {"channel": ipb.CHANNEL_VOICE, "conversation": "call-7"}
    facts = fold(
        event(0, kind=ipb.KIND_CALL_STARTED, **call),
        event(9, kind=ipb.KIND_CALL_ENDED, **call),
    )
    # A call known only by its end is a contact too (the timeline opens its case on it).
    ended_only = fold(event(0, kind=ipb.KIND_CALL_ENDED, case_id="c2", **call))
    assert (facts.contacts, ended_only.contacts) == (1, 1)
