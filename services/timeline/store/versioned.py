"""Whole documents read by id and replaced only at the version they were read (customers, cases).

A whole-document replace (never `$set`/`$max`) keeps dates real dates on every store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from services.timeline.store.by_id import find_by_ids
from services.timeline.store.documents import Document
from services.timeline.store.writes import DUPLICATE_KEY


async def by_ids(
    collection: AsyncCollection[Document], tenant: str, ids: Iterable[str]
) -> dict[str, Document]:
    """The tenant's documents among `ids`, by id (missing ids are left out)."""
    return {doc["_id"]: doc for doc in await find_by_ids(collection, tenant, ids)}


async def replace_at_version(
    collection: AsyncCollection[Document], doc: Document, *, expected_version: int
) -> bool:
    """Optimistic write: succeeds only if nobody changed the document since it was read."""
    result = await collection.replace_one(
        {"_id": doc["_id"], "tenant": doc["tenant"], "version": expected_version},
        {**doc, "version": expected_version + 1},
    )
    return result.matched_count == 1


def _version_checked(doc: Document, expected_version: int | None) -> ReplaceOne[Document]:
    """A replace that applies only at `expected_version` (None: only if there is no document).

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
) -> set[str]:
    """Optimistic writes of many documents in one round trip; returns the ids that lost.

    Each write is a whole document at the version it was read (`None`: a new document,
    written only if none has its id). A lost race leaves the stored document as it was.

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
