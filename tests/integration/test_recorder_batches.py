"""The timeline recorder's batch path against the real store: merges, duplicates, failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from services.timeline.bootstrap import build_core
from services.timeline.errors import PermanentError
from services.timeline.identity.policy import IdentityPolicy
from services.timeline.recorder import Recorded, TimelineRecorder
from services.timeline.stores import TimelineStore
from tests import builders
from tests.integration.timeline_db import timeline_db
from tsunagu.v1 import interaction_pb2 as pb

T0 = datetime.now(UTC) - timedelta(days=3)


@pytest.fixture
async def store(mongodb_uri: str, database_name: str) -> AsyncIterator[TimelineStore]:
    async with timeline_db(mongodb_uri, database_name) as store:
        yield store


@pytest.fixture
def recorder(store: TimelineStore) -> TimelineRecorder:
    return build_core(store, identity_for=lambda _tenant: IdentityPolicy("JP")).recorder


def phone(value: str) -> pb.Identifier:
    return pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=value)


def email(value: str) -> pb.Identifier:
    # Ingestion adds the sender's address; the recorder is fed here without ingestion.
    return pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=value)


async def test_a_merge_in_the_middle_of_a_batch_keeps_every_interaction_and_count(
    recorder: TimelineRecorder, store: TimelineStore, tenant: str
) -> None:
    by_phone = builders.chat(tenant, visitor="v1", phone="090-1111-2222", at=T0)
    by_email = builders.email(
        tenant,
        from_address="a@example.jp",
        extra_identifiers=[email("a@example.jp")],
        at=T0 + timedelta(hours=1),
    )
    phone_again = builders.call(tenant, from_number="09011112222", at=T0 + timedelta(hours=2))
    phone_again.identifiers.append(phone("09011112222"))  # what voice ingestion adds
    linking = builders.verified(
        builders.email(
            tenant,
            from_address="A@example.jp",
            extra_identifiers=[email("A@example.jp"), phone("+81 90 1111 2222")],
            at=T0 + timedelta(hours=3),
        )
    )
    after = builders.chat(tenant, visitor="v1", at=T0 + timedelta(hours=4))
    batch = [by_phone, by_email, phone_again, linking, after, by_phone]

    outcomes = await recorder.record_batch(batch)

    assert all(isinstance(o, Recorded) for o in outcomes), outcomes
    recorded = [o for o in outcomes if isinstance(o, Recorded)]
    assert [o.duplicate for o in recorded] == [False, False, False, False, False, True]
    assert recorded[3].merged_ids  # the linking email merged the two customers
    survivor = recorded[3].customer_id
    assert recorded[4].customer_id == survivor
    docs = await store.interactions.list_interactions(tenant, survivor, limit=50)
    assert {d["event_id"] for d in docs} == {i.event_id for i in batch}
    customer = (await store.customers.get_customers(tenant, [survivor]))[survivor]
    assert customer["interaction_count"] == 5
    assert customer["by_channel"] == {"chat": 2, "email": 2, "voice": 1}
    assert customer["first_contact_at"] == T0.replace(microsecond=T0.microsecond // 1000 * 1000)
    states = await store.interactions.interaction_states(tenant, [d["event_id"] for d in docs])
    assert all(state.get("projected") for state in states.values())


async def test_a_failing_item_fails_alone(
    recorder: TimelineRecorder, store: TimelineStore, tenant: str
) -> None:
    good = builders.chat(tenant, visitor="v2", at=T0)
    note = builders.agent_action(tenant, "cus_nobody", at=T0, note=pb.NoteAction(text="hi"))
    also_good = builders.chat(tenant, visitor="v2", at=T0 + timedelta(minutes=1))

    outcomes = await recorder.record_batch([good, note, also_good])

    assert isinstance(outcomes[1], PermanentError)
    assert "cus_nobody" in str(outcomes[1])
    first, third = outcomes[0], outcomes[2]
    assert isinstance(first, Recorded)
    assert isinstance(third, Recorded)
    assert first.customer_id == third.customer_id
    customer = (await store.customers.get_customers(tenant, [first.customer_id]))[first.customer_id]
    assert customer["interaction_count"] == 2


async def test_recording_the_same_batch_twice_changes_nothing(
    recorder: TimelineRecorder, store: TimelineStore, tenant: str
) -> None:
    batch = [
        builders.chat(tenant, visitor=f"v{i % 3}", at=T0 + timedelta(minutes=i)) for i in range(9)
    ]
    first = await recorder.record_batch(batch)
    again = await recorder.record_batch(batch)
    assert all(isinstance(o, Recorded) and not o.duplicate for o in first)
    assert all(isinstance(o, Recorded) and o.duplicate for o in again)
    ids = {o.customer_id for o in first if isinstance(o, Recorded)}
    customers = await store.customers.get_customers(tenant, ids)
    assert sorted(c["interaction_count"] for c in customers.values()) == [3, 3, 3]


async def test_a_redelivered_event_is_announced_again_only_until_its_notice_is_noted(
    recorder: TimelineRecorder, tenant: str
) -> None:
    chat = builders.chat(tenant, phone="090-4444-5555", at=T0)
    [first] = await recorder.record_batch([chat])
    assert isinstance(first, Recorded)
    assert first.entry is not None

    # Stored, but the process stopped before the notice went out: the redelivery carries it.
    [unannounced] = await recorder.record_batch([chat])
    assert isinstance(unannounced, Recorded)
    assert unannounced.duplicate
    assert unannounced.customer_id == first.customer_id
    assert unannounced.entry is not None
    assert unannounced.entry.interaction.event_id == chat.event_id

    await recorder.mark_announced([unannounced])
    [announced] = await recorder.record_batch([chat])
    assert isinstance(announced, Recorded)
    assert announced.duplicate
    assert announced.entry is None
