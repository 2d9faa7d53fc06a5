"""gRPC in → GraphQL out, across real processes: the product's promise end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gql import GraphQLRequest

from tests import builders
from tests.e2e.agent_desk import POLL_SECONDS, http_session, submit, unique_phone
from tsunagu.local.stack import LocalStack

SCREEN_POP = """
    query ScreenPop($kind: IdentifierKind!, $value: String!) {
      customerByIdentifier(kind: $kind, value: $value) {
        id
        displayName
        interactionCount
        mergedIds
        timeline(first: 50) {
          edges { node { eventId channel kind direction text } }
          pageInfo { hasNextPage }
        }
      }
    }
    """

# The agents' tenant: the gateway takes the tenant from the token, never the query.
TENANT = "demo"


@pytest.fixture
async def graphql(stack: LocalStack) -> AsyncIterator[Any]:
    async with http_session(stack) as session:
        yield session


async def screen_pop_until(
    session: Any, kind: str, value: str, *, event_ids: set[str]
) -> dict[str, Any]:
    """Ask GraphQL until the customer shows every event, in the log and in the profile.

    The profile is written just after its interaction (and rebuilt just after a merge), so
    for a few milliseconds a timeline can be ahead of its counters: wait for both.
    """
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        request = GraphQLRequest(SCREEN_POP, variable_values={"kind": kind, "value": value})
        result = await session.execute(request)
        customer = result["customerByIdentifier"]
        if customer is not None:
            shown = {e["node"]["eventId"] for e in customer["timeline"]["edges"]}
            if event_ids <= shown and customer["interactionCount"] == len(shown):
                return dict(customer)
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timeline never showed {event_ids}: {customer}")
        await asyncio.sleep(POLL_SECONDS)  # within the gateway's rate limit


async def test_phone_agent_sees_the_chat_and_a_later_signed_in_chat_merges_the_customer(
    stack: LocalStack, graphql: Any
) -> None:
    suffix, phone = unique_phone("090-55")
    t0 = datetime.now(UTC) - timedelta(days=2)

    chat = builders.chat(TENANT, visitor=f"v-{suffix}", phone=phone, name="Sato Hanako", at=t0)
    await submit(stack, "chat", chat)
    call = builders.call(TENANT, from_number=phone.replace("-", ""), at=t0 + timedelta(minutes=10))
    await submit(stack, "voice", call)

    customer = await screen_pop_until(
        graphql, "PHONE", phone, event_ids={chat.event_id, call.event_id}
    )
    nodes = [e["node"] for e in customer["timeline"]["edges"]]
    assert [n["eventId"] for n in nodes] == [call.event_id, chat.event_id]  # newest first
    assert [(n["channel"], n["kind"]) for n in nodes] == [
        ("VOICE", "CALL_STARTED"),
        ("CHAT", "MESSAGE"),
    ]
    assert customer["displayName"] == "Sato Hanako"
    first_id = customer["id"]

    # A second, separate customer: she wrote from her email address before, never giving a number.
    address = f"hanako.{suffix}@example.jp"
    earlier = builders.email(TENANT, from_address=address, at=t0 - timedelta(days=3))
    await submit(stack, "email", earlier)
    other = await screen_pop_until(graphql, "EMAIL", address, event_ids={earlier.event_id})
    assert other["id"] != first_id

    # Today she chats signed in: the shop vouches for her account's address and number, so
    # the chat links both customers (a number in an e-mail signature would only suggest it).
    linking = builders.verified(
        builders.chat(
            TENANT,
            visitor=f"v-{suffix}",
            phone=phone,
            email=address.upper(),
            text="I have surplus stock, please cancel.",
            at=t0 + timedelta(days=1),
        )
    )
    await submit(stack, "chat", linking)
    everything = {chat.event_id, call.event_id, earlier.event_id, linking.event_id}
    merged = await screen_pop_until(graphql, "EMAIL", address, event_ids=everything)
    by_phone = await screen_pop_until(graphql, "PHONE", phone, event_ids=everything)
    assert merged["id"] == by_phone["id"]
    assert merged["interactionCount"] == 4
    assert len(merged["mergedIds"]) == 1
    order = [e["node"]["eventId"] for e in merged["timeline"]["edges"]]
    assert order == [linking.event_id, call.event_id, chat.event_id, earlier.event_id]
    assert "cancel" in merged["timeline"]["edges"][0]["node"]["text"]
