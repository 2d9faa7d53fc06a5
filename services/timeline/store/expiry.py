"""Deleting what has outlived its retention: by a sweep the timeline runs, not a TTL index.

A TTL index makes MongoDB's TTL monitor delete expired documents once a minute. The embedded
store honours one differently: before *every* read of the collection it deletes what has
expired, with two scans of the whole collection, so every read costs time that grows with
the collection (measured: a `find_one` by `_id` on 10,000 documents took 15.8 ms with the
index and 0.57 ms without; docs/scaling.md). So the collections keep a plain index on their
expiry field and the timeline deletes by it on a period, as the TTL monitor would: one
`delete_many` of a range of that index, which both stores answer from the index.
"""

from __future__ import annotations

import logging

from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from services.timeline.store.documents import Document

log = logging.getLogger(__name__)


async def create_without_ttl(collection: AsyncCollection[Document], index: IndexModel) -> None:
    """Create `index`, first dropping a TTL index on the same keys that an earlier version
    made (same keys, other options: both stores would refuse the new one, or keep the TTL).
    """
    keys = list(index.document["key"].items())
    for name, info in (await collection.index_information()).items():
        if "expireAfterSeconds" in info and list(info["key"]) == keys:
            log.warning("dropping TTL index %s on %s: retention is swept", name, collection.name)
            await collection.drop_index(name)
    await collection.create_indexes([index])
