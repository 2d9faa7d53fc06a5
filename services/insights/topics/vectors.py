"""Sparse TF-IDF vectors as term → weight maps: what a persisted model assigns with."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

Vector = dict[str, float]


def normalised(weights: Mapping[str, float]) -> Vector:
    """`weights` scaled to unit length; empty when they are all zero."""
    norm = math.sqrt(sum(w * w for w in weights.values()))
    return {t: w / norm for t, w in weights.items()} if norm else {}


def tfidf(terms: Iterable[str], idf: Mapping[str, float]) -> Vector:
    """A message's unit TF-IDF vector over the model's vocabulary (sublinear term frequency).

    Terms the model never saw carry no weight: a new message is placed by what it shares.
    """
    counts = Counter(t for t in terms if t in idf)
    return normalised({t: (1 + math.log(n)) * idf[t] for t, n in counts.items()})


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """The dot product of two unit vectors."""
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


def mean(vectors: Iterable[tuple[Mapping[str, float], float]]) -> Vector:
    """The weighted mean of vectors, given as (vector, weight) pairs, made unit length."""
    total: dict[str, float] = {}
    for vector, weight in vectors:
        for t, w in vector.items():
            total[t] = total.get(t, 0.0) + w * weight
    return normalised(total)


def top(vector: Mapping[str, float], n: int) -> Vector:
    """The `n` heaviest terms of `vector`, heaviest first (ties by term, for stable output)."""
    return dict(sorted(vector.items(), key=lambda item: (-item[1], item[0]))[:n])
