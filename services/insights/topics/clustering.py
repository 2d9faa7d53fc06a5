"""Messages' terms grouped into clusters; how many follows from a distance threshold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

# Latent dimensions (LSA). Few on purpose: they fold a topic's synonyms together, so that two
# messages sharing no word but the subject still meet; with 100 the clusters split by wording.
_DIMENSIONS = 30
# Average-linkage merging stops when clusters are further apart than this cosine distance.
# Measured on the data set (bench/voc.py): V-measure stays within 0.02 from 0.8 to 0.9.
DISTANCE_THRESHOLD = 0.85
# Above this many messages, k-means first condenses them into this many groups (at most one
# per four messages) and the threshold merges those: average linkage needs all pairwise
# distances, which 10,000 messages make too many.
_CONDENSED = 400
# A term in more than this share of messages says nothing about any topic.
_MAX_DOCUMENT_SHARE = 0.5
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


def _merge(points: Any) -> Any:
    return AgglomerativeClustering(
        n_clusters=None, distance_threshold=DISTANCE_THRESHOLD, metric="cosine", linkage="average"
    ).fit_predict(points)


def _with_empty_apart(points: Any) -> Any:
    """Unit rows, with one more dimension that only rows left empty use.

    A message whose every term is in most messages has an empty row; cosine distance is not
    defined for it. On the extra axis such messages sit together, apart from all others.
    """
    empty = ~np.any(points, axis=1)
    return normalize(np.hstack([points, empty[:, None].astype(points.dtype)]))


def cluster(documents: Sequence[Sequence[str]]) -> Clusters:
    """Documents (each a list of terms, none empty) grouped by their TF-IDF content.

    TF-IDF with sublinear term frequency → LSA (truncated SVD) → unit vectors → average-linkage
    agglomerative clustering cut at a cosine distance, so the number of topics is whatever
    the messages hold, from 20 messages to 10,000.
    """
    n = len(documents)
    vectoriser = TfidfVectorizer(
        analyzer=_identity, sublinear_tf=True, max_df=_MAX_DOCUMENT_SHARE if n > 20 else 1.0
    )
    try:
        rows = vectoriser.fit_transform(documents)
        alike = False
    except ValueError:
        # Every term is in more than half the messages ("no terms remain" after pruning):
        # they all say the same thing, which is one subject, not an error. Keep every term.
        vectoriser = TfidfVectorizer(analyzer=_identity, sublinear_tf=True)
        rows = vectoriser.fit_transform(documents)
        alike = True
    vocabulary = list(vectoriser.get_feature_names_out())
    idf = dict(zip(vocabulary, (float(w) for w in vectoriser.idf_), strict=True))
    if alike or n < 3 or rows.shape[1] < 2:
        return Clusters([0] * n, idf, rows, vocabulary)
    dimensions = min(_DIMENSIONS, rows.shape[1] - 1, n - 1)
    points = _with_empty_apart(TruncatedSVD(dimensions, random_state=_SEED).fit_transform(rows))
    if n <= _CONDENSED * 4:
        labels = _merge(points)
    else:
        # Repeated messages are repeated points: never ask for more groups than distinct ones.
        groups = min(_CONDENSED, len(np.unique(points.round(6), axis=0)))
        condensed = KMeans(groups, n_init=1, random_state=_SEED).fit(points)
        labels = _merge(normalize(condensed.cluster_centers_))[condensed.labels_]
    return Clusters([int(x) for x in np.asarray(labels)], idf, rows, vocabulary)
