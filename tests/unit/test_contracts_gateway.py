"""The gateway's agent actions keep the write-path contract: one event-id form, no dead letters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import agent_actions
from gateway.auth import Principal
from gateway.errors import GatewayError
from tsunagu.contracts import BUS_LIMITS, ContractViolation, canonical_event_id, check_interaction

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
AGENT = Principal(subject="agent-7", tenant="acme", roles=frozenset({"agent"}), display_name="Sato")


@settings(deadline=None)
@given(st.uuids() | st.text(max_size=40))
def test_the_gateway_keys_an_event_id_exactly_as_ingestion_does(value: uuid.UUID | str) -> None:
    raw = str(value).upper() if isinstance(value, uuid.UUID) else value
    try:
        expected: str | None = canonical_event_id(raw.strip())
    except ContractViolation:
        expected = None
    if expected is None:
        with pytest.raises(GatewayError, match="`eventId`"):
            agent_actions.event_id_or_new(raw)
    else:
        assert agent_actions.event_id_or_new(raw) == expected


def test_a_fresh_event_id_is_canonical() -> None:
    fresh = agent_actions.event_id_or_new(None)
    assert canonical_event_id(fresh) == fresh


def test_every_agent_action_event_passes_the_timelines_contract() -> None:
    planned = [
        agent_actions.note("Called back " * 800),
        agent_actions.progress_update("Your parcel left the depot"),
        agent_actions.transfer(to_department="物流センター" * 20, reason="trace the parcel"),
        agent_actions.tags(["vip", "late"]),
        agent_actions.merge_customers(
            customer_ids=["cus_1", "cus_2"], reason="same", suggestion_id=None
        ),
    ]
    for action in planned:
        event = agent_actions.to_interaction(
            action,
            principal=AGENT,
            customer_id="cus_1",
            case_id="case_1",
            event_id=agent_actions.event_id_or_new(None),
            now=NOW,
        )
        check_interaction(event, limits=BUS_LIMITS, now=NOW)


@pytest.mark.parametrize("customer_id", ["cus_\x00", "c" * 300])
def test_an_action_the_timeline_would_dead_letter_is_bad_user_input(customer_id: str) -> None:
    with pytest.raises(GatewayError, match=r"agent_action\.customer_id") as caught:
        agent_actions.to_interaction(
            agent_actions.note("Called back"),
            principal=AGENT,
            customer_id=customer_id,
            case_id=None,
            event_id=agent_actions.event_id_or_new(None),
            now=NOW,
        )
    assert caught.value.extensions["code"] == "BAD_USER_INPUT"
