"""Customers' messages through the timeline become topics; supervisors rename, merge and rebuild
them; insights keeps none of their words, so an erased person's words leave its topics."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from services.insights.settings import InsightsSettings
from tests import builders
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.insights_fixtures import eventually, running, voc_request
from tests.integration.test_consumer_faults import Bus
from tests.unit.voc_data import labelled
from tsunagu.v1 import insights_pb2, insights_pb2_grpc

TOPICS = ("delivery_delay", "cancel_subscription")


async def _chat(bus: Bus, text: str, *, at: datetime) -> str:
    """A new visitor's chat message, through the timeline (it announces it); its event id."""
    interaction = builders.chat(bus.tenant, visitor=f"v-{uuid.uuid4().hex[:10]}", text=text, at=at)
    await bus.publish(interaction.SerializeToString())
    return interaction.event_id


async def test_messages_become_topics_that_supervisors_rename_merge_and_rebuild(
    bus: Bus, insights_config: InsightsSettings, tenant: str, callers: CallerSet
) -> None:
    messages = [m for m in labelled() if m.topic in TOPICS][:40]
    at = datetime.now(UTC) - timedelta(days=1)
    ids: dict[str, str] = {}
    config = insights_config.model_copy(update={"timeline_address": bus.service.server.address})
    async with running(config) as service:
        channel = channel_for(service.server.address, callers.service)
        insights = insights_pb2_grpc.InsightsServiceStub(channel)
        async with channel:
            for m in messages:
                ids[await _chat(bus, m.message.text, at=at)] = m.topic
            await bus.recorded(list(ids))
            # The first model is built once enough messages were heard; its topics count the
            # cases they began once those cases' facts are saved (the model may come first).
            listed = await eventually(
                lambda: insights.ListVocTopics(voc_request(tenant)),
                lambda r: len(r.topics) >= 2 and r.topics[0].cases >= 1,
            )
            # Topics may split a subject finer than a person would, never mix two subjects.
            found = await insights.GetMessageTopics(
                insights_pb2.GetMessageTopicsRequest(tenant=tenant, event_ids=list(ids))
            )
            members: dict[str, list[str]] = {}
            for event_id, topic in found.topics.items():
                members.setdefault(topic.id, []).append(ids[event_id])
            assert len(found.topics) >= len(ids) // 2
            for labels in members.values():
                assert max(labels.count(x) for x in TOPICS) / len(labels) >= 0.8, labels
            biggest = listed.topics[0]
            assert biggest.messages >= 5
            assert biggest.this_week == biggest.messages
            assert biggest.cases >= 1
            assert all("<" in x.text or x.text for x in biggest.examples)

            renamed = await insights.RenameTopic(
                insights_pb2.RenameTopicRequest(
                    tenant=tenant, topic_id=biggest.topic.id, name="配送遅延"
                )
            )
            assert (renamed.topic.label, renamed.topic.named) == ("配送遅延", True)
            other = listed.topics[1].topic.id
            merged = await insights.MergeTopics(
                insights_pb2.MergeTopicsRequest(tenant=tenant, into=biggest.topic.id, other=other)
            )
            assert merged.topic.size == biggest.topic.size + listed.topics[1].topic.size
            rebuilt = await insights.RebuildTopics(insights_pb2.RebuildTopicsRequest(tenant=tenant))
            assert rebuilt.topics >= 1
            again = await insights.ListVocTopics(voc_request(tenant))
            assert "配送遅延" in {t.topic.label for t in again.topics}

            # Cases are grouped by their first message's topic.
            by_topic = insights_pb2.GetServiceMetricsRequest(tenant=tenant)
            by_topic.query.since.FromDatetime(datetime.now(UTC) - timedelta(days=3))
            by_topic.query.until.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
            by_topic.query.group_by = insights_pb2.METRIC_GROUP_TOPIC
            groups = {r.group for r in (await insights.GetServiceMetrics(by_topic)).rows}
            assert biggest.topic.id in groups


