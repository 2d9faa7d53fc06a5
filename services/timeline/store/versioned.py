"""Whole documents read by id and replaced only at the version they were read (customers, cases).

A whole-document replace (never `$set`/`$max`) keeps dates real dates on every store.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymongo.asynchronous.collection import AsyncCollection

from services.timeline.store.documents import Document


async def by_ids(
    collection: AsyncCollection[Document], tenant: str, ids: Iterable[str]
) -> dict[str, Document]:
    """The tenant's documents among `ids`, by id (missing ids are left out)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    cursor = collection.find({"_id": {"$in": wanted}, "tenant": tenant})
    return {doc["_id"]: doc async for doc in cursor}


async def replace_at_version(
    collection: AsyncCollection[Document], doc: Document, *, expected_version: int
) -> bool:
    """Optimistic write: succeeds only if nobody changed the document since it was read."""
    result = await collection.replace_one(
        {"_id": doc["_id"], "tenant": doc["tenant"], "version": expected_version},
        {**doc, "version": expected_version + 1},
    )
    return result.matched_count == 1
