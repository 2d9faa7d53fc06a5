"""The insights database: its own collections of events, case facts and identity aliases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, AsyncMongoClient, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase

from services.insights.events import CaseEvent
from services.insights.facts import CaseFacts
from services.insights.similar import Article
from tsunagu.store_writes import insert_many_new, write_many_at_version

if TYPE_CHECKING:
    from services.insights.settings import InsightsSettings

Document = dict[str, Any]
# Reads one call sends at once (each takes a connection of the pool while it waits).
_READS_IN_FLIGHT = 8


def _key(tenant: str, name: str) -> str:
    return f"{tenant}/{name}"


def _event_document(event: CaseEvent) -> Document:
    doc = event.document()
    doc["_id"] = _key(event.tenant, event.event_id)
    doc["case_key"] = _key(event.tenant, event.case_id)
    return doc


def _case_document(facts: CaseFacts) -> Document:
    doc = facts.document()
    doc["_id"] = _key(facts.tenant, facts.case_id)
    doc["customer_key"] = _key(facts.tenant, facts.customer_id)
    return doc


@dataclass(frozen=True, slots=True)
class SavedCase:
    """A case's facts as saved, and the version they were saved at (None: saved before
    versions were kept, or by a bulk load)."""

    facts: CaseFacts
    version: int | None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """An inbound customer message as kept for topics: where it belongs, not its words (those
    are read back from the timeline, `services/insights/words.py`)."""

    tenant: str
    event_id: str
    case_id: str
    at: float
    topic: str = ""

    @classmethod
    def from_document(cls, doc: Document) -> StoredMessage:
        return cls(doc["tenant"], doc["event_id"], doc["case_id"], doc["at"], doc.get("topic", ""))


class InsightsStore:
    """The only code touching the insights collections (`events`, `cases`, `aliases`).

    Times are stored as epoch seconds (numbers): the embedded store keeps dates written by
    `$set` as strings, numbers it keeps as numbers (docs/store-compat.md).
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self._events = db["events"]
        self._cases = db["cases"]
        self._aliases = db["aliases"]
        self._messages = db["messages"]
        self._topic_models = db["topic_models"]
        self._resolutions = db["resolutions"]
        self._articles = db["articles"]

    async def ensure_indexes(self) -> None:
        """Single-field indexes on the leading key of each hot query (idempotent)."""
        await self._events.create_index([("case_key", ASCENDING)])
        await self._cases.create_index([("tenant", ASCENDING)])
        await self._cases.create_index([("customer_key", ASCENDING)])
        await self._aliases.create_index([("tenant", ASCENDING)])
        await self._messages.create_index([("tenant", ASCENDING)])
        await self._messages.create_index([("case_id", ASCENDING)])
        await self._resolutions.create_index([("tenant", ASCENDING)])
        await self._articles.create_index([("tenant", ASCENDING)])

    async def drop_stored_words(self) -> None:
        """Remove the words an earlier version kept at rest (messages' `text`, resolutions'
        `note`): insights now reads them from the timeline (idempotent, run at start)."""
        await self._messages.update_many({"text": {"$exists": True}}, {"$unset": {"text": ""}})
        await self._resolutions.update_many({"note": {"$exists": True}}, {"$unset": {"note": ""}})

    async def record_many(self, events: Sequence[CaseEvent]) -> int:
        """Keep many events at once (a bulk load); those recorded before are skipped.

        Returns:
            How many were new.

        Raises:
            BulkWriteError: A write failed for another reason than a duplicate.
        """
        return len(events) - len(
            await insert_many_new(self._events, [_event_document(e) for e in events])
        )

    async def record_each(self, events: Sequence[CaseEvent]) -> list[bool]:
        """Keep many events in one write; for each, False when its event id was recorded
        before (a redelivery, or twice in `events`).

        Raises:
            BulkWriteError: A write failed for another reason than a duplicate (what was
                written stays: applying the batch again finds those as duplicates).
        """
        refused = await insert_many_new(self._events, [_event_document(e) for e in events])
        return [index not in refused for index in range(len(events))]

    async def events_of_cases(
        self, tenant: str, case_ids: Iterable[str]
    ) -> dict[str, list[CaseEvent]]:
        """Every recorded event of each of these cases (case id → events).

        One indexed equality per case, sent together, rather than one `case_key $in`: the
        embedded store answers an `$in` on any field but `_id` by scanning the collection
        (docs/store-compat.md), and this collection holds every event insights has heard, so
        that read grew with the store (41 ms a batch at 30,000 events). On MongoDB both are
        index reads; these are a few cases a batch (the ones folded from all their events).
        """
        keys = sorted({_key(tenant, case_id) for case_id in case_ids})
        in_flight = asyncio.Semaphore(_READS_IN_FLIGHT)

        async def events_of(key: str) -> list[Document]:
            async with in_flight:
                return await self._events.find({"case_key": key}).to_list()

        found: dict[str, list[CaseEvent]] = {}
        for docs in await asyncio.gather(*(events_of(k) for k in keys)):
            for doc in docs:
                event = CaseEvent.from_document(doc)
                found.setdefault(event.case_id, []).append(event)
        return found

    async def saved_cases(self, tenant: str, case_ids: Iterable[str]) -> dict[str, SavedCase]:
        """The saved facts of each of these cases that has some, at their versions, in one
        query (case id → saved)."""
        keys = [_key(tenant, case_id) for case_id in case_ids]
        found = {}
        async for doc in self._cases.find({"_id": {"$in": keys}}):
            facts = CaseFacts.from_document(doc)
            found[facts.case_id] = SavedCase(facts, doc.get("version"))
        return found

    async def save_cases_at_versions(
        self, writes: Sequence[tuple[CaseFacts, int | None]]
    ) -> set[str]:
        """Save many cases' facts in one write, each only at the version it was read (None:
        only if no versioned facts are saved); returns the case ids that lost the race (their
        saved facts stay as they were: another replica saved the case meanwhile).

        Raises:
            BulkWriteError: A write failed for another reason than a lost race.
        """
        # A first save carries its first version; a later one is given the next by the write.
        docs = [
            (_case_document(facts) | ({"version": 1} if version is None else {}), version)
            for facts, version in writes
        ]
        lost = await write_many_at_version(self._cases, docs)
        return {
            facts.case_id
            for (facts, _), (doc, _) in zip(writes, docs, strict=True)
            if doc["_id"] in lost
        }

    async def save_cases(self, many: Sequence[CaseFacts]) -> None:
        """Replace many cases' facts at once (a bulk load)."""
        docs = [_case_document(facts) for facts in many]
        if docs:
            await self._cases.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
            await self._cases.insert_many(docs)

    async def case(self, tenant: str, case_id: str) -> CaseFacts | None:
        doc = await self._cases.find_one({"_id": _key(tenant, case_id)})
        return None if doc is None else CaseFacts.from_document(doc)

    async def all_cases(self, tenant: str) -> list[CaseFacts]:
        """Every case of the tenant (loading the in-memory index)."""
        return [CaseFacts.from_document(doc) async for doc in self._cases.find({"tenant": tenant})]

    async def merge(self, tenant: str, merged: Iterable[str], survivor: str) -> None:
        """From now on `merged` customers are counted as `survivor` (and so is whoever had
        been merged into them)."""
        merged = [m for m in merged if m and m != survivor]
        if not merged:
            return
        await self._aliases.update_many(
            {"tenant": tenant, "survivor": {"$in": merged}}, {"$set": {"survivor": survivor}}
        )
        for customer in merged:
            await self._aliases.replace_one(
                {"_id": _key(tenant, customer)},
                {"_id": _key(tenant, customer), "tenant": tenant, "survivor": survivor},
                upsert=True,
            )

    async def split(self, tenant: str, restored: str) -> None:
        """A split gave `restored` its records back: it counts as itself again."""
        await self._aliases.delete_one({"_id": _key(tenant, restored)})

    async def aliases(self, tenant: str) -> dict[str, str]:
        """Merged customer id → surviving customer id, for the tenant."""
        prefix = len(tenant) + 1
        return {
            doc["_id"][prefix:]: doc["survivor"]
            async for doc in self._aliases.find({"tenant": tenant})
        }

    async def save_messages(self, messages: Sequence[StoredMessage]) -> None:
        """Keep many messages in one write; those kept before stay as they are."""
        await insert_many_new(
            self._messages, [{"_id": _key(m.tenant, m.event_id), **asdict(m)} for m in messages]
        )

    async def messages(self, tenant: str) -> list[StoredMessage]:
        """Every kept message of the tenant, oldest first."""
        cursor = self._messages.find({"tenant": tenant}, {"_id": 0})
        found = [StoredMessage.from_document(doc) async for doc in cursor]
        return sorted(found, key=lambda m: (m.at, m.event_id))

    async def set_message_topics(self, tenant: str, topics: dict[str, list[str]]) -> None:
        """Topic id → the messages now on it ("" for none)."""
        for topic, event_ids in topics.items():
            keys = [_key(tenant, e) for e in event_ids]
            await self._messages.update_many({"_id": {"$in": keys}}, {"$set": {"topic": topic}})

    async def topic_model(self, tenant: str) -> bytes | None:
        doc = await self._topic_models.find_one({"_id": tenant})
        return None if doc is None else bytes(doc["model"])

    async def save_topic_model(self, tenant: str, model: bytes) -> None:
        await self._topic_models.update_one(
            {"_id": tenant}, {"$set": {"model": model}}, upsert=True
        )

    async def case_messages(self, tenant: str, case_ids: Iterable[str]) -> dict[str, list[str]]:
        """The customers' messages of each case, oldest first (case id → event ids)."""
        wanted = list(case_ids)
        cursor = self._messages.find(
            {"case_id": {"$in": wanted}, "tenant": tenant}, {"event_id": 1, "case_id": 1, "at": 1}
        )
        parts: dict[str, list[tuple[float, str]]] = {}
        async for doc in cursor:
            parts.setdefault(doc["case_id"], []).append((doc["at"], doc["event_id"]))
        return {case: [e for _at, e in sorted(p)] for case, p in parts.items()}

    async def save_resolution(self, tenant: str, case_id: str, event_id: str, at: float) -> None:
        """The case's latest resolution: the event whose note says what solved it (the note
        itself is read back from the timeline)."""
        await self._resolutions.update_one(
            {"_id": _key(tenant, case_id)},
            {"$set": {"tenant": tenant, "case_id": case_id, "event_id": event_id, "at": at}},
            upsert=True,
        )

    async def resolutions(self, tenant: str) -> dict[str, str]:
        """Case id → the event id of its resolution, for the tenant's resolved cases."""
        cursor = self._resolutions.find({"tenant": tenant}, {"case_id": 1, "event_id": 1})
        return {doc["case_id"]: doc["event_id"] async for doc in cursor if doc.get("event_id")}

    async def save_article(self, tenant: str, article: Article) -> None:
        """Keep a knowledge article: content a supervisor curated and published, stored as is
        (the one text insights keeps; docs/insights.md, "What is kept")."""
        await self._articles.update_one(
            {"_id": _key(tenant, article.id)},
            {
                "$set": {
                    "tenant": tenant,
                    "id": article.id,
                    "title": article.title,
                    "body": article.body,
                }
            },
            upsert=True,
        )

    async def articles(self, tenant: str) -> list[Article]:
        cursor = self._articles.find({"tenant": tenant})
        return [Article(doc["id"], doc["title"], doc["body"]) async for doc in cursor]

    async def clear(self) -> None:
        """Forget everything but topic models (a rebuild from the log starts here): names and
        merges supervisors gave topics survive, and messages are heard again."""
        for collection in (self._events, self._cases, self._aliases, self._messages):
            await collection.delete_many({})


def open_store(settings: InsightsSettings) -> tuple[AsyncMongoClient[Document], InsightsStore]:
    """The MongoDB client (the caller closes it) and the insights store over its own database."""
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_uri, tz_aware=True, serverSelectionTimeoutMS=10_000
    )
    db = mongo.get_database(settings.mongodb_database, write_concern=WriteConcern(w="majority"))
    return mongo, InsightsStore(db)
