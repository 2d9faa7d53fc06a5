"""A case from chat to resolution through GraphQL: escalate, transfer with follow-up, CSAT."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gql import GraphQLRequest

from tests import builders
from tests.e2e.agent_desk import (
    AGENT_ID,
    TENANT,
    eventually,
    execute,
    http_session,
    submit,
    unique_phone,
    ws_session,
)
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import interaction_pb2

CASE = """
query Case($id: ID!) {
  case(id: $id) {
    id status escalationLevel escalationReason department ownerAgentId channels
    firstResponseTimeSeconds timeToResolutionSeconds resolutionSummary
    csat { score comment }
    followUps { id agentId done overdue }
    customer { id }
  }
}
"""

SCREEN_POP = """
query ScreenPop($phone: String!) {
  customerByIdentifier(kind: PHONE, value: $phone) {
    id
    openCase { id status channels }
    lastAgentRemark { kind text openQuestions agent { id } }
  }
}
"""


async def act(session: Any, mutation: str, **variables: Any) -> dict[str, Any]:
    result = await execute(session, mutation, **variables)
    [payload] = result.values()
    assert payload["status"] == "STORED", payload
    return dict(payload)


async def _heard_on_case(
    pushed: asyncio.Queue[dict[str, Any]],
    stack: LocalStack,
    *,
    customer: interaction_pb2.Interaction,
    listener: asyncio.Task[None],
) -> None:
    """Write as the customer of the chat `customer` until the case's subscription pushes."""
    visitor, phone = (i.value for i in customer.identifiers)
    for _ in range(20):
        message = builders.chat(TENANT, visitor=visitor, phone=phone, text="Are you still there?")
        await submit(stack, "chat", message)
        try:
            await asyncio.wait_for(pushed.get(), timeout=2)
        except TimeoutError:
            if listener.done():
                listener.result()  # the subscription was refused: say why
            continue
        return
    pytest.fail("the case's subscription never pushed")


async def _agent_kinds(pushed: asyncio.Queue[dict[str, Any]], *, count: int) -> list[str]:
    """The kinds of the next `count` pushes of agent actions (late customer messages skipped)."""
    kinds: list[str] = []
    while len(kinds) < count:
        kind = (await asyncio.wait_for(pushed.get(), 30))["kind"]
        if kind != "MESSAGE":
            kinds.append(kind)
    return kinds


async def test_escalated_transferred_case_is_followed_up_resolved_and_rated(
    stack: LocalStack,
) -> None:
    suffix, phone = unique_phone("090-66")
    chat = builders.chat(
        TENANT, visitor=f"v-case-{suffix}", phone=phone, at=datetime.now(UTC) - timedelta(minutes=3)
    )
    await submit(stack, "chat", chat)

    async with http_session(stack) as agent:
        popped = await eventually(
            agent,
            SCREEN_POP,
            lambda r: (r["customerByIdentifier"] or {}).get("openCase") is not None,
            phone=phone,
        )
        customer_id = popped["customerByIdentifier"]["id"]
        case_id = popped["customerByIdentifier"]["openCase"]["id"]
        assert popped["customerByIdentifier"]["openCase"]["status"] == "OPEN"

        await act(
            agent,
            """mutation ($c: ID!, $k: ID!) { handoff(customerId: $c, caseId: $k, toChannel: VOICE,
                summary: "Charged twice", openQuestions: ["Which card?"]) { status } }""",
            c=customer_id,
            k=case_id,
        )
        remark = (await execute(agent, SCREEN_POP, phone=phone))["customerByIdentifier"]
        assert remark["lastAgentRemark"] == {
            "kind": "HANDOFF",
            "text": "Charged twice",
            "openQuestions": ["Which card?"],
            "agent": {"id": AGENT_ID},
        }

        escalated = await act(
            agent,
            """mutation ($c: ID!, $k: ID!) { escalate(customerId: $c, caseId: $k, level: 2,
                reason: "Double charge") { status case { status escalationLevel } } }""",
            c=customer_id,
            k=case_id,
        )
        assert escalated["case"] == {"status": "ESCALATED", "escalationLevel": 2}
        await act(
            agent,
            """mutation ($c: ID!, $k: ID!) { sendProgressUpdate(customerId: $c, caseId: $k,
                message: "Billing is looking into it") { status } }""",
            c=customer_id,
            k=case_id,
        )
        await act(
            agent,
            """mutation ($c: ID!, $k: ID!) { transfer(customerId: $c, caseId: $k,
                toDepartment: "billing", reason: "Refund needed") { status } }""",
            c=customer_id,
            k=case_id,
        )
        case = (await execute(agent, CASE, id=case_id))["case"]
        [task] = case["followUps"]
        assert (task["agentId"], task["done"]) == (AGENT_ID, False)
        assert case["department"] == "billing"

        async with ws_session(stack) as live:
            pushed: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

            async def listen() -> None:
                request = GraphQLRequest(
                    "subscription ($k: ID!) { caseUpdated(caseId: $k) { kind status } }",
                    variable_values={"k": case_id},
                )
                async for update in live.subscribe(request):
                    await pushed.put(update["caseUpdated"])

            listener = asyncio.create_task(listen())
            try:
                # No protocol message says "subscribed": the customer writes on the case until
                # the subscription pushes (a fixed pause missed the actions on a busy machine).
                await _heard_on_case(pushed, stack, customer=chat, listener=listener)
                await act(
                    agent,
                    """mutation ($c: ID!, $k: ID!, $t: ID!) { completeFollowUp(customerId: $c,
                        caseId: $k, taskId: $t, note: "Called back") { status } }""",
                    c=customer_id,
                    k=case_id,
                    t=task["id"],
                )
                await act(
                    agent,
                    """mutation ($c: ID!, $k: ID!) { resolveCase(customerId: $c, caseId: $k,
                        summary: "Refunded") { status } }""",
                    c=customer_id,
                    k=case_id,
                )
                kinds = await _agent_kinds(pushed, count=2)
            finally:
                listener.cancel()
        assert kinds == ["FOLLOW_UP_COMPLETED", "RESOLUTION"]

        await act(
            agent,
            """mutation ($c: ID!, $k: ID!) { recordCsat(customerId: $c, caseId: $k, score: 4,
                comment: "Quick refund") { status } }""",
            c=customer_id,
            k=case_id,
        )
        final = (await execute(agent, CASE, id=case_id))["case"]
        listed = await execute(
            agent,
            "query ($c: ID!) { cases(filter: {customerId: $c}) { edges { node { id } } } }",
            c=customer_id,
        )

    assert final["status"] == "RESOLVED"
    assert final["resolutionSummary"] == "Refunded"
    assert final["timeToResolutionSeconds"] is not None
    assert final["csat"] == {"score": 4, "comment": "Quick refund"}
    assert [task["done"] for task in final["followUps"]] == [True]
    assert final["customer"] == {"id": customer_id}
    assert case_id in [edge["node"]["id"] for edge in listed["cases"]["edges"]]
