"""Each tenant's voice of the customer: its messages, its topic model, assignment, rebuilds.

The topic method is `services/insights/topics` (docs/insights.md, "Topics"); this module keeps
what it needs per tenant: the inbound customer messages (ids, cases, times and topics in the
insights database; their words are read back from the timeline, `services/insights/words.py`),
the current model (persisted as its versioned bytes), and in memory which topic each message and
case is on. A new message is assigned at once (`TopicModel.assign`); a tenant's first model is
built as soon as it has enough messages, and rebuilt when its messages have doubled since, or
when a supervisor asks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from services.insights.store import InsightsStore, StoredMessage
from services.insights.topics import Message, Topic, TopicModel, build_topics
from services.insights.words import Words

log = logging.getLogger(__name__)

# Below this many messages there is nothing to group (the method works from 20 messages).
MIN_MESSAGES = 20
# A new subject (this many messages placed on no topic since the last build) is grouped by a
# build at most this long after the last one began: new messages get a topic within a minute
# (issue 13) however long the tenant's history, without a build per message.
UNPLACED_REBUILD_SECONDS = 30.0


class UnknownTopic(ValueError):
    """A rename or merge named a topic the tenant's model does not have."""


@dataclass(slots=True)
class _Tenant:
    model: TopicModel
    # Message (event) id → (case id, topic id or "", when it happened).
    messages: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    built_with: int = 0
    building: asyncio.Task[None] | None = None
    # Messages heard on no topic since the last build began, and when it began (monotonic).
    unplaced_since_build: int = 0
    build_began: float = 0.0
    # One rebuild at a time: an automatic one and a supervisor's would read and group twice.
    rebuilding: asyncio.Lock = field(default_factory=asyncio.Lock)


