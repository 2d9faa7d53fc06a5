"""Messages' terms grouped into clusters, the number of clusters chosen by silhouette."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import normalize

# Latent dimensions for clustering (LSA): enough to keep ten-odd topics apart, few enough that
# k-means stays quick on 10,000 messages.
_DIMENSIONS = 100
# The silhouette is computed on at most this many messages: the choice of k, not its exact
# value, is what matters, and the full pairwise distances grow with the square.
_SILHOUETTE_SAMPLE = 2000
# Fixed seeds: a rebuild over the same messages gives the same topics.
_SEED = 0


@dataclass(frozen=True, slots=True)
class Clusters:
    """The outcome of clustering.

    Attributes:
        labels: Cluster index per input document.
        idf: Term → inverse document frequency, as the vectoriser learnt it.
        rows: Each document's unit TF-IDF vector (sparse, rows in input order).
        vocabulary: Column index → term of `rows`.
    """

    labels: list[int]
    idf: dict[str, float]
    rows: Any  # scipy.sparse.csr_matrix
    vocabulary: list[str]


def _identity(document: Sequence[str]) -> Sequence[str]:
    return document


def candidate_counts(n: int) -> range:
    """The numbers of topics tried for `n` messages: 2 up to one per three messages, at most 20.

    Twenty is about what a supervisor reads in one list; above it the silhouette of short
    texts climbs again as clusters shrink towards near-duplicates (measured on the data set:
    up to 20 it picks 9 topics for 10 labelled ones, up to 30 it picks 29).
    """
    return range(2, max(2, min(20, n // 3, n - 1)) + 1)


def cluster(documents: Sequence[Sequence[str]]) -> Clusters:
    """Documents (each a list of terms, none empty) grouped by their TF-IDF content.

    TF-IDF with sublinear term frequency → LSA (truncated SVD) → unit vectors → k-means for
    every candidate k; the k with the best cosine silhouette wins.
    """
    vectoriser = TfidfVectorizer(
        analyzer=_identity, sublinear_tf=True, min_df=1, max_df=0.5 if len(documents) > 20 else 1.0
    )
    rows = vectoriser.fit_transform(documents)
    vocabulary = list(vectoriser.get_feature_names_out())
    idf = dict(zip(vocabulary, (float(w) for w in vectoriser.idf_), strict=True))
    n = len(documents)
    if n < 4 or rows.shape[1] < 2:
        return Clusters([0] * n, idf, rows, vocabulary)
    dimensions = min(_DIMENSIONS, rows.shape[1] - 1, n - 1)
    points = normalize(TruncatedSVD(dimensions, random_state=_SEED).fit_transform(rows))
    best: tuple[float, list[int]] = (-math.inf, [0] * n)
    for k in candidate_counts(n):
        labels = KMeans(k, n_init=3, random_state=_SEED).fit_predict(points)
        if len(set(labels.tolist())) < 2:
            continue
        score = float(
            silhouette_score(
                points,
                labels,
                metric="cosine",
                sample_size=min(n, _SILHOUETTE_SAMPLE),
                random_state=_SEED,
            )
        )
        if score > best[0]:
            best = (score, [int(x) for x in np.asarray(labels)])
    return Clusters(best[1], idf, rows, vocabulary)
