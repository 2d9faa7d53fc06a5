"""Knowledge articles (promoted resolutions) searchable by a free-text query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.insights.similar.index import TextIndex


@dataclass(frozen=True, slots=True)
class Article:
    """A knowledge article.

    Attributes:
        id: Unique per tenant.
        title: A short name of the problem.
        body: How it is solved.
    """

    id: str
    title: str
    body: str


class KnowledgeBase:
    """A tenant's articles; `search` ranks them against a query."""

    def __init__(self, articles: Sequence[Article]) -> None:
        """Index `articles` (a repeated id keeps its first article)."""
        # The title twice: it names the problem, the body mostly the steps.
        self._index = TextIndex([(a.id, f"{a.title}\n{a.title}\n{a.body}") for a in articles])

    def __len__(self) -> int:
        return len(self._index)

    def search(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        """The articles matching `query`, best first, as (article id, cosine score).

        Raises:
            ValueError: `k` is not between 1 and 50.
        """
        return self._index.query(query, k)
