"""What solved it last time: resolved cases like an open one, and the knowledge articles.

Resolution notes are the agents' resolution summaries (`resolveCase(summary)`); a case's text
is its customers' messages. The store keeps only which event resolved each case and which
messages each case holds: the words are read back from the timeline (`services/insights/
words.py`), so an erased person's case loses its words. The indexes (`services/insights/
similar`) are rebuilt in memory when something changed since the last question.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from services.insights.similar import Article, CaseIndex, KnowledgeBase, ResolvedCase
from services.insights.store import InsightsStore
from services.insights.words import Words


class NotResolved(LookupError):
    """A promotion named a case without a resolution note."""


@dataclass(frozen=True, slots=True)
class Similar:
    case_id: str
    score: float
    resolution_note: str


class Solutions:
    """Per tenant: resolution notes, the similar-case index and the knowledge base."""

    def __init__(self, store: InsightsStore, words: Words) -> None:
        self._store = store
        self._words = words
        # Tenant → (what it was built from: the words' generation and the resolutions seen, the
        # index). Taken before building: a resolution recorded while an index was being built
        # (it awaits the store and the timeline) makes that index out of date at once.
        self._cases: dict[str, tuple[tuple[int, int], CaseIndex]] = {}
        self._resolved: dict[str, int] = {}
        self._articles: dict[str, KnowledgeBase] = {}

    async def resolved(
        self, tenant: str, case_id: str, event_id: str, note: str, at: float
    ) -> None:
        """A case was resolved by `event_id` with this note (remembered in memory only); the
        next question re-indexes the tenant."""
        self._words.remember(tenant, event_id, note)
        await self._store.save_resolution(tenant, case_id, event_id, at)
        self._resolved[tenant] = self._resolved.get(tenant, 0) + 1

    async def _case_texts(self, tenant: str, case_ids: list[str]) -> dict[str, str]:
        """The customers' messages of each case, oldest first, joined (case id → text)."""
        messages = await self._store.case_messages(tenant, case_ids)
        words = await self._words.texts(tenant, [e for ids in messages.values() for e in ids])
        joined = {
            case: "\n".join(words[e] for e in ids if e in words) for case, ids in messages.items()
        }
        return {case: text for case, text in joined.items() if text}

    async def _notes(self, tenant: str) -> dict[str, str]:
        """Case id → its resolution note, for resolved cases whose note can still be read."""
        resolutions = await self._store.resolutions(tenant)
        words = await self._words.texts(tenant, resolutions.values())
        return {case: words[e] for case, e in resolutions.items() if e in words}

    async def _case_index(self, tenant: str) -> CaseIndex:
        generation = (self._words.generation(tenant), self._resolved.get(tenant, 0))
        held = self._cases.get(tenant)
        if held is not None and held[0] == generation:
            return held[1]
        notes = await self._notes(tenant)
        texts = await self._case_texts(tenant, list(notes))
        index = CaseIndex(
            [ResolvedCase(c, texts.get(c, ""), note) for c, note in sorted(notes.items())]
        )
        self._cases[tenant] = (generation, index)
        return index

    async def similar(self, tenant: str, case_id: str, k: int) -> list[Similar]:
        """The resolved cases most like `case_id`'s messages, best first, with their notes."""
        text = (await self._case_texts(tenant, [case_id])).get(case_id, "")
        if not text:
            return []
        index = await self._case_index(tenant)
        return [
            Similar(found, score, index.resolution_note(found) or "")
            for found, score in index.nearest(text, k, exclude={case_id})
        ]

    async def promote(self, tenant: str, case_id: str, *, title: str, body: str) -> Article:
        """Make a case's resolution a knowledge article (its note unless `body` is given).

        Raises:
            NotResolved: The case has no resolution note.
        """
        event_id = (await self._store.resolutions(tenant)).get(case_id)
        found = {} if event_id is None else await self._words.texts(tenant, [event_id])
        note = None if event_id is None else found.get(event_id)
        if note is None:
            raise NotResolved(case_id)
        digest = hashlib.sha256(f"{tenant}/{case_id}".encode()).hexdigest()[:12]
        article = Article(f"kb-{digest}", title.strip(), body.strip() or note)
        await self._store.save_article(tenant, article)
        self._articles.pop(tenant, None)
        return article

    async def search(self, tenant: str, query: str, k: int) -> list[tuple[Article, float]]:
        """Articles matching `query`, best first."""
        base = self._articles.get(tenant)
        articles = {a.id: a for a in await self._store.articles(tenant)}
        if base is None:
            base = KnowledgeBase(list(articles.values()))
            self._articles[tenant] = base
        return [(articles[a], score) for a, score in base.search(query, k) if a in articles]
