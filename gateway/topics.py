"""What a customer's message is about: its topic (voice of the customer), on every timeline."""

from __future__ import annotations

import logging

import strawberry

from gateway.context import Info
from gateway.errors import ErrorCode, GatewayError
from gateway.timeline import InteractionFields
from tsunagu.v1 import insights_pb2

_log = logging.getLogger(__name__)


@strawberry.type(description="A group of customers' messages about one thing.")
class Topic:
    id: strawberry.ID
    label: str = strawberry.field(description="Its heaviest terms, or a supervisor's name.")
    terms: list[str]
    size: int = strawberry.field(description="Messages on the topic, all time.")
    named: bool = strawberry.field(description="Whether a supervisor named it.")

    @classmethod
    def from_proto(cls, topic: insights_pb2.TopicSummary) -> Topic:
        return cls(
            id=strawberry.ID(topic.id),
            label=topic.label,
            terms=list(topic.terms),
            size=topic.size,
            named=topic.named,
        )


async def interaction_topic(root: InteractionFields, info: Info) -> Topic | None:
    """The message's topic, batched with its siblings; null for other entries and while none
    fits, and while the insights service cannot answer (the timeline stays readable)."""
    try:
        found = await info.context.topic_loader.load(str(root.event_id))
    except GatewayError as error:
        if error.code is not ErrorCode.INSIGHTS_UNAVAILABLE:
            raise
        _log.warning("topics left out of a timeline: the insights service is unavailable")
        return None
    return None if found is None else Topic.from_proto(found)
