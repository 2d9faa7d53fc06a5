"""A privacy officer in the running system: every read in the audit trail, the chain verified,
a customer exported; an agent's export refused."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import pytest
from gql.transport.exceptions import TransportQueryError

from tests import builders
from tests.e2e.agent_desk import AGENT_ID, execute, found, http_session, submit, unique_phone
from tsunagu.local.stack import LocalStack

OFFICER = ("privacy_officer",)
SCREEN_POP = """query ($v: String!) { customerByIdentifier(kind: EMAIL, value: $v) {
  id displayName timeline(first: 5) { edges { node { text } } } } }"""
TRAIL = """query ($id: ID!) { auditTrail(customerId: $id, first: 50) {
  edges { node { sequence subject operation customerId clientAddress roles hash } } } }"""
EXPORT = """query ($id: ID!, $reason: String!) { exportCustomer(customerId: $id, reason: $reason) {
  customerId interactionCount document interactionsCsv } }"""


async def _customer(stack: LocalStack) -> tuple[str, str, str]:
    """A new customer with a unique email and sentence; (customer id, email, sentence)."""
    email = f"sar.{uuid.uuid4().hex[:10]}@example.com"
    sentence = f"Please keep my order {uuid.uuid4().hex[:8]} safe"
    _, phone = unique_phone("090-66")
    await submit(
        stack,
        "chat",
        builders.chat(
            "demo", visitor=f"v-sar-{uuid.uuid4().hex[:8]}", email=email, phone=phone, text=sentence
        ),
    )
    async with http_session(stack) as agent:
        customer = (await found(agent, SCREEN_POP, v=email))["customerByIdentifier"]
    return customer["id"], email, sentence


async def test_every_read_of_an_agent_is_in_the_customers_audit_trail(stack: LocalStack) -> None:
    customer_id, email, _ = await _customer(stack)
    async with http_session(stack) as agent:
        await execute(agent, SCREEN_POP, v=email)

    async with http_session(stack, roles=OFFICER) as officer:
        trail = (await execute(officer, TRAIL, id=customer_id))["auditTrail"]
        verdict = await execute(officer, "{ verifyAuditChain { intact recordsChecked } }")

    records = [edge["node"] for edge in trail["edges"]]
    reads = [(r["subject"], r["operation"]) for r in records if r["subject"] == AGENT_ID]
    # found() read until the customer was there, then the explicit read: both kinds, each time.
    assert reads.count((AGENT_ID, "read_profile")) >= 2
    assert reads.count((AGENT_ID, "read_timeline")) >= 2
    assert {r["customerId"] for r in records} == {customer_id}
    assert all(r["clientAddress"] for r in records)
    # The officer's own reading of the trail is in it too (the newest record).
    assert (records[0]["operation"], records[0]["roles"]) == ("read_audit", ["privacy_officer"])
    assert verdict["verifyAuditChain"]["intact"] is True


async def test_a_privacy_officer_exports_a_customer_with_every_interaction(
    stack: LocalStack,
) -> None:
    customer_id, email, sentence = await _customer(stack)

    async with http_session(stack, roles=OFFICER) as officer:
        exported = (await execute(officer, EXPORT, id=customer_id, reason="SAR-2026-17"))[
            "exportCustomer"
        ]
        trail = (await execute(officer, TRAIL, id=customer_id))["auditTrail"]

    document: dict[str, Any] = json.loads(exported["document"])
    assert document["customer_id"] == customer_id
    assert email in {identifier["value"] for identifier in document["identifiers"]}
    texts = [
        entry["interaction"].get("content", {}).get("text") for entry in document["interactions"]
    ]
    assert sentence in texts
    assert {"read_profile", "read_timeline"} <= {
        r["access"]["operation"] for r in document["audit"]
    }
    rows = list(csv.DictReader(io.StringIO(exported["interactionsCsv"])))
    assert sentence in [row["text"] for row in rows]
    assert exported["interactionCount"] == len(rows) == len(document["interactions"])
    assert "export" in [edge["node"]["operation"] for edge in trail["edges"]]


@pytest.mark.parametrize("roles", [("agent",), ("supervisor",), ("analyst",), ("admin",)])
async def test_an_export_by_anyone_but_a_privacy_officer_is_refused(
    stack: LocalStack, roles: tuple[str, ...]
) -> None:
    customer_id, _, sentence = await _customer(stack)

    async with http_session(stack, roles=roles) as caller:
        with pytest.raises(TransportQueryError) as refused:
            await execute(caller, EXPORT, id=customer_id, reason="curious")

    assert refused.value.errors is not None
    assert [error["extensions"]["code"] for error in refused.value.errors] == ["FORBIDDEN"]
    assert sentence not in str(refused.value)
