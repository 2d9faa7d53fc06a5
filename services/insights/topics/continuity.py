"""New clusters matched to the previous build's topics, so ids, names and merges survive."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.insights.topics import vectors
from services.insights.topics.model import Topic

# A cluster inherits a previous topic when at least this share of its already-known messages
# came from that topic.
_MAJORITY = 0.5


@dataclass(frozen=True, slots=True)
class Draft:
    """A cluster before it has an id: members and centre."""

    member_ids: frozenset[str]
    centroid: vectors.Vector


def fresh_id(member_ids: frozenset[str]) -> str:
    """A new topic's id, derived from its members: the same clusters get the same ids."""
    digest = hashlib.sha256("\n".join(sorted(member_ids)).encode()).hexdigest()
    return f"topic-{digest[:12]}"


def _owner(draft: Draft, previous: Sequence[Topic]) -> Topic | None:
    shared = [(len(draft.member_ids.intersection(p.member_ids)), p) for p in previous]
    known = sum(n for n, _ in shared)
    if not known:
        return None
    count, topic = max(shared, key=lambda item: (item[0], item[1].size, item[1].id))
    return topic if count >= _MAJORITY * known else None


def carry_over(
    drafts: Sequence[Draft],
    previous: Sequence[Topic],
    *,
    finish: Callable[[str, Draft, Topic | None, tuple[str, ...]], Topic],
) -> list[Topic]:
    """Topics for `drafts`, each with a previous topic's id where it continues one.

    A draft continues the previous topic most of its known messages came from. When several
    drafts continue one topic, the one sharing most keeps its id, the others get new ids —
    unless a supervisor had merged topics into it, then they are folded into it again so the
    merge survives. A previous topic that no draft continues, but whose messages went mostly
    into one topic, becomes an alias of that topic (its id still resolves).

    Args:
        drafts: The new clusters.
        previous: The topics of the model being replaced.
        finish: Builds the topic from (id, draft, the topic it continues, merged ids).
    """
    by_owner: dict[str, list[Draft]] = {}
    owners: dict[str, Topic] = {}
    orphans: list[Draft] = []
    for draft in drafts:
        owner = _owner(draft, previous)
        if owner is None:
            orphans.append(draft)
            continue
        by_owner.setdefault(owner.id, []).append(draft)
        owners[owner.id] = owner
    topics: list[Topic] = []
    for owner_id, continuing in by_owner.items():
        owner = owners[owner_id]
        group = sorted(continuing, key=lambda d: -len(d.member_ids & set(owner.member_ids)))
        if owner.merged_ids and len(group) > 1:
            members = frozenset().union(*(d.member_ids for d in group))
            centroid = vectors.mean((d.centroid, len(d.member_ids)) for d in group)
            group = [Draft(members, centroid)]
        topics.append(finish(owner.id, group[0], owner, owner.merged_ids))
        orphans.extend(group[1:])
    topics.extend(finish(fresh_id(d.member_ids), d, None, ()) for d in orphans)
    return _aliases(topics, [p for p in previous if p.id not in owners])


def _aliases(topics: list[Topic], vanished: Sequence[Topic]) -> list[Topic]:
    extra: dict[str, list[str]] = {}
    for old in vanished:
        shared = [(len(set(t.member_ids).intersection(old.member_ids)), t.id) for t in topics]
        count, topic_id = max(shared, default=(0, ""))
        if count and count >= _MAJORITY * len(old.member_ids):
            extra.setdefault(topic_id, []).extend([old.id, *old.merged_ids])
    return [
        dataclasses.replace(t, merged_ids=(*t.merged_ids, *extra[t.id])) if t.id in extra else t
        for t in topics
    ]
