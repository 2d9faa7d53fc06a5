"""The generated demo contacts on a real stack: ingested, found, acted on by their agents."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.agent_desk import execute, http_session
from tsunagu.local.demo import TENANT
from tsunagu.local.demo_contacts import Agent, act_on_stories, stories, submit_stories
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import ingest_pb2

CUSTOMER = """
query Customer($value: String!) {
  customerByIdentifier(kind: EMAIL, value: $value) {
    channels
    interactionCount
    timeline(first: 20) { edges { node { kind text actor { type displayName } } } }
  }
}"""


@pytest.mark.timeout(300)
async def test_generated_contacts_are_stored_and_each_agent_acts_as_themselves(
    stack: LocalStack,
) -> None:
    # Stories far into the generator's sequence: the e2e stack's other tests never use them.
    generated = stories(240)[-20:]

    def bearer(agent: Agent) -> str:
        token = stack.issuer.mint(tenant=TENANT, roles=["agent"], subject=agent.id, name=agent.name)
        return f"Bearer {token}"

    tokens = {c: stack.grpc_callers.adapter(c) for c in stack.channels}
    results = await submit_stories(generated, stack.ingest_addresses, tokens)
    assert len(results) == sum(len(s.events) for s in generated)
    assert {r.status for r in results} == {ingest_pb2.SubmitResult.STATUS_ACCEPTED}
    acted = await act_on_stories(
        generated,
        timeline_address=stack.timeline_address,
        timeline_token=stack.grpc_callers.tools,
        graphql_url=stack.graphql_url,
        bearer=bearer,
    )
    assert acted == {"STORED": sum(len(s.actions) for s in generated)}

    story = next(s for s in generated if s.identifier.value.endswith("example.jp") and s.actions)
    async with http_session(stack) as session:
        found = await execute(session, CUSTOMER, value=story.identifier.value)
    customer = found["customerByIdentifier"]
    nodes = [edge["node"] for edge in customer["timeline"]["edges"]]
    agents = {n["actor"]["displayName"] for n in nodes if n["actor"]["type"] == "AGENT"}
    assert story.agent.name in agents
    kinds = Counter(n["kind"] for n in nodes)
    assert kinds["MESSAGE"] + kinds["EMAIL"] >= 1


@pytest.mark.timeout(300)
async def test_submitting_the_same_stories_again_stores_nothing_new(stack: LocalStack) -> None:
    generated = stories(245)[-3:]
    tokens = {c: stack.grpc_callers.adapter(c) for c in stack.channels}
    first = await submit_stories(generated, stack.ingest_addresses, tokens)
    again = await submit_stories(generated, stack.ingest_addresses, tokens)
    assert {r.status for r in first} == {ingest_pb2.SubmitResult.STATUS_ACCEPTED}
    assert {r.status for r in again} == {ingest_pb2.SubmitResult.STATUS_DUPLICATE}
