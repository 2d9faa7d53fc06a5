"""Voice of the customer end to end: chats through ingest become topics in GraphQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gql.transport.exceptions import TransportQueryError

from tests import builders
from tests.e2e.agent_desk import TENANT, eventually, execute, http_session, submit
from tests.unit.voc_data import labelled
from tsunagu.local.stack import LocalStack

VOC = """
query ($since: DateTime!, $until: DateTime!) {
  vocTopics(since: $since, until: $until) {
    unplaced
    topics { topic { id label terms size named } examples { eventId text }
             messages thisWeek lastWeek spike cases figure(name: "cases") }
  }
}
"""
TIMELINE = """
query ($visitor: String!) {
  customerByIdentifier(kind: CHAT_VISITOR, value: $visitor) {
    timeline(first: 5) { edges { node { eventId topic { id label } } } }
  }
}
"""
RENAME = """
mutation ($id: ID!, $name: String!) { renameTopic(topicId: $id, name: $name) { id label named } }
"""


def _window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "since": (now - timedelta(days=2)).isoformat(),
        "until": (now + timedelta(hours=1)).isoformat(),
    }


def _code(refused: pytest.ExceptionInfo[TransportQueryError]) -> str:
    assert refused.value.errors is not None
    return str(refused.value.errors[0]["extensions"]["code"])


async def test_chats_become_topics_on_timelines_that_supervisors_name(stack: LocalStack) -> None:
    run = uuid.uuid4().hex[:6]
    at = datetime.now(UTC) - timedelta(hours=1)
    sent = [m for m in labelled() if m.topic in {"delivery_delay", "skin_reaction"}][:30]
    visitors = []
    for n, m in enumerate(sent):
        visitor = f"v-voc-{run}-{n}"
        visitors.append(visitor)
        chat = builders.chat(TENANT, visitor=visitor, text=m.message.text, at=at)
        await submit(stack, "chat", chat)

    async with http_session(stack, ("analyst",)) as analyst:
        voc = await eventually(
            analyst, VOC, lambda r: len(r["vocTopics"]["topics"]) >= 2, seconds=90, **_window()
        )
    topics = voc["vocTopics"]["topics"]
    biggest = topics[0]
    assert biggest["topic"]["size"] >= 2
    assert biggest["thisWeek"] >= 1
    # Examples are customers' words with personal data and numbers masked.
    assert all(not any(ch.isdigit() for ch in e["text"]) for t in topics for e in t["examples"])

    async with http_session(stack, ("supervisor",)) as supervisor:
        placed = await eventually(
            supervisor,
            TIMELINE,
            lambda r: any(
                e["node"]["topic"] for e in r["customerByIdentifier"]["timeline"]["edges"]
            ),
            seconds=90,
            visitor=visitors[0],
        )
        topic = placed["customerByIdentifier"]["timeline"]["edges"][0]["node"]["topic"]
        renamed = (await execute(supervisor, RENAME, id=topic["id"], name="配送の遅れ"))[
            "renameTopic"
        ]
        assert renamed == {"id": topic["id"], "label": "配送の遅れ", "named": True}
        with pytest.raises(TransportQueryError) as unknown:
            await execute(supervisor, RENAME, id="topic-nope", name="x")
        assert _code(unknown) == "NOT_FOUND"
        with pytest.raises(TransportQueryError) as blank:
            await execute(supervisor, RENAME, id=topic["id"], name="   ")
        assert _code(blank) == "BAD_USER_INPUT"
    async with http_session(stack) as agent:
        with pytest.raises(TransportQueryError) as forbidden:
            await execute(agent, RENAME, id=topic["id"], name="mine")
        assert _code(forbidden) == "FORBIDDEN"
        with pytest.raises(TransportQueryError) as not_analyst:
            await execute(agent, VOC, **_window())
        assert _code(not_analyst) == "FORBIDDEN"


SIMILAR = """
query ($k: ID!) { similarResolvedCases(caseId: $k, first: 5) {
    caseId score resolutionNote case { id status } } }
"""
PROMOTE = """
mutation ($k: ID!, $t: String!) { promoteResolution(caseId: $k, title: $t) { id title body } }
"""
ARTICLES = """
query ($q: String!) { knowledgeArticles(query: $q, first: 5) { id title body score } }
"""
OPEN_CASE = """
query ($visitor: String!) {
  customerByIdentifier(kind: CHAT_VISITOR, value: $visitor) { id openCase { id } }
}
"""


async def _open_case(session: Any, visitor: str) -> tuple[str, str]:
    found = await eventually(
        session,
        OPEN_CASE,
        lambda r: (r["customerByIdentifier"] or {}).get("openCase") is not None,
        visitor=visitor,
    )
    customer = found["customerByIdentifier"]
    return customer["id"], customer["openCase"]["id"]


async def test_an_open_case_finds_what_solved_a_similar_one_and_supervisors_share_it(
    stack: LocalStack,
) -> None:
    run = uuid.uuid4().hex[:6]
    at = datetime.now(UTC) - timedelta(minutes=30)
    solved, asking = f"v-sol-{run}", f"v-ask-{run}"
    note = f"Refunded the second charge {run}"
    text = "I was charged twice for my subscription this month"
    await submit(stack, "chat", builders.chat(TENANT, visitor=solved, text=text, at=at))
    await submit(
        stack,
        "chat",
        builders.chat(TENANT, visitor=asking, text="double charge on my card", at=at),
    )
    async with http_session(stack, ("supervisor",)) as supervisor:
        customer, case = await _open_case(supervisor, solved)
        _asking_customer, open_case = await _open_case(supervisor, asking)
        resolved = await execute(
            supervisor,
            """mutation ($c: ID!, $k: ID!, $s: String!) { resolveCase(customerId: $c,
                caseId: $k, summary: $s) { status } }""",
            c=customer,
            k=case,
            s=note,
        )
        assert resolved["resolveCase"]["status"] == "STORED"
        similar = await eventually(
            supervisor,
            SIMILAR,
            lambda r: case in {c["caseId"] for c in r["similarResolvedCases"]},
            k=open_case,
        )
        [hit] = [c for c in similar["similarResolvedCases"] if c["caseId"] == case]
        assert hit["resolutionNote"] == note
        assert hit["case"] == {"id": case, "status": "RESOLVED"}

        article = (await execute(supervisor, PROMOTE, k=case, t="Charged twice"))[
            "promoteResolution"
        ]
        assert article["body"] == note
        found = (await execute(supervisor, ARTICLES, q="charged twice"))["knowledgeArticles"]
        assert article["id"] in {a["id"] for a in found}

        with pytest.raises(TransportQueryError) as unresolved:
            await execute(supervisor, PROMOTE, k=open_case, t="Not yet")
        assert _code(unresolved) == "NOT_FOUND"
        with pytest.raises(TransportQueryError) as empty:
            await execute(supervisor, ARTICLES, q="   ")
        assert _code(empty) == "BAD_USER_INPUT"
    async with http_session(stack) as agent:
        # Agents read what solved it and the articles; only supervisors promote.
        assert (await execute(agent, ARTICLES, q="charged twice"))["knowledgeArticles"]
        with pytest.raises(TransportQueryError) as forbidden:
            await execute(agent, PROMOTE, k=case, t="mine")
        assert _code(forbidden) == "FORBIDDEN"
