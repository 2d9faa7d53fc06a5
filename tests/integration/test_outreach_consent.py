"""The timeline checks consent again when it records an outreach: without it (or after a
withdrawal) the event is dead-lettered as `consent_required` and never stored as sent.
"""

from __future__ import annotations

from tests import builders
from tests.integration.test_consumer_faults import (
    REASON_HEADER,
    Bus,
    agent_desk_subject,
    header,
)
from tests.integration.test_signed_actors import _customer
from tsunagu.v1 import interaction_pb2 as pb


async def _settled(bus: Bus, customer: str) -> None:
    """Wait until everything published before is handled (the stream is handled in order)."""
    marker = builders.agent_action(bus.tenant, customer, note=pb.NoteAction(text="marker"))
    await bus.publish_action(marker)
    await bus.recorded([marker.event_id])


async def test_an_outreach_without_consent_is_dead_lettered_and_never_stored(bus: Bus) -> None:
    customer = await _customer(bus, "visitor-no-consent")
    # Consent for another purpose and another channel does not count.
    for channel, purpose in (
        (pb.CHANNEL_SMS, pb.CONSENT_PURPOSE_SURVEYS),
        (pb.CHANNEL_EMAIL, pb.CONSENT_PURPOSE_MARKETING),
    ):
        await bus.publish_action(
            builders.consent_by_agent(bus.tenant, customer, channel=channel, purpose=purpose)
        )
    outreach = builders.outreach(bus.tenant, customer)

    await bus.publish_action(outreach)
    await _settled(bus, customer)

    [dead] = await bus.dead_letters(agent_desk_subject(bus.tenant))
    assert header(dead, REASON_HEADER) == "consent_required"
    assert dead.data == outreach.SerializeToString()
    assert await bus.stored([outreach.event_id]) == set()


async def test_consent_in_the_same_batch_counts_and_a_later_withdrawal_stops_the_next(
    bus: Bus,
) -> None:
    customer = await _customer(bus, "visitor-consent")
    grant = builders.consent_by_agent(bus.tenant, customer, granted=True)
    allowed = builders.outreach(bus.tenant, customer, text="Spring offer")
    withdraw = builders.consent_by_agent(bus.tenant, customer, granted=False)
    refused = builders.outreach(bus.tenant, customer, text="Summer offer")

    # Published back to back: the consumer takes them in one batch, in stream order.
    for event in (grant, allowed, withdraw, refused):
        await bus.publish_action(event)
    await _settled(bus, customer)

    assert await bus.stored([allowed.event_id, refused.event_id]) == {allowed.event_id}
    [dead] = await bus.dead_letters(agent_desk_subject(bus.tenant))
    assert header(dead, REASON_HEADER) == "consent_required"
    assert dead.data == refused.SerializeToString()
