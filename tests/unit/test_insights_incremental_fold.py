"""Folding a case's new events onto its saved facts gives the facts of all its events.

`fold_case` over all the events is the definition; `fold_onto` goes on from saved facts.
For random cases cut into a prefix (folded in any arrival order) and in-order batches after
it, the facts folded on batch by batch, saved and read back in between, are the facts of
all the events, field by field (the fold's running state too).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import bson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.insights.events import CaseEvent
from services.insights.facts import CaseFacts, fold_case, fold_onto
from tests.unit.insights_cases import MIN, T0, event, reply
from tsunagu.v1 import interaction_pb2 as ipb

DUE = 3 * 24 * 3600.0
_ACTIONS = (
    "resolution",
    "handoff",
    "escalation",
    "transfer",
    "complete_follow_up",
    "csat",
    "cancellation_request",
    "cancellation_outcome",
    "progress_update",
    "note",
)


@st.composite
def _event(draw: st.DrawFn, number: int) -> CaseEvent:
    """One event of case c1: a customer's contact, an agent's answer or an agent's action,
    at a few minutes' choice (ties on purpose), recorded then or a little later."""
    minute = draw(st.integers(0, 40))
    occurred = T0 + minute * MIN + draw(st.sampled_from([0.0, 0.25]))
    recorded = occurred + draw(st.sampled_from([0.0, 0.0, 1.0, 90.0]))
    base: dict[str, Any] = {
        "tenant": "t1",
        "event_id": f"e{number:03d}-{draw(st.integers(0, 9))}",
        "case_id": "c1",
        "customer_id": draw(st.sampled_from(["cust-1", "cust-1", "cust-2", ""])),
        "occurred_at": occurred,
        "recorded_at": recorded,
        "kind": ipb.KIND_MESSAGE,
        "queue": draw(st.sampled_from(["", "", "billing", "tier-2"])),
    }
    role = draw(st.sampled_from(["contact", "contact", "answer", "action"]))
    if role == "contact":
        return CaseEvent(
            **base,
            channel=draw(st.sampled_from([ipb.CHANNEL_CHAT, ipb.CHANNEL_EMAIL, ipb.CHANNEL_VOICE])),
            direction=ipb.DIRECTION_INBOUND,
            actor_type=draw(st.sampled_from([ipb.ACTOR_TYPE_CUSTOMER, ipb.ACTOR_TYPE_AGENT])),
            conversation=draw(st.sampled_from(["chat-1", "chat-2", "call-1"])),
        )
    agent = draw(st.sampled_from(["a1", "a2"]))
    if role == "answer":
        return CaseEvent(
            **base,
            channel=draw(st.sampled_from([ipb.CHANNEL_CHAT, ipb.CHANNEL_EMAIL])),
            direction=ipb.DIRECTION_OUTBOUND,
            actor_type=ipb.ACTOR_TYPE_AGENT,
            actor_id=agent,
            conversation="chat-1",
        )
    name = draw(st.sampled_from(_ACTIONS))
    return CaseEvent(
        **base,
        channel=ipb.CHANNEL_AGENT_DESK,
        direction=ipb.DIRECTION_INTERNAL,
        actor_type=ipb.ACTOR_TYPE_AGENT,
        actor_id=agent,
        action=name,
        csat_score=draw(st.integers(1, 5)) if name == "csat" else 0,
        has_comment=name == "csat" and draw(st.booleans()),
        cancellation_reason=draw(st.integers(0, 3)) if name == "cancellation_request" else 0,
        cancellation_outcome=draw(st.integers(0, 3)) if name == "cancellation_outcome" else 0,
    )


@st.composite
def _case(draw: st.DrawFn) -> list[CaseEvent]:
    size = draw(st.integers(1, 30))
    return [draw(_event(n)) for n in range(size)]


def _order(e: CaseEvent) -> tuple[float, float, str]:
    return (e.occurred_at, e.recorded_at, e.event_id)


def _saved_and_read(facts: CaseFacts) -> CaseFacts:
    """The facts as the store gives them back (BSON there and back)."""
    return CaseFacts.from_document(bson.decode(bson.encode(facts.document())))


def _fold(events: list[CaseEvent]) -> CaseFacts:
    facts = fold_case(events, follow_up_due_seconds=DUE)
    assert facts is not None
    return facts


@settings(max_examples=400, deadline=None)
@given(case=_case(), data=st.data())
def test_folding_in_order_batches_onto_saved_facts_is_folding_all_events(
    case: list[CaseEvent], data: st.DataObject
) -> None:
    ordered = sorted(case, key=_order)
    cut = data.draw(st.integers(1, len(ordered)), label="prefix")
    prefix = data.draw(st.permutations(ordered[:cut]), label="prefix arrival")
    rest = ordered[cut:]
    facts = _saved_and_read(_fold(prefix))
    while rest:
        # A batch: the next few events, in any arrival order within the batch.
        size = data.draw(st.integers(1, len(rest)), label="batch")
        batch = data.draw(st.permutations(rest[:size]), label="batch arrival")
        rest = rest[size:]
        onto = fold_onto(facts, batch, follow_up_due_seconds=DUE)
        assert onto is not None
        facts = _saved_and_read(onto)
    assert facts == _fold(case)


@settings(max_examples=200, deadline=None)
@given(case=_case(), data=st.data())
def test_an_event_before_the_last_folded_one_is_not_folded_on(
    case: list[CaseEvent], data: st.DataObject
) -> None:
    ordered = sorted(case, key=_order)
    late = data.draw(st.sampled_from(ordered), label="late")
    folded = [e for e in ordered if e is not late]
    if not folded or _order(late) > _order(folded[-1]):
        return  # it is not late: nothing folded comes after it
    facts = _fold(folded)
    onto = fold_onto(facts, [late], follow_up_due_seconds=DUE)
    assert onto is None
    # Nor with an in-order event beside it in the batch; and the facts are left as they were.
    after = replace(folded[-1], event_id="z-after", occurred_at=folded[-1].occurred_at + MIN)
    assert fold_onto(facts, [after, late], follow_up_due_seconds=DUE) is None
    assert facts == _fold(folded)


def _events() -> list[CaseEvent]:
    return [event(0, event_id="e1"), reply(5, event_id="e2"), event(9, event_id="e3")]


def test_what_only_a_fold_of_all_events_can_tell_is_not_folded_on() -> None:
    first, second, third = _events()
    facts = _fold([first, second])
    # Facts saved before the fold's state was kept.
    assert fold_onto(replace(facts, fold=None), [third], follow_up_due_seconds=DUE) is None
    # Folded with another follow-up setting.
    assert fold_onto(facts, [third], follow_up_due_seconds=DUE + 1) is None
    # The last folded event again, or one event twice in the batch.
    assert fold_onto(facts, [second], follow_up_due_seconds=DUE) is None
    assert fold_onto(facts, [third, third], follow_up_due_seconds=DUE) is None
    # Another case's event.
    assert fold_onto(facts, [replace(third, case_id="c2")], follow_up_due_seconds=DUE) is None
    # And the one that can.
    assert fold_onto(facts, [third], follow_up_due_seconds=DUE) == _fold([first, second, third])
    assert facts == _fold([first, second])
