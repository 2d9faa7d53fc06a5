"""Inserts that treat "already there" as an answer, not an error (replays write ids again)."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.timeline.store.documents import Document

DUPLICATE_KEY = 11000


async def insert_new(collection: AsyncCollection[Document], doc: Document) -> bool:
    """Insert one document; False when one with the same unique key is stored already."""
    try:
        await collection.insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


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
