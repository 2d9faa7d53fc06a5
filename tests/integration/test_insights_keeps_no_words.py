"""Insights keeps no customer's words at rest: its database holds ids, times, topics and
figures; the words are read back from the (sealed) timeline, so erasure reaches topics too."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from services.insights.settings import InsightsSettings
from tests import builders
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.insights_fixtures import eventually, running, voc_request
from tests.integration.sealed_services import sealed_services
from tests.integration.test_ingest_to_timeline import submit, wait_for_events
from tests.unit.voc_data import labelled
from tsunagu.v1 import erasure_pb2, ingest_pb2, insights_pb2, insights_pb2_grpc

Starter = Callable[..., AbstractAsyncContextManager[Any]]
TOPICS = ("delivery_delay", "cancel_subscription")


async def _everything_in(uri: str, database: str) -> str:
    """Every document of every collection of the database, as one searchable text."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    try:
        db = client[database]
        parts = []
        for name in await db.list_collection_names():
            parts.extend([repr(doc) async for doc in db[name].find({})])
        return "\n".join(parts)
    finally:
        await client.close()


async def test_insights_stores_no_words_and_an_erased_persons_words_leave_its_topics(  # noqa: PLR0917
    run_timeline: Starter,
    run_ingest: Starter,
    callers: CallerSet,
    insights_config: InsightsSettings,
    tenant: str,
    tmp_path: Path,
) -> None:
    texts = [m.message.text for m in labelled() if m.topic in TOPICS][:30]
    at = datetime.now(UTC) - timedelta(hours=3)
    async with sealed_services(
        run_timeline=run_timeline,
        run_ingest=run_ingest,
        callers=callers,
        key_file=tmp_path / "keys.json",
    ) as services:
        chats = [
            builders.chat(tenant, visitor=f"v-{uuid.uuid4().hex[:10]}", text=text, at=at)
            for text in texts
        ]
        # The person to erase says what the first customer said: a twin that shares its topic.
        person = builders.chat(tenant, visitor=f"v-{uuid.uuid4().hex[:10]}", text=texts[0], at=at)
        for chat in [*chats, person]:
            result = await submit(services.ingest["chat"], chat)
            assert result.status == ingest_pb2.SubmitResult.STATUS_ACCEPTED
        owners = await wait_for_events(
            services.timeline, tenant, [c.event_id for c in [*chats, person]]
        )
        config = insights_config.model_copy(update={"timeline_address": services.timeline_address})
        async with running(config) as service:
            channel = channel_for(service.server.address, callers.service)
            insights = insights_pb2_grpc.InsightsServiceStub(channel)
            async with channel:
                # Rebuilt once every message was heard (the person's is the last).
                await eventually(
                    lambda: insights.RebuildTopics(
                        insights_pb2.RebuildTopicsRequest(tenant=tenant)
                    ),
                    lambda r: r.messages == len(chats) + 1,
                )
                placed = await insights.GetMessageTopics(
                    insights_pb2.GetMessageTopicsRequest(
                        tenant=tenant, event_ids=[person.event_id, chats[0].event_id]
                    )
                )
                assert person.event_id in placed.topics
                listed = await insights.ListVocTopics(voc_request(tenant))
                assert any(x.text for t in listed.topics for x in t.examples)

                # At rest: ids and figures, not one customer sentence.
                kept = await _everything_in(config.mongodb_uri, config.mongodb_database)
                assert person.event_id in kept
                assert [t for t in texts if t in kept] == []

                await services.erasure.EraseCustomer(
                    erasure_pb2.EraseCustomerRequest(
                        tenant=tenant,
                        customer_id=owners[person.event_id],
                        reason="APPI art. 35 request",
                        actor=erasure_pb2.ErasureActor(subject="po-1", display_name="PO"),
                    )
                )
                await insights.RebuildTopics(insights_pb2.RebuildTopicsRequest(tenant=tenant))
                after = await insights.GetMessageTopics(
                    insights_pb2.GetMessageTopicsRequest(
                        tenant=tenant, event_ids=[person.event_id, chats[0].event_id]
                    )
                )
                # The erased words are out of every topic; the twin's stay.
                assert person.event_id not in after.topics
                assert chats[0].event_id in after.topics
                again = await insights.ListVocTopics(voc_request(tenant))
                assert person.event_id not in {x.event_id for t in again.topics for x in t.examples}


async def test_words_an_earlier_version_stored_are_removed_at_start(
    insights_config: InsightsSettings, tenant: str
) -> None:
    sentence = f"my cat {uuid.uuid4().hex[:8]} ate the invoice"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(insights_config.mongodb_uri)
    try:
        db = client[insights_config.mongodb_database]
        legacy = {"tenant": tenant, "event_id": "e-1", "case_id": "k-1", "at": 1.0, "topic": ""}
        await db["messages"].insert_one({"_id": f"{tenant}/e-1", **legacy, "text": sentence})
        await db["resolutions"].insert_one(
            {
                "_id": f"{tenant}/k-1",
                "tenant": tenant,
                "case_id": "k-1",
                "note": sentence,
                "at": 1.0,
            }
        )
        async with running(insights_config):
            kept = await _everything_in(
                insights_config.mongodb_uri, insights_config.mongodb_database
            )
        assert "e-1" in kept
        assert sentence not in kept
    finally:
        await client.close()
