"""Consent per channel x purpose: the contract of consent and outreach events, and the profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.timeline.interactions.tally import Tally
from services.timeline.profiles.consents import consent_of, consents_from, permits
from services.timeline.profiles.contacts import contact_from
from services.timeline.profiles.profile import (
    apply_contact,
    merged_profile,
    new_customer,
    rebuilt_profile,
)
from tests import builders
from tsunagu.contracts import BUS_LIMITS, ContractViolation, Reason, check_interaction
from tsunagu.contracts.limits import MAX_CONSENT_EVIDENCE_BYTES
from tsunagu.v1 import interaction_pb2 as pb

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(days=3)
TENANT = "acme"


def refused(interaction: pb.Interaction) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        check_interaction(interaction, limits=BUS_LIMITS, now=NOW)
    return caught.value


def form(**kw: object) -> pb.Interaction:
    return builders.consent_form(TENANT, email="h@example.jp", at=T0, **kw)  # type: ignore[arg-type]


# -- the contract ------------------------------------------------------------------------------


def test_consent_over_a_web_form_by_an_agent_and_an_outreach_pass_the_contract() -> None:
    for event in (
        form(evidence="I would like offers by SMS"),
        builders.consent_by_agent(TENANT, "cus_1", at=T0),
        builders.outreach(TENANT, "cus_1", at=T0),
    ):
        check_interaction(event, limits=BUS_LIMITS, now=NOW)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"purpose": 0}, "consent.purpose"),
        ({"purpose": 99}, "consent.purpose"),
        ({"channel": pb.CHANNEL_AGENT_DESK}, "consent.channel"),
        ({"channel": 42}, "consent.channel"),
        ({"source": 0}, "consent.source"),
        ({"source": 17}, "consent.source"),
    ],
)
def test_an_unknown_purpose_channel_or_source_is_refused(change: dict[str, int], path: str) -> None:
    event = form()
    for name, value in change.items():
        setattr(event.consent, name, value)
    caught = refused(event)
    assert (caught.field, caught.code) == (path, Reason.DETAIL_INVALID)


def test_oversized_evidence_is_refused_and_the_limit_itself_accepted() -> None:
    check_interaction(form(evidence="x" * MAX_CONSENT_EVIDENCE_BYTES), limits=BUS_LIMITS, now=NOW)
    caught = refused(form(evidence="あ" * (MAX_CONSENT_EVIDENCE_BYTES // 3 + 1)))
    assert (caught.field, caught.code) == ("consent.evidence", Reason.FIELD_TOO_LONG)


def test_a_consent_change_needs_its_decision_and_no_other_event_carries_one() -> None:
    bare = form()
    bare.ClearField("consent")
    assert refused(bare).field == "consent"
    chat = builders.chat(TENANT, at=T0)
    chat.consent.purpose = pb.CONSENT_PURPOSE_MARKETING
    assert refused(chat).field == "consent"


def test_an_outreach_needs_a_customer_facing_channel_and_a_purpose() -> None:
    event = builders.outreach(TENANT, "cus_1", at=T0, channel=pb.CHANNEL_WEB)
    assert refused(event).field == "agent_action.outreach.channel"
    event = builders.outreach(TENANT, "cus_1", at=T0, purpose=pb.CONSENT_PURPOSE_UNSPECIFIED)
    assert refused(event).field == "agent_action.outreach.purpose"
    mislabelled = builders.outreach(TENANT, "cus_1", at=T0)
    mislabelled.kind = pb.KIND_NOTE
    assert refused(mislabelled).field == "agent_action.outreach"


def test_consent_is_not_accepted_on_a_call_event() -> None:
    call = builders.call(TENANT, from_number="+81 90 1234 5678", at=T0)
    call.kind = pb.KIND_CONSENT_CHANGE
    call.consent.CopyFrom(form().consent)
    assert refused(call).code == Reason.KIND_INVALID


# -- the profile -------------------------------------------------------------------------------


def with_events(*events: pb.Interaction) -> dict[str, dict[str, object]]:
    customer = new_customer(tenant=TENANT, customer_id="cus_1", created_at=T0, first_contact_at=T0)
    for event in events:
        at = event.occurred_at.ToDatetime(UTC)
        customer = apply_contact(
            customer, contact_from(event, occurred_at=at, identifiers=[], remark=None)
        )
    return customer.get("consents", {})


def test_a_granted_consent_permits_its_channel_and_purpose_only() -> None:
    consents = with_events(form())
    assert permits(consents, "sms", "marketing")
    assert not permits(consents, "sms", "surveys")
    assert not permits(consents, "email", "marketing")
    [decision] = consents.values()
    assert decision["source"] == "web_form"
    assert decision["changed_at"] == T0
    assert "evidence" not in decision  # the customer's words stay on the interaction


def test_a_withdrawal_on_the_phone_after_the_form_wins_and_a_late_old_grant_does_not() -> None:
    withdrawn = builders.consent_by_agent(TENANT, "cus_1", at=T0 + timedelta(hours=1))
    assert not permits(with_events(form(), withdrawn), "sms", "marketing")
    # Delivered out of order: the older grant arrives after the withdrawal; still withdrawn.
    assert not permits(with_events(withdrawn, form()), "sms", "marketing")


def test_at_the_same_instant_a_withdrawal_wins() -> None:
    withdrawn = builders.consent_by_agent(TENANT, "cus_1", at=T0)
    assert not permits(with_events(form(), withdrawn), "sms", "marketing")
    assert not permits(with_events(withdrawn, form()), "sms", "marketing")


def test_a_merge_keeps_the_most_recent_decision_per_channel_and_purpose() -> None:
    one = new_customer(tenant=TENANT, customer_id="cus_a", created_at=T0, first_contact_at=T0)
    two = new_customer(tenant=TENANT, customer_id="cus_b", created_at=T0, first_contact_at=T0)
    old_grant = consent_of(form(), occurred_at=T0)
    later_no = consent_of(
        builders.consent_by_agent(TENANT, "cus_b", at=T0), occurred_at=T0 + timedelta(hours=2)
    )
    surveys = consent_of(
        form(purpose=pb.CONSENT_PURPOSE_SURVEYS), occurred_at=T0 + timedelta(hours=1)
    )
    assert old_grant is not None
    assert later_no is not None
    assert surveys is not None
    one["consents"] = consents_from([old_grant, surveys])
    two["consents"] = consents_from([later_no])
    merged = merged_profile(one, [two], tally=Tally([], {}, None, None))
    assert not permits(merged["consents"], "sms", "marketing")
    assert permits(merged["consents"], "sms", "surveys")
    # A split gives each side the consents of its own log back.
    back = rebuilt_profile(
        merged,
        tally=Tally([], {}, None, None),
        identifiers=[],
        display_name="",
        name_verified=False,
        merged_ids=[],
        consents=consents_from([old_grant, surveys]),
    )
    assert permits(back["consents"], "sms", "marketing")
