"""No process of the stack logs the phone numbers, e-mail addresses or texts it handles."""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests import builders
from tests.e2e.agent_desk import AGENT_ID, TENANT, found, http_session, submit, unique_phone
from tests.e2e.conftest import StackLog
from tsunagu.local.stack import LocalStack

SCREEN_POP = """
query ScreenPop($phone: String!) {
  customerByIdentifier(kind: PHONE, value: $phone) {
    id displayName identifiers { kind value } timeline(first: 20) { edges { node { text } } }
  }
}
"""
# The gateway's WebSocket handshake line: uvicorn logs the path with its query string.
_HANDSHAKE = '"WebSocket /graphql?'


async def _handshake_with_query_string(stack: LocalStack, authorization: str, phone: str) -> None:
    """Open a subscription socket the careless way: token and phone number in the URL."""
    query = urlencode({"access_token": authorization.removeprefix("Bearer "), "phone": phone})
    url = stack.graphql_url.replace("http://", "ws://") + f"?{query}"
    async with connect(
        url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=20
    ) as socket:
        init = {"type": "connection_init", "payload": {"Authorization": authorization}}
        await socket.send(json.dumps(init))
        ack = json.loads(await asyncio.wait_for(socket.recv(), timeout=20))
        assert ack["type"] == "connection_ack"


async def _handshake_logged(log: StackLog, since: int) -> list[str]:
    # The stack's output is pumped asynchronously: wait for the handshake line itself.
    deadline = asyncio.get_running_loop().time() + 30
    while not (lines := [line for line in log.lines[since:] if _HANDSHAKE in line]):
        assert asyncio.get_running_loop().time() < deadline, "the handshake was never logged"
        await asyncio.sleep(0.1)
    return lines


async def test_the_scenarios_phone_numbers_emails_and_texts_appear_in_no_log_line(
    stack: LocalStack, stack_log: StackLog
) -> None:
    since = len(stack_log.lines)
    suffix, phone = unique_phone("090-55")
    e164 = "+81" + phone.replace("-", "")[1:]
    email = f"hana.{uuid.uuid4().hex[:10]}@example.com"
    visitor = f"v-logs-{suffix}"
    marker = uuid.uuid4().hex[:8]
    texts = [f"My card ends {suffix}, parcel {marker} is lost", f"Call me back ({marker})"]
    first = builders.chat(
        TENANT, visitor=visitor, phone=phone, email=email, name="Sato Hana", text=texts[0]
    )
    await submit(stack, "chat", first)
    await submit(stack, "chat", builders.chat(TENANT, visitor=visitor, text=texts[1]))
    await submit(stack, "voice", builders.call(TENANT, from_number=phone.replace("-", "")))

    async with http_session(stack) as agent:
        await found(agent, SCREEN_POP, phone=phone)
    authorization = f"Bearer {stack.issuer.mint(tenant=TENANT, roles=['agent'], subject=AGENT_ID)}"
    # GraphQL over GET (GraphiQL is on locally): the number travels in the URL.
    async with httpx.AsyncClient(timeout=20) as client:
        response = await client.get(
            stack.graphql_url,
            params={"query": SCREEN_POP, "variables": json.dumps({"phone": e164})},
            headers={"authorization": authorization},
        )
    customer = response.json()["data"]["customerByIdentifier"]
    # The agent sees the address masked (gateway.masking), never in full.
    assert "h****@example.com" in {identifier["value"] for identifier in customer["identifiers"]}
    assert email not in response.text
    await _handshake_with_query_string(stack, authorization, phone)

    handshakes = await _handshake_logged(stack_log, since)
    assert all('"WebSocket /graphql?…"' in line for line in handshakes)
    personal = [phone, e164, phone.replace("-", ""), email, *texts]
    leaked = [line for line in stack_log.lines[since:] if any(p in line for p in personal)]
    assert leaked == []