async def test_a_new_subject_gets_topics_without_waiting_for_the_messages_to_double(
    bus: Bus, insights_config: InsightsSettings, tenant: str, callers: CallerSet
) -> None:
    at = datetime.now(UTC) - timedelta(days=1)
    known = [m for m in labelled() if m.topic == "delivery_delay"]
    new = [m for m in labelled() if m.topic == "login"]
    config = insights_config.model_copy(update={"timeline_address": bus.service.server.address})
    async with running(config) as service:
        channel = channel_for(service.server.address, callers.service)
        insights = insights_pb2_grpc.InsightsServiceStub(channel)
        async with channel:
            first = [await _chat(bus, m.message.text, at=at) for m in known]
            await bus.recorded(first)
            # A model built from all of them: the next doubling is at twice as many.
            built = await eventually(
                lambda: insights.RebuildTopics(insights_pb2.RebuildTopicsRequest(tenant=tenant)),
                # (a message whose words are all greeting has nothing to group)
                lambda r: r.messages >= len(first) - 3,
            )
            # Fewer than twice as many, yet the new subject's messages, placed on no topic,
            # get a build of their own.
            assert len(first) + len(new) < 2 * built.messages
            later = [await _chat(bus, m.message.text, at=at) for m in new]
            await bus.recorded(later)
            # Both subjects' topics read at once: one model, whatever builds run meanwhile.
            both = await eventually(
                lambda: insights.GetMessageTopics(
                    insights_pb2.GetMessageTopicsRequest(tenant=tenant, event_ids=first + later)
                ),
                lambda r: sum(e in r.topics for e in later) >= len(later) // 2,
                seconds=120,
            )
            old_topics = {both.topics[e].id for e in first if e in both.topics}
            placed = [both.topics[e].id for e in later if e in both.topics]
            # Most of the new subject's messages are on topics of their own, not put with the
            # old subject (a message that mentions both may be; clustering is not exact).
            own = [topic for topic in placed if topic not in old_topics]
            assert len(own) * 2 > len(placed), (placed, old_topics)


async def test_many_customers_saying_the_same_thing_make_one_topic_automatically(
    bus: Bus, insights_config: InsightsSettings, tenant: str, callers: CallerSet
) -> None:
    # Every word is in every message: the automatic build used to fail on it (no terms left
    # after pruning those in most messages), and was tried again on every notice after.
    at = datetime.now(UTC) - timedelta(days=1)
    config = insights_config.model_copy(update={"timeline_address": bus.service.server.address})
    async with running(config) as service:
        channel = channel_for(service.server.address, callers.service)
        insights = insights_pb2_grpc.InsightsServiceStub(channel)
        async with channel:
            said = [await _chat(bus, "My parcel has not arrived yet", at=at) for _ in range(30)]
            await bus.recorded(said)
            listed = await eventually(
                lambda: insights.ListVocTopics(voc_request(tenant)),
                lambda r: len(r.topics) == 1 and r.topics[0].messages == len(said),
            )
            assert listed.unplaced == 0


@pytest.mark.parametrize(
    ("call", "request_", "code"),
    [
        ("RenameTopic", {"topic_id": "topic-nope", "name": "x"}, grpc.StatusCode.NOT_FOUND),
        ("RenameTopic", {"topic_id": "t", "name": "   "}, grpc.StatusCode.INVALID_ARGUMENT),
        ("RenameTopic", {"topic_id": "t", "name": "x" * 81}, grpc.StatusCode.INVALID_ARGUMENT),
        ("RenameTopic", {"topic_id": "", "name": "x"}, grpc.StatusCode.INVALID_ARGUMENT),
        ("MergeTopics", {"into": "a", "other": "b"}, grpc.StatusCode.NOT_FOUND),
        ("MergeTopics", {"into": "a" * 300, "other": "b"}, grpc.StatusCode.INVALID_ARGUMENT),
        (
            "GetMessageTopics",
            {"event_ids": [str(uuid.uuid4()) for _ in range(501)]},
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        ("RebuildTopics", {"tenant": "../x"}, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_hostile_topic_requests_are_refused(  # noqa: PLR0917 - fixtures and cases
    insights_config: InsightsSettings,
    tenant: str,
    callers: CallerSet,
    call: str,
    request_: dict[str, Any],
    code: grpc.StatusCode,
) -> None:
    types = {
        "RenameTopic": insights_pb2.RenameTopicRequest,
        "MergeTopics": insights_pb2.MergeTopicsRequest,
        "GetMessageTopics": insights_pb2.GetMessageTopicsRequest,
        "RebuildTopics": insights_pb2.RebuildTopicsRequest,
    }
    request = types[call](**{"tenant": tenant, **request_})
    async with running(insights_config) as service:
        channel = channel_for(service.server.address, callers.service)
        async with channel:
            stub = insights_pb2_grpc.InsightsServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await getattr(stub, call)(request)
            assert refused.value.code() == code
            # An adapter's token is refused before any of it is looked at.
            adapter = channel_for(service.server.address, callers.adapter("chat"))
            async with adapter:
                with pytest.raises(grpc.aio.AioRpcError) as denied:
                    await getattr(insights_pb2_grpc.InsightsServiceStub(adapter), call)(request)
                assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
