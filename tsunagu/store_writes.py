"""Writes the timeline's slices and the insights service share, each on its own database:
inserts that take "already there" as an answer (replays write the same ids again), and
whole-document replaces applied only at the version read (optimistic concurrency).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

Document = dict[str, Any]

DUPLICATE_KEY = 11000


async def insert_many_new(
    collection: AsyncCollection[Document], docs: Sequence[Document]
) -> set[int]:
    """Insert documents unordered; returns the positions refused as duplicates.

    Raises:
        BulkWriteError: A write failed for another reason than a duplicate key.
    """
    if not docs:
        return set()
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return {e["index"] for e in errors}
    return set()


def _version_checked(doc: Document, expected_version: int | None) -> ReplaceOne[Document]:
    """A replace that applies only at `expected_version` (None: only if there is no versioned
    document; `doc` then carries its own first version).

    An upsert, so that a lost race is reported per write: when the filter matches nothing
    the upsert inserts the document with its `_id`, which is taken, and fails with a
    duplicate key. A plain replace that matches nothing reports nothing of which one it was.
    """
    if expected_version is None:
        return ReplaceOne({"_id": doc["_id"], "version": {"$exists": False}}, doc, upsert=True)
    return ReplaceOne(
        {"_id": doc["_id"], "tenant": doc["tenant"], "version": expected_version},
        {**doc, "version": expected_version + 1},
        upsert=True,
    )


async def write_many_at_version(
    collection: AsyncCollection[Document], writes: Sequence[tuple[Document, int | None]]
) -> set[Any]:
    """Optimistic writes of many documents in one round trip; returns the `_id`s that lost.

    Each write is a whole document at the version it was read (`None`: a new document,
    written only if none with a version has its id). A lost race leaves the stored document
    as it was.

    Raises:
        BulkWriteError: A write failed for another reason than a lost race.
    """
    if not writes:
        return set()
    try:
        await collection.bulk_write(
            [_version_checked(doc, version) for doc, version in writes], ordered=False
        )
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return {writes[e["index"]][0]["_id"] for e in errors}
    return set()
