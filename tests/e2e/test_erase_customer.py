"""The local stack end to end: a privacy officer erases a customer; nothing of them stays
readable on disk (JetStream's and the store's directories), before erasure as after.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from gql.transport.exceptions import TransportQueryError

from tests import builders
from tests.byte_search import hits, wait_until_on_disk
from tests.e2e.agent_desk import TENANT, execute, found, http_session, submit, unique_phone
from tsunagu.local.stack import LocalStack

POPPED = "query P($phone: String!) { customerByIdentifier(kind: PHONE, value: $phone) { id } }"
READ = """
query R($id: ID!) {
  customer(id: $id) {
    displayName identifiers { value } timeline(first: 10) { edges { node { text } } }
  }
}
"""
ERASE = """
mutation E($id: ID!, $reason: String!) {
  eraseCustomer(customerId: $id, reason: $reason) { customerIds keyIds counts { contacts } }
}
"""


async def _insights_heard(stack: LocalStack, event_id: str, *, seconds: float = 60.0) -> None:
    """Wait until the insights database's files hold `event_id` (a topic message row)."""
    prefix = f"{stack.database}_insights"
    deadline = asyncio.get_running_loop().time() + seconds
    while not any(
        p.name.startswith(prefix)
        for p in hits(stack.data_dir / "store", [event_id]).get(event_id, [])
    ):
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("insights never recorded the message")
        await asyncio.sleep(0.2)


async def test_a_privacy_officer_erases_a_customer_and_the_disks_hold_nothing_of_them(
    stack: LocalStack,
) -> None:
    suffix, phone = unique_phone("090-66")
    e164 = "+8190" + phone.removeprefix("090").replace("-", "")
    email = f"mika.{uuid.uuid4().hex[:8]}@example.jp"
    sentence = f"My hamster {uuid.uuid4().hex[:8]} unplugged the router again"
    chat = builders.chat(TENANT, text=sentence, phone=phone, email=email, name="Mika")
    call = builders.call(TENANT, from_number=phone, call_id=f"call-{suffix}")
    await submit(stack, "chat", chat)
    await submit(stack, "voice", call)
    async with http_session(stack) as agent:
        popped = await found(agent, POPPED, phone=phone)
    customer_id = popped["customerByIdentifier"]["id"]
    nats_dir, store_dir = stack.data_dir / "nats", stack.data_dir / "store"
    secrets = [phone, e164, email, sentence]
    await wait_until_on_disk(store_dir, call.event_id)
    await wait_until_on_disk(nats_dir, call.event_id)
    # Insights too has heard the chat (its database holds the event id): the search below
    # covers what insights keeps of a customer's message, not only the timeline's files.
    await _insights_heard(stack, chat.event_id)
    assert hits(nats_dir, secrets) == {}
    assert hits(store_dir, secrets) == {}

    async with http_session(stack, ("agent", "supervisor")) as agent:
        with pytest.raises(TransportQueryError) as refused:
            await execute(agent, ERASE, id=customer_id, reason="not mine to do")
    async with http_session(stack, ("privacy_officer",)) as officer:
        erased = await execute(officer, ERASE, id=customer_id, reason="APPI art. 35 #7")
        read = await execute(officer, READ, id=customer_id)

    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert erased["eraseCustomer"]["customerIds"] == [customer_id]
    assert erased["eraseCustomer"]["counts"]["contacts"] == 2
    customer = read["customer"]
    assert customer["displayName"] in {"", None}
    assert customer["identifiers"] == []
    assert {e["node"]["text"] for e in customer["timeline"]["edges"]} == {"[erased]"}
    assert hits(nats_dir, secrets) == {}
    assert hits(store_dir, secrets) == {}


MERGE = """
mutation M($ids: [ID!]!) {
  mergeCustomers(customerIds: $ids, reason: "Same person") { status customer { id } }
}
"""
BY_EMAIL = "query B($v: String!) { customerByIdentifier(kind: EMAIL, value: $v) { id } }"


async def test_erasing_a_merged_away_customer_erases_the_whole_person(stack: LocalStack) -> None:
    suffix, phone = unique_phone("080-66")
    address = f"rin.{uuid.uuid4().hex[:8]}@example.jp"
    await submit(stack, "chat", builders.chat(TENANT, visitor=f"v-e-{suffix}", email=address))
    await submit(stack, "chat", builders.chat(TENANT, visitor=f"v-p-{suffix}", phone=phone))
    async with http_session(stack, ("agent", "supervisor")) as supervisor:
        first = (await found(supervisor, BY_EMAIL, v=address))["customerByIdentifier"]["id"]
        second = (await found(supervisor, POPPED, phone=phone))["customerByIdentifier"]["id"]
        merged = await execute(supervisor, MERGE, ids=[first, second])
    survivor = merged["mergeCustomers"]["customer"]["id"]
    merged_away = first if survivor == second else second

    async with http_session(stack, ("privacy_officer",)) as officer:
        erased = await execute(officer, ERASE, id=merged_away, reason="GDPR art. 17")

    assert sorted(erased["eraseCustomer"]["customerIds"]) == sorted([first, second])
    assert erased["eraseCustomer"]["counts"]["contacts"] == 3  # two chats and the merge
    e164 = "+8180" + phone.removeprefix("080").replace("-", "")
    # The ledger's before-snapshots held both identifiers: sealed, and their keys are gone.
    assert hits(stack.data_dir / "store", [address, phone, e164]) == {}
