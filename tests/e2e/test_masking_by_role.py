"""An agent's responses never carry a customer's phone, email or card number: every field walked."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

from gql import GraphQLRequest

from tests import builders
from tests.e2e.agent_desk import (
    eventually,
    execute,
    found,
    http_session,
    submit,
    unique_phone,
    ws_session,
)
from tests.schema_walk import INTROSPECTION, SchemaWalk, strings_in
from tsunagu.local.stack import LocalStack

SCREEN_POP = (
    "query ($v: String!) { customerByIdentifier(kind: EMAIL, value: $v) { id openCaseId } }"
)


def _luhn_card(prefix: str) -> str:
    """A 16-digit number passing the Luhn check, as people type it (groups of four)."""
    body = [int(digit) for digit in prefix]
    total = sum(
        (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d
        for i, d in enumerate(reversed(body))
    )
    digits = prefix + str((10 - total % 10) % 10)
    return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


class Seeded:
    """One customer's unique personal values, and how to find them in a response."""

    def __init__(self) -> None:
        self.suffix, self.phone = unique_phone("090-77")
        self.national = self.phone.replace("-", "")[1:]  # 9077NNNNNN: in every written form
        self.email = f"hanako.{uuid.uuid4().hex[:10]}@example.com"
        self.card_digits = _luhn_card(f"4{uuid.uuid4().int % 10**14:014d}").replace(" ", "")
        self.card = " ".join(self.card_digits[i : i + 4] for i in range(0, 16, 4))
        self.visitor = f"v-mask-{uuid.uuid4().hex[:8]}"

    def leaks(self, response: Any) -> list[str]:
        """The strings of ``response`` that carry one of the values in full, in any format."""
        return [
            text
            for text in strings_in(response)
            if self.email.split("@")[0] in text
            or self.national in re.sub(r"\D", "", text)
            or self.card_digits in re.sub(r"\D", "", text)
        ]


async def _walk(stack: LocalStack, *, skip: frozenset[str] = frozenset()) -> SchemaWalk:
    async with http_session(stack) as session:
        return SchemaWalk(await execute(session, INTROSPECTION), skip=skip)


async def _every_field_of_the_customer(
    session: Any, walk: SchemaWalk, customer_id: str, case_id: str
) -> list[Any]:
    """One query per field of Customer (the cost budget), then the case with every field."""
    answers = []
    for field in walk.fields("Customer"):
        selection = walk.selection("Customer", only=field)
        query = f"query ($id: ID!) {{ customer(id: $id) {{ id {selection} }} }}"
        answers.append(await _answer(session, query, id=customer_id))
    case_query = f"query ($id: ID!) {{ case(id: $id) {{ {walk.selection('Case')} }} }}"
    answers.append(await _answer(session, case_query, id=case_id))
    return answers


async def _answer(session: Any, query: str, **variables: Any) -> Any:
    """The whole response, errors included (they must not carry the values either)."""
    try:
        return await execute(session, query, **variables)
    except Exception as refused:  # noqa: BLE001 - gql raises the GraphQL errors; keep their text
        return {"errors": str(refused)}


async def _seed(stack: LocalStack, seeded: Seeded) -> tuple[str, str]:
    said = f"My card is {seeded.card}; call me on {seeded.phone} or write to {seeded.email}"
    await submit(
        stack,
        "chat",
        builders.chat(
            "demo",
            visitor=seeded.visitor,
            phone=seeded.phone,
            email=seeded.email,
            name="Yamada Hanako",
            text=said,
        ),
    )
    async with http_session(stack) as agent:
        customer = (await found(agent, SCREEN_POP, v=seeded.email))["customerByIdentifier"]
        case_id = (
            await eventually(
                agent,
                "query ($id: ID!) { customer(id: $id) { openCaseId } }",
                lambda r: r["customer"]["openCaseId"],
                id=customer["id"],
            )
        )["customer"]["openCaseId"]
        # An agent writes the customer's details into a note and a handoff summary.
        for mutation in (
            "mutation ($c: ID!, $t: String!) { addNote(customerId: $c, text: $t) { status } }",
            "mutation ($c: ID!, $t: String!) { handoff(customerId: $c, summary: $t,"
            " toChannel: VOICE) { status } }",
        ):
            await execute(
                agent, mutation, c=customer["id"], t=f"Call {seeded.phone}, mail {seeded.email}"
            )
    return customer["id"], case_id


async def test_no_field_of_an_agents_responses_carries_the_phone_email_or_card(
    stack: LocalStack,
) -> None:
    seeded = Seeded()
    customer_id, case_id = await _seed(stack, seeded)
    walk = await _walk(stack)

    async with http_session(stack) as agent:
        as_agent = await _every_field_of_the_customer(agent, walk, customer_id, case_id)
    async with http_session(stack, roles=("privacy_officer",)) as officer:
        as_officer = await _every_field_of_the_customer(officer, walk, customer_id, case_id)

    # The walk reaches the values: the privacy officer sees them in full.
    assert seeded.leaks(as_officer)
    assert seeded.email in json.dumps(as_officer)
    # The agent sees them masked, in no field and no error.
    assert seeded.leaks(as_agent) == []
    agent_text = json.dumps(as_agent, ensure_ascii=False)
    assert f"+81 90-****-{seeded.suffix}" in agent_text
    assert "h****@example.com" in agent_text
    # The card number never got past ingestion (services/ingest/redaction.py): no role sees it.
    assert f"[card ****{seeded.card[-4:]}]" in agent_text
    officer_digits = re.sub(r"\D", "", json.dumps(as_officer))
    assert seeded.card_digits not in officer_digits


async def test_an_agents_live_updates_carry_the_values_masked(stack: LocalStack) -> None:
    seeded = Seeded()
    customer_id, _ = await _seed(stack, seeded)
    # The ledger is refused to agents, and a refused field ends a subscription.
    walk = await _walk(
        stack, skip=frozenset({"Customer.mergeHistory", "Customer.mergeSuggestions"})
    )
    subscription = GraphQLRequest(
        "subscription ($c: ID!) { timelineUpdated(customerId: $c) { "
        f"{walk.selection('TimelineUpdate')} }} }}",
        variable_values={"c": customer_id},
    )
    said = f"New number {seeded.phone}, mail {seeded.email}, card {seeded.card}"

    async with ws_session(stack) as live:
        updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def listen() -> None:
            async for update in live.subscribe(subscription):
                await updates.put(update)

        listener = asyncio.create_task(listen())
        received = None
        try:
            # No protocol message says "subscribed": resend until the first push arrives.
            for _ in range(20):
                message = builders.chat("demo", visitor=seeded.visitor, text=said)
                await submit(stack, "chat", message)
                try:
                    received = await asyncio.wait_for(updates.get(), timeout=1)
                    break
                except TimeoutError:
                    if listener.done():
                        listener.result()  # the subscription was refused: say why
                    continue
        finally:
            listener.cancel()

    assert received is not None, "the subscription never pushed the chat message"
    assert received["timelineUpdated"]["entry"]["text"].startswith("New number ")
    assert seeded.leaks(received) == []
