"""Topics and the model that holds them: assignment, renames, merges."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.insights.text import CONCEPT_PREFIX, features
from services.insights.topics import vectors

# A label shows this many of a topic's heaviest terms.
LABEL_TERMS = 3
# A new message joins a topic only when it is at least this close to its centroid (cosine
# over TF-IDF); below, it is left without a topic until the next rebuild. Measured on the
# data set (bench/voc.py: assignment rate and agreement with the rebuild's own clusters).
ASSIGN_THRESHOLD = 0.12

# A topic lists this many terms, keeps this many in its centroid, shows this many examples.
TOPIC_TERMS = 10
CENTROID_TERMS = 300
EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class Message:
    """One inbound customer message.

    Attributes:
        id: Unique within the batch (the timeline's event id).
        text: As the customer wrote it.
        language: A BCP 47 tag when the channel knows it; terms do not depend on it.
    """

    id: str
    text: str
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Topic:
    """A group of messages about one thing.

    Attributes:
        id: Stable across rebuilds while the topic's messages stay together.
        label: The heaviest terms joined (", "), or the name a supervisor gave it.
        terms: The heaviest terms, heaviest first.
        size: How many messages the topic holds.
        example_ids: The messages closest to its centre, closest first.
        member_ids: Every message in it, sorted.
        named: Whether `label` is a supervisor's name (kept across rebuilds) or generated.
        merged_ids: Ids of topics merged into this one; they resolve to it.
    """

    id: str
    label: str
    terms: tuple[str, ...]
    size: int
    example_ids: tuple[str, ...]
    member_ids: tuple[str, ...]
    named: bool = False
    merged_ids: tuple[str, ...] = ()


def label_of(terms: Sequence[str]) -> str:
    """A generated label: the heaviest terms joined."""
    return ", ".join(terms[:LABEL_TERMS])


def words_of(centroid: Mapping[str, float]) -> tuple[str, ...]:
    """A topic's terms: the heaviest words of its centroid (glossary concepts left out, they
    are features, not what customers wrote)."""
    ranked = vectors.top(centroid, len(centroid))
    return tuple(t for t in ranked if not t.startswith(CONCEPT_PREFIX))[:TOPIC_TERMS]


@dataclass(frozen=True, slots=True)
class TopicModel:
    """Topics with what it takes to place new messages among them.

    Immutable: `rename` and `merge` return a new model. Persist with `to_bytes`.

    Attributes:
        topics: Largest first.
        idf: Inverse document frequency of every term the model knows.
        centroids: Topic id → its unit centroid over TF-IDF (heaviest terms only).
    """

    topics: tuple[Topic, ...] = ()
    idf: Mapping[str, float] = field(default_factory=dict)
    centroids: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def topic(self, topic_id: str) -> Topic | None:
        """The topic with this id, or the one it was merged into; `None` when unknown."""
        for topic in self.topics:
            if topic.id == topic_id or topic_id in topic.merged_ids:
                return topic
        return None

    def topic_of(self, message_id: str) -> str | None:
        """The topic a message of the build belongs to; `None` when it joined none."""
        for topic in self.topics:
            if message_id in topic.member_ids:
                return topic.id
        return None

    def scores(self, text: str) -> list[tuple[str, float]]:
        """Every topic's similarity to `text` (cosine to its centroid), best first."""
        vector = vectors.tfidf(features(text), self.idf)
        if not vector:
            return []
        scored = [(t, vectors.cosine(vector, c)) for t, c in self.centroids.items()]
        return sorted(scored, key=lambda item: (-item[1], item[0]))

    def assign(self, text: str) -> str | None:
        """The topic a new message belongs to, without a rebuild.

        Returns:
            The closest topic's id, or `None` when no topic is close enough (or the text has
            no known term: greetings, personal data, another subject).
        """
        scored = self.scores(text)
        if not scored or scored[0][1] < ASSIGN_THRESHOLD:
            return None
        return scored[0][0]

    def rename(self, topic_id: str, label: str) -> TopicModel:
        """The model with a supervisor's name on a topic; rebuilds keep it.

        Raises:
            KeyError: No topic has this id.
            ValueError: The name is blank.
        """
        label = " ".join(label.split())
        if not label:
            raise ValueError("a topic's name cannot be blank")
        old = self._existing(topic_id)
        renamed = dataclasses.replace(old, label=label, named=True)
        return dataclasses.replace(self, topics=_replaced(self.topics, {old.id: renamed}))

    def merge(self, into: str, other: str) -> TopicModel:
        """The model with topic `other` folded into topic `into`.

        The merged topic keeps `into`'s id and name; `other`'s id becomes an alias
        (`merged_ids`) that `topic` resolves. Members and sizes add up, the centroid is the
        size-weighted mean of both, terms and a generated label are recomputed from it, and
        examples are the closest members of either. A rebuild keeps the merge: new clusters
        that draw most of their messages from a merged topic are folded together again.

        Raises:
            KeyError: Either topic is unknown.
            ValueError: Both ids name the same topic.
        """
        a, b = self._existing(into), self._existing(other)
        if a.id == b.id:
            raise ValueError("a topic cannot be merged into itself")
        centroid = vectors.mean([(self.centroids[a.id], a.size), (self.centroids[b.id], b.size)])
        kept = vectors.top(centroid, CENTROID_TERMS)
        top_terms = words_of(kept)
        examples = _interleave(a.example_ids, b.example_ids)[:EXAMPLES]
        merged = Topic(
            id=a.id,
            label=a.label if a.named else label_of(top_terms),
            terms=top_terms,
            size=a.size + b.size,
            example_ids=examples,
            member_ids=tuple(sorted({*a.member_ids, *b.member_ids})),
            named=a.named,
            merged_ids=(*a.merged_ids, b.id, *b.merged_ids),
        )
        topics = tuple(t for t in _replaced(self.topics, {a.id: merged}) if t.id != b.id)
        centroids = {k: v for k, v in self.centroids.items() if k != b.id} | {a.id: kept}
        return TopicModel(topics=_by_size(topics), idf=self.idf, centroids=centroids)

    def to_bytes(self) -> bytes:
        """The model as compact JSON (UTF-8): safe to store and to load from anywhere."""
        from services.insights.topics.codec import encode

        return encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> TopicModel:
        """A model written by `to_bytes`.

        Raises:
            ValueError: `data` is not such a model (malformed, truncated, wrong version).
        """
        from services.insights.topics.codec import decode

        return decode(data)

    def _existing(self, topic_id: str) -> Topic:
        topic = self.topic(topic_id)
        if topic is None:
            raise KeyError(topic_id)
        return topic


def _replaced(topics: Sequence[Topic], by_id: Mapping[str, Topic]) -> tuple[Topic, ...]:
    return tuple(by_id.get(t.id, t) for t in topics)


def _by_size(topics: Sequence[Topic]) -> tuple[Topic, ...]:
    return tuple(sorted(topics, key=lambda t: (-t.size, t.id)))


def _interleave(a: Sequence[str], b: Sequence[str]) -> tuple[str, ...]:
    mixed = [x for pair in zip(a, b, strict=False) for x in pair]
    longer = a if len(a) > len(b) else b
    return tuple(mixed + list(longer[min(len(a), len(b)) :]))
