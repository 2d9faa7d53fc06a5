"""Whole documents read by id and replaced only at the version they were read (customers, cases).

A whole-document replace (never `$set`/`$max`) keeps dates real dates on every store.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymongo.asynchronous.collection import AsyncCollection

from services.timeline.store.by_id import find_by_ids
from services.timeline.store.documents import Document


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