class Voices:
    """Topics of every tenant; the only writer of messages' topics and of topic models."""

    def __init__(
        self,
        store: InsightsStore,
        words: Words,
        *,
        unplaced_rebuild_seconds: float = UNPLACED_REBUILD_SECONDS,
    ) -> None:
        self._store = store
        self.words = words
        self._unplaced_wait = unplaced_rebuild_seconds
        self._tenants: dict[str, _Tenant] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _tenant(self, tenant: str) -> _Tenant:
        held = self._tenants.get(tenant)
        if held is not None:
            return held
        async with self._locks.setdefault(tenant, asyncio.Lock()):
            if tenant not in self._tenants:
                data = await self._store.topic_model(tenant)
                model = TopicModel.from_bytes(data) if data else TopicModel()
                state = _Tenant(model, built_with=sum(t.size for t in model.topics))
                for m in await self._store.messages(tenant):
                    state.messages[m.event_id] = (m.case_id, m.topic, m.at)
                self._tenants[tenant] = state
        return self._tenants[tenant]

    async def heard(self, heard: Sequence[tuple[StoredMessage, str]]) -> None:
        """Keep new inbound messages (not their texts) in one write per tenant, each placed in
        a topic ("" when none fits yet); those kept before are left as they are."""
        by_tenant: dict[str, list[tuple[StoredMessage, str]]] = {}
        for message, text in heard:
            by_tenant.setdefault(message.tenant, []).append((message, text))
        for tenant, items in by_tenant.items():
            await self._heard(tenant, items)

    async def _heard(self, tenant: str, items: list[tuple[StoredMessage, str]]) -> None:
        state = await self._tenant(tenant)
        new: dict[str, StoredMessage] = {}
        for message, text in items:
            if message.event_id in state.messages or message.event_id in new:
                continue
            self.words.remember(tenant, message.event_id, text)
            topic = state.model.assign(text) or "" if state.model.topics else ""
            new[message.event_id] = replace(message, topic=topic)
        # Kept before they count as heard: a failed write leaves them to the redelivery.
        await self._store.save_messages(list(new.values()))
        for m in new.values():
            state.messages[m.event_id] = (m.case_id, m.topic, m.at)
            state.unplaced_since_build += not m.topic
        count = len(state.messages)
        if count >= MIN_MESSAGES and count >= 2 * max(state.built_with, MIN_MESSAGES // 2):
            self._rebuild_soon(tenant, state, after=0.0)
        elif state.unplaced_since_build >= MIN_MESSAGES:
            since = asyncio.get_running_loop().time() - state.build_began
            self._rebuild_soon(tenant, state, after=max(0.0, self._unplaced_wait - since))

    def _rebuild_soon(self, tenant: str, state: _Tenant, *, after: float) -> None:
        if state.building is None or state.building.done():
            state.building = asyncio.create_task(
                self._rebuild_quietly(tenant, after), name="topics"
            )

    async def _rebuild_quietly(self, tenant: str, after: float) -> None:
        # In the background: a failed automatic rebuild keeps the previous model.
        try:
            if after:
                await asyncio.sleep(after)
            await self.rebuild(tenant)
        except Exception:
            log.exception("an automatic topic rebuild failed; the previous model stays")

    async def rebuild(self, tenant: str) -> TopicModel:
        """Group all the tenant's messages again, keeping ids, names and merges."""
        state = await self._tenant(tenant)
        async with state.rebuilding:
            return await self._rebuild(tenant, state)

    async def _rebuild(self, tenant: str, state: _Tenant) -> TopicModel:
        state.unplaced_since_build = 0
        state.build_began = asyncio.get_running_loop().time()
        stored = await self._store.messages(tenant)
        # Read afresh: words erased since the last build drop out of the topics.
        self.words.forget(tenant)
        texts = await self.words.texts(tenant, [m.event_id for m in stored])
        messages = [Message(m.event_id, texts[m.event_id]) for m in stored if m.event_id in texts]
        try:
            # CPU-bound (clustering): off the event loop, so the feed and the API keep going.
            model = await asyncio.to_thread(build_topics, messages, previous=state.model.topics)
        except Exception:
            # Not tried again on the next notices (each try reads every message back), only
            # when the rules above ask again.
            state.built_with = len(messages)
            raise
        # Messages heard while it ran are not in it: placed by the new model, as they would
        # have been had they come a moment later (their words were just heard: cached).
        read = {m.event_id for m in stored}
        late = await self.words.texts(tenant, [e for e in state.messages if e not in read])
        await self._adopt(
            tenant, state, model, late={e: model.assign(text) or "" for e, text in late.items()}
        )
        state.built_with = len(messages)
        log.info(
            "rebuilt topics of a tenant: %d messages, %d topics", len(messages), len(model.topics)
        )
        return model

    async def _adopt(
        self, tenant: str, state: _Tenant, model: TopicModel, *, late: Mapping[str, str]
    ) -> None:
        await self._store.save_topic_model(tenant, model.to_bytes())
        state.model = model
        placed = {**late, **{m: t.id for t in model.topics for m in t.member_ids}}
        changed: dict[str, list[str]] = {}
        for event_id, (case_id, topic, at) in list(state.messages.items()):
            new = placed.get(event_id, "")
            if new != topic:
                state.messages[event_id] = (case_id, new, at)
                changed.setdefault(new, []).append(event_id)
        await self._store.set_message_topics(tenant, changed)

    async def rename(self, tenant: str, topic_id: str, name: str) -> Topic:
        state = await self._tenant(tenant)
        if state.model.topic(topic_id) is None:
            raise UnknownTopic(topic_id)
        model = state.model.rename(topic_id, name)
        await self._store.save_topic_model(tenant, model.to_bytes())
        state.model = model
        found = model.topic(topic_id)
        assert found is not None
        return found

    async def merge(self, tenant: str, into: str, other: str) -> Topic:
        state = await self._tenant(tenant)
        if state.model.topic(into) is None or state.model.topic(other) is None:
            raise UnknownTopic(other if state.model.topic(into) else into)
        model = state.model.merge(into, other)
        await self._adopt(tenant, state, model, late={})
        found = model.topic(into)
        assert found is not None
        return found

    async def texts(
        self, tenant: str, event_ids: Iterable[str], *, fresh: bool = False
    ) -> dict[str, str]:
        """The words of these messages, read back from the timeline (erased ones left out);
        ``fresh`` bypasses the cache (see `Words.texts`)."""
        return await self.words.texts(tenant, event_ids, fresh=fresh)

    async def model(self, tenant: str) -> TopicModel:
        return (await self._tenant(tenant)).model

    async def case_topics(self, tenant: str) -> dict[str, str]:
        """Each case's topic: the topic of its first message that has one."""
        state = await self._tenant(tenant)
        first: dict[str, tuple[float, str]] = {}
        for case_id, topic, at in state.messages.values():
            if topic and (case_id not in first or at < first[case_id][0]):
                first[case_id] = (at, topic)
        return {case: topic for case, (_at, topic) in first.items()}

    async def topics_of(self, tenant: str, event_ids: Iterable[str]) -> dict[str, Topic]:
        """The topic of each message among `event_ids` that has one."""
        state = await self._tenant(tenant)
        found = {}
        for event_id in event_ids:
            held = state.messages.get(event_id)
            topic = state.model.topic(held[1]) if held and held[1] else None
            if topic is not None:
                found[event_id] = topic
        return found

    async def message_times(self, tenant: str) -> Mapping[str, list[float]]:
        """When each topic's messages came (topic id → times)."""
        state = await self._tenant(tenant)
        times: dict[str, list[float]] = {}
        for _case, topic, at in state.messages.values():
            if topic:
                times.setdefault(topic, []).append(at)
        return times

    async def grouped(self, tenant: str) -> int:
        """How many messages (with words to read) the tenant's last build grouped."""
        return (await self._tenant(tenant)).built_with

    async def unplaced(self, tenant: str) -> int:
        """Messages on no topic (yet)."""
        state = await self._tenant(tenant)
        return sum(1 for _case, topic, _at in state.messages.values() if not topic)
