"""Messages heard while a topic build runs are placed by the model it makes (real store; the
timeline's words are a fake)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.insights import voice
from services.insights.store import InsightsStore, StoredMessage
from services.insights.topics import Message, TopicModel, build_topics
from services.insights.voice import Voices
from services.insights.words import Words
from tests import builders
from tsunagu.v1 import timeline_pb2

TENANT = "acme"
SAID = "My parcel has not arrived yet"
OTHER = "I cannot log in to my account, the password is refused"


@pytest.fixture
async def store(mongodb_uri: str, database_name: str) -> AsyncIterator[InsightsStore]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    insights = InsightsStore(client[database_name])
    await insights.ensure_indexes()
    yield insights
    await client.drop_database(database_name)
    await client.close()


async def _read_many(tenant: str, event_ids: Sequence[str]) -> list[timeline_pb2.TimelineEntry]:
    """The timeline's answer: every asked-for message says the same thing."""
    entries = []
    for event_id in event_ids:
        entry = timeline_pb2.TimelineEntry()
        text = OTHER if event_id.startswith("login") else SAID
        entry.interaction.CopyFrom(builders.chat(tenant, text=text))
        entry.interaction.event_id = event_id
        entries.append(entry)
    return entries


def _heard(n: int, start: int, prefix: str = "m") -> list[tuple[StoredMessage, str]]:
    text = OTHER if prefix == "login" else SAID
    return [
        (StoredMessage(TENANT, f"{prefix}{i}", f"case-{prefix}{i}", float(i)), text)
        for i in range(start, n)
    ]


async def _placed(voices: Voices, ids: list[str]) -> dict[str, str]:
    """Wait until every message of `ids` is on a topic; message → topic id."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while True:
        topics = await voices.topics_of(TENANT, ids)
        if len(topics) == len(ids):
            return {event_id: topic.id for event_id, topic in topics.items()}
        assert loop.time() < deadline, f"placed: {sorted(topics)} of {len(ids)}"
        await asyncio.sleep(0.2)


async def test_messages_heard_while_a_build_runs_are_placed_by_the_model_it_makes(
    store: InsightsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    began = threading.Event()

    def slow_build(messages: Sequence[Message], *, previous: Sequence[Any] = ()) -> TopicModel:
        began.set()
        release.wait(120)
        return build_topics(messages, previous=previous)

    monkeypatch.setattr(voice, "build_topics", slow_build)
    voices = Voices(store, Words(_read_many))
    await voices.heard(_heard(20, 0))  # 20 messages: the first build starts
    assert await asyncio.to_thread(began.wait, 120)
    await voices.heard(_heard(25, 20))  # heard while it runs: no model to place them yet
    release.set()
    placed = await _placed(voices, [f"m{i}" for i in range(25)])
    assert len(set(placed.values())) == 1
    kept = {m.event_id: m.topic for m in await store.messages(TENANT)}
    assert kept == placed
