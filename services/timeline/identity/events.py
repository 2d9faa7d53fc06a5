"""Publishes merges and splits as `tsunagu.v1.IdentityChange` on JetStream for downstream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nats.js import JetStreamContext
from opentelemetry import propagate

from services.timeline.identity.documents import MergeEntry
from services.timeline.store.documents import to_timestamp
from tsunagu.bus import headers
from tsunagu.bus.subjects import IDENTITY_STREAM, identity_subject
from tsunagu.v1 import identity_pb2, interaction_pb2

_TYPES = {
    "merged": identity_pb2.IdentityChange.TYPE_MERGED,
    "split": identity_pb2.IdentityChange.TYPE_SPLIT,
}
_ACTOR_TYPES = {
    "system": interaction_pb2.ACTOR_TYPE_SYSTEM,
    "agent": interaction_pb2.ACTOR_TYPE_AGENT,
    "bot": interaction_pb2.ACTOR_TYPE_BOT,
}


def actor_to_proto(doc: Mapping[str, Any]) -> interaction_pb2.Actor:
    return interaction_pb2.Actor(
        type=_ACTOR_TYPES.get(doc.get("type", ""), interaction_pb2.ACTOR_TYPE_UNSPECIFIED),
        id=doc.get("id", ""),
        display_name=doc.get("display_name", ""),
    )


def identity_change(entry: MergeEntry, change: str) -> identity_pb2.IdentityChange:
    """The message for a ledger entry that was just merged or split."""
    survivor: str = entry["survivor_id"]
    merged: list[str] = list(entry["merged_ids"])
    mapping: dict[str, str]
    actor: Mapping[str, Any] = entry["actor"]
    at = entry["at"]
    if change == "merged":
        mapping = dict.fromkeys(merged, survivor)
    else:
        mapping = {m: m for m in merged}
        if split := entry.get("split"):
            actor, at = split["actor"], split["at"]
    return identity_pb2.IdentityChange(
        type=_TYPES[change],
        tenant=entry["tenant"],
        merge_id=entry["_id"],
        customer_map=mapping,
        survivor_id=survivor,
        customer_ids=merged,
        rule=entry["rule"],
        actor=actor_to_proto(actor),
        at=to_timestamp(at),
    )


class IdentityChangePublisher:
    """`identity.<merged|split>.<tenant>`, de-duplicated by `<merge id>:<change>`."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def __call__(self, entry: MergeEntry, change: str) -> None:
        carrier = {
            headers.MSG_ID: f"{entry['_id']}:{change}",
            headers.SCHEMA: headers.IDENTITY_CHANGE_SCHEMA,
        }
        propagate.inject(carrier)
        await self._js.publish(
            identity_subject(change, entry["tenant"]),
            identity_change(entry, change).SerializeToString(),
            stream=IDENTITY_STREAM,
            headers=carrier,
        )
