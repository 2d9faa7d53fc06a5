"""Voice of the customer: messages grouped into topics with readable labels and stable ids."""

from __future__ import annotations

from services.insights.topics.build import build_topics
from services.insights.topics.model import Message, Topic, TopicModel

__all__ = ["Message", "Topic", "TopicModel", "build_topics"]
