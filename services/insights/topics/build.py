"""`build_topics`: a topic model from a batch of messages, continuing the previous one."""

from __future__ import annotations

from collections.abc import Sequence

from services.insights.text import features
from services.insights.topics import vectors
from services.insights.topics.clustering import Clusters, cluster
from services.insights.topics.continuity import Draft, carry_over
from services.insights.topics.model import (
    CENTROID_TERMS,
    EXAMPLES,
    Message,
    Topic,
    TopicModel,
    label_of,
    words_of,
)


def _row(clusters: Clusters, index: int) -> vectors.Vector:
    row = clusters.rows.getrow(index)
    return {clusters.vocabulary[c]: float(w) for c, w in zip(row.indices, row.data, strict=True)}


def _drafts(
    ids: Sequence[str], clusters: Clusters
) -> tuple[list[Draft], dict[str, vectors.Vector]]:
    rows = {message_id: _row(clusters, i) for i, message_id in enumerate(ids)}
    groups: dict[int, list[str]] = {}
    for message_id, label in zip(ids, clusters.labels, strict=True):
        groups.setdefault(label, []).append(message_id)
    drafts = [
        Draft(frozenset(members), vectors.mean((rows[m], 1.0) for m in members))
        for members in groups.values()
    ]
    return drafts, rows


def build_topics(messages: Sequence[Message], *, previous: Sequence[Topic] = ()) -> TopicModel:
    """Group `messages` into topics; a rebuild keeps the ids, names and merges of `previous`.

    Messages are cleaned (personal data and digits masked, greetings and signatures dropped)
    and reduced to content words; a message with none left (only a greeting, only a phone
    number) joins no topic. The number of topics is chosen automatically.

    Args:
        messages: Inbound customer messages; a repeated id counts once (its first text).
        previous: The topics of the model this one replaces (`TopicModel.topics`).

    Returns:
        The model: topics largest first; empty with fewer than two usable messages.
    """
    seen: dict[str, list[str]] = {}
    for message in messages:
        if message.id not in seen and (found := features(message.text)):
            seen[message.id] = found
    if len(seen) < 2:
        return TopicModel()
    ids = list(seen)
    clusters = cluster(list(seen.values()))
    drafts, rows = _drafts(ids, clusters)

    def finish(
        topic_id: str, draft: Draft, continued: Topic | None, merged: tuple[str, ...]
    ) -> Topic:
        top_terms = words_of(draft.centroid)
        closest = sorted(
            draft.member_ids, key=lambda m: (-vectors.cosine(rows[m], draft.centroid), m)
        )
        named = continued is not None and continued.named
        return Topic(
            id=topic_id,
            label=continued.label if continued is not None and named else label_of(top_terms),
            terms=top_terms,
            size=len(draft.member_ids),
            example_ids=tuple(closest[:EXAMPLES]),
            member_ids=tuple(sorted(draft.member_ids)),
            named=named,
            merged_ids=merged,
        )

    topics = carry_over(drafts, previous, finish=finish)
    topics.sort(key=lambda t: (-t.size, t.id))
    centroid_of = {}
    for topic in topics:
        members = [rows[m] for m in topic.member_ids]
        centroid_of[topic.id] = vectors.top(vectors.mean((r, 1.0) for r in members), CENTROID_TERMS)
    return TopicModel(topics=tuple(topics), idf=clusters.idf, centroids=centroid_of)
