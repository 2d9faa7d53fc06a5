"""The generated demo contacts: valid for ingestion, varied, seeded, never the demo customer."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.pipeline import IngestPolicy, prepare
from services.insights.topics import Message, build_topics
from tsunagu.local import demo_contacts
from tsunagu.local.demo import PHONE
from tsunagu.local.demo_contacts import Story, mutation_document, stories
from tsunagu.v1 import interaction_pb2 as pb

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def generated() -> list[Story]:
    return stories(now=NOW)


def test_every_generated_event_passes_its_channels_ingestion(generated: list[Story]) -> None:
    for story in generated:
        for _, interaction in story.events:
            policy = IngestPolicy(channel=interaction.channel)
            prepare(interaction, policy=policy, now=NOW)  # raises on a rejected event


def test_a_few_hundred_contacts_across_channels_topics_agents_and_outcomes(
    generated: list[Story],
) -> None:
    inbound = [i for s in generated for _, i in s.events if i.direction == pb.DIRECTION_INBOUND]
    assert len(inbound) >= 300
    assert set(Counter(c for s in generated for c, _ in s.events)) == {
        "chat",
        "email",
        "voice",
        "sms",
        "social",
    }
    assert len({s.topic for s in generated}) == 10
    assert len({s.agent for s in generated}) == len(demo_contacts.AGENTS)
    mutations = Counter(a.mutation for s in generated for a in s.actions)
    assert set(mutations) == {
        "resolveCase",
        "recordCsat",
        "requestCancellation",
        "recordCancellationOutcome",
        "escalate",
        "transfer",
    }
    outcomes = {
        a.variables["outcome"]
        for s in generated
        for a in s.actions
        if a.mutation == "recordCancellationOutcome"
    }
    assert {"RETAINED", "CANCELLED"} <= outcomes
    languages = Counter(i.content.language for i in inbound)
    assert min(languages["ja"], languages["en"]) >= 0.25 * len(inbound)


def test_contacts_span_eight_weeks_with_late_deliveries_spiking_in_the_last(
    generated: list[Story],
) -> None:
    firsts = [(s.topic, s.events[0][1].occurred_at.ToDatetime(UTC)) for s in generated]
    assert min(at for _, at in firsts) < NOW - timedelta(days=40)
    assert max(at for _, at in firsts) <= NOW
    late = [at for topic, at in firsts if topic == "delivery_delay"]
    assert sum(at > NOW - timedelta(days=7) for at in late) > len(late) / 2


def test_the_same_seed_gives_the_same_stories_and_event_ids(generated: list[Story]) -> None:
    again = stories(now=NOW)
    assert [s.events for s in again] == [s.events for s in generated]
    ids = [i.event_id for s in generated for _, i in s.events]
    ids += [str(a.variables["eventId"]) for s in generated for a in s.actions]
    assert len(ids) == len(set(ids))
    other = stories(now=NOW, seed=1)
    assert [s.topic for s in other] != [s.topic for s in generated]


def test_no_generated_customer_is_the_demo_customer(generated: list[Story]) -> None:
    for story in generated:
        for _, interaction in story.events:
            assert PHONE not in str(interaction)


def test_generated_messages_group_into_their_topics(generated: list[Story]) -> None:
    messages = [
        (Message(i.event_id, i.content.text or i.call.transcript), s.topic)
        for s in generated
        for _, i in s.events
        if i.direction == pb.DIRECTION_INBOUND
    ]
    model = build_topics([m for m, _ in messages])
    assert 5 <= len(model.topics) <= 25
    topic_of = {m: t.id for t in model.topics for m in t.member_ids}
    pure: dict[str, float] = {}
    for label in {t for _, t in messages}:
        found = Counter(topic_of.get(m.id) for m, t in messages if t == label)
        pure[label] = found.most_common(1)[0][1] / sum(found.values())
    assert sum(pure.values()) / len(pure) > 0.6


@pytest.mark.parametrize(
    ("mutation", "variables", "expected"),
    [
        ("resolveCase", {"summary": "x", "eventId": "e"}, "$summary: String!"),
        ("requestCancellation", {"reason": "HEALTH", "eventId": "e"}, "CancellationReason!"),
        ("escalate", {"level": 1, "reason": "r", "eventId": "e"}, "$reason: String!"),
    ],
)
def test_each_action_becomes_a_typed_mutation(
    mutation: str, variables: dict[str, object], expected: str
) -> None:
    document = mutation_document(demo_contacts.Action(mutation, variables))
    assert expected in document
    assert f"{mutation}(customerId: $customerId" in document
