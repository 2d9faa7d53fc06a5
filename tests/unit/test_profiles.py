"""Profiles without a store: what an interaction tells about its customer, and projection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.timeline.profiles.contacts import contact_from, display_name
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.profile import Contact, new_customer
from services.timeline.profiles.projector import Projector
from tests import builders
from tests.unit.memory_stores import MemoryCases, MemoryCustomers, MemoryLog
from tsunagu.v1 import interaction_pb2 as pb

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
TENANT = "acme"


def web_form(*, actor_name: str = "", **fields: str) -> pb.Interaction:
    interaction = builders.chat(TENANT, at=T0)
    interaction.channel, interaction.kind = pb.CHANNEL_WEB, pb.KIND_FORM_SUBMISSION
    interaction.actor.display_name = actor_name
    interaction.web_form.fields.extend(pb.FormField(name=n, value=v) for n, v in fields.items())
    return interaction


@pytest.mark.parametrize("field", ["name", "Name ", "氏名", "お名前", "full_name"])
def test_a_web_form_name_field_is_the_customers_name(field: str) -> None:
    assert display_name(web_form(**{field: " 山田 花子 ", "email": "h@example.jp"})) == "山田 花子"


def test_a_customer_actor_name_wins_over_the_form_field() -> None:
    assert display_name(web_form(actor_name="Hanako", name="山田 花子")) == "Hanako"


def test_a_form_without_a_name_and_an_agents_name_give_no_customer_name() -> None:
    assert display_name(web_form(email="h@example.jp", message="hi")) == ""
    reply = builders.agent_reply(TENANT, visitor="v1", text="On its way")
    reply.actor.display_name = "Agent Suzuki"
    assert display_name(reply) == ""


def test_the_contact_of_a_form_carries_its_name_and_address() -> None:
    form = web_form(お名前="山田 花子", 住所="東京都千代田区千代田1-1")
    contact = contact_from(form, occurred_at=T0, identifiers=[], remark=None)
    assert (contact.display_name, contact.address, contact.channel) == (
        "山田 花子",
        "東京都千代田区千代田1-1",
        "web",
    )


class Profiles:
    def __init__(self) -> None:
        self.customers = MemoryCustomers()
        self.suggested: list[CustomerDoc] = []

        async def suggest(profile: CustomerDoc) -> None:
            self.suggested.append(profile)

        self.projector = Projector(
            self.customers, interactions=MemoryLog(), cases=MemoryCases(), suggest=suggest
        )

    async def customer(self, customer_id: str = "cus_1") -> CustomerDoc:
        await self.customers.insert_customer(
            new_customer(tenant=TENANT, customer_id=customer_id, created_at=T0, first_contact_at=T0)
        )
        return self.customers.docs[customer_id]


def contact(*, minutes: int, name: str = "", channel: str = "chat") -> Contact:
    return Contact(
        channel=channel,
        occurred_at=T0 + timedelta(minutes=minutes),
        display_name=name,
        identifiers=(),
        event_id=f"e{minutes}",
    )


async def test_projection_counts_contacts_and_takes_the_newest_name() -> None:
    profiles = Profiles()
    await profiles.customer()
    contacts = [contact(minutes=1, name="Hanako"), contact(minutes=2, channel="voice")]
    assert await profiles.projector.project(TENANT, "cus_1", contacts, [])
    await profiles.projector.project(TENANT, "cus_1", [contact(minutes=0, name="Old")], [])
    doc = profiles.customers.docs["cus_1"]
    assert doc["interaction_count"] == 3
    assert doc["by_channel"] == {"chat": 2, "voice": 1}
    assert doc["display_name"] == "Hanako"
    # A new name is a new soft signal: suggestions are looked for once, not for the old name.
    assert [p["display_name"] for p in profiles.suggested] == ["Hanako"]


async def test_a_lost_race_is_projected_again_onto_the_stored_profile() -> None:
    profiles = Profiles()
    await profiles.customer()
    profiles.customers.lose_next("replace", times=3)
    assert await profiles.projector.project(TENANT, "cus_1", [contact(minutes=1)], [])
    doc = profiles.customers.docs["cus_1"]
    assert (doc["interaction_count"], doc["version"]) == (1, 1)


async def test_a_customer_merged_away_meanwhile_is_not_projected() -> None:
    profiles = Profiles()
    loser = await profiles.customer()
    loser["status"], loser["merged_into"] = "merged", "cus_2"
    assert not await profiles.projector.project(TENANT, "cus_1", [contact(minutes=1)], [])
    assert profiles.customers.docs["cus_1"]["interaction_count"] == 0
