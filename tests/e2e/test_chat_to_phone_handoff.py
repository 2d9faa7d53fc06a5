"""A chat agent hands off to the phone, across real processes, through the gql client library."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from gql import GraphQLRequest

from tests import builders
from tests.e2e.agent_desk import (
    AGENT_ID,
    AGENT_NAME,
    TENANT,
    execute,
    found,
    http_session,
    submit,
    unique_phone,
    ws_session,
)
from tsunagu.local.stack import LocalStack

SCREEN_POP = """
query ScreenPop($phone: String!) {
  customerByIdentifier(kind: PHONE, value: $phone) {
    id displayName
    timeline(first: 20) {
      edges { node { eventId channel kind text actor { type id displayName }
        detail { ... on AgentActionDetail { customerId
          action { ... on HandoffAction { toChannel summary openQuestions } } } } } }
    }
  }
}
"""

HANDOFF = """
mutation Handoff($customerId: ID!, $eventId: ID!) {
  handoff(customerId: $customerId, toChannel: VOICE, toQueue: "phone-support",
          summary: "Delivery three days late; wants a call back",
          openQuestions: ["Refund the shipping?"], eventId: $eventId) {
    eventId status customer { id interactionCount }
  }
}
"""

LIVE = """
subscription Live($customerId: ID!) {
  timelineUpdated(customerId: $customerId) {
    customerId eventId channel kind entry { eventId channel text }
  }
}
"""


async def test_phone_agent_gets_the_chat_the_handoff_note_and_the_next_message_live(
    stack: LocalStack,
) -> None:
    suffix, phone = unique_phone("090-77")
    chat = builders.chat(
        TENANT,
        visitor=f"v-live-{suffix}",
        phone=phone,
        name="Ito Mai",
        text="My delivery is late",
        at=datetime.now(UTC) - timedelta(minutes=5),
    )
    await submit(stack, "chat", chat)

    async with http_session(stack) as chat_agent:
        popped = await found(chat_agent, SCREEN_POP, phone=phone)
        customer_id = popped["customerByIdentifier"]["id"]
        key = str(uuid.uuid4())
        handed = await execute(chat_agent, HANDOFF, customerId=customer_id, eventId=key)
        # A retry of the same mutation (say, after a dropped response) is the same event.
        retried = await execute(chat_agent, HANDOFF, customerId=customer_id, eventId=key)

    assert handed["handoff"]["status"] == "STORED"
    assert handed["handoff"]["eventId"] == key
    assert handed["handoff"]["customer"] == {"id": customer_id, "interactionCount": 2}
    assert retried["handoff"]["status"] == "STORED"

    # The phone agent's screen-pop, by the calling number as the CTI reports it.
    async with http_session(stack) as phone_agent:
        result = await execute(phone_agent, SCREEN_POP, phone="+81" + phone.replace("-", "")[1:])
    customer = result["customerByIdentifier"]
    assert customer["id"] == customer_id
    nodes = [edge["node"] for edge in customer["timeline"]["edges"]]
    assert [node["eventId"] for node in nodes] == [key, chat.event_id]  # newest first
    note = nodes[0]
    assert (note["channel"], note["kind"]) == ("AGENT_DESK", "HANDOFF")
    assert note["actor"] == {"type": "AGENT", "id": AGENT_ID, "displayName": AGENT_NAME}
    assert note["detail"] == {
        "customerId": customer_id,
        "action": {
            "toChannel": "VOICE",
            "summary": "Delivery three days late; wants a call back",
            "openQuestions": ["Refund the shipping?"],
        },
    }
    assert nodes[1]["text"] == "My delivery is late"

    # The phone agent watches the timeline; the customer writes again in the chat.
    async with ws_session(stack) as live:
        updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def listen() -> None:
            async for update in live.subscribe(
                GraphQLRequest(LIVE, variable_values={"customerId": customer_id})
            ):
                await updates.put(update["timelineUpdated"])

        listener = asyncio.create_task(listen())
        try:
            sent: set[str] = set()
            received = None
            # No protocol message says "subscribed": resend until the first push arrives.
            for _ in range(20):
                message = builders.chat(TENANT, visitor=f"v-live-{suffix}", text="Is anyone there?")
                sent.add(message.event_id)
                await submit(stack, "chat", message)
                try:
                    received = await asyncio.wait_for(updates.get(), timeout=1)
                    break
                except TimeoutError:
                    continue
        finally:
            listener.cancel()
    assert received is not None, "the subscription never pushed the chat message"
    assert received["eventId"] in sent
    assert received["customerId"] == customer_id
    assert (received["channel"], received["kind"]) == ("CHAT", "MESSAGE")
    assert received["entry"] == {
        "eventId": received["eventId"],
        "channel": "CHAT",
        "text": "Is anyone there?",
    }
