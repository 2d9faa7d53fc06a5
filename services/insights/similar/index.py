"""Texts ranked by TF-IDF cosine to a query, over the same features as topics."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from services.insights.text import features

# Answers hold at most this many hits: a screen's worth, and a bound on hostile `k`.
MAX_RESULTS = 50
# Below this cosine a "similar" case shares little more than a common word.
MIN_SCORE = 0.05


def _identity(document: Sequence[str]) -> Sequence[str]:
    return document


class TextIndex:
    """Documents by id, searchable by text. Immutable once built; build a new one to add."""

    def __init__(self, documents: Sequence[tuple[str, str]]) -> None:
        """Index `documents`, each (id, text); a repeated id keeps its first text, and a text
        with no terms (a greeting, a phone number) cannot be found."""
        seen: dict[str, list[str]] = {}
        for doc_id, text in documents:
            if doc_id not in seen and (found := features(text)):
                seen[doc_id] = found
        self._ids = list(seen)
        self._vectoriser = TfidfVectorizer(analyzer=_identity, sublinear_tf=True)
        self._rows = self._vectoriser.fit_transform(list(seen.values())) if seen else None

    def __len__(self) -> int:
        return len(self._ids)

    def query(self, text: str, k: int, *, exclude: Collection[str] = ()) -> list[tuple[str, float]]:
        """The `k` documents closest to `text`, best first, as (id, cosine in (0, 1]).

        Raises:
            ValueError: `k` is not between 1 and `MAX_RESULTS`.
        """
        if not 1 <= k <= MAX_RESULTS:
            raise ValueError(f"k must be between 1 and {MAX_RESULTS}")
        found = features(text)
        if self._rows is None or not found:
            return []
        scores = np.asarray((self._rows @ self._vectoriser.transform([found]).T).todense()).ravel()
        order = np.argsort(-scores, kind="stable")
        hits: list[tuple[str, float]] = []
        for i in order:
            if scores[i] < MIN_SCORE or len(hits) == k:
                break
            if self._ids[i] not in exclude:
                hits.append((self._ids[i], round(float(scores[i]), 6)))
        return hits
