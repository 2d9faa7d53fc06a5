"""Writes every slice's store shares: inserts that take "already there" as an answer (replays
write the same ids again), and moving records from one customer to another (merges).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pymongo import UpdateMany
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.timeline.store.documents import Document

# Ids per update of a move by `_id`: the embedded store binds each as an SQL parameter, and
# SQLite refuses statements of more than 32,766.
MOVE_CHUNK = 1_000


async def insert_new(collection: AsyncCollection[Document], doc: Document) -> bool:
    """Insert one document; False when one with the same unique key is stored already."""
    try:
        await collection.insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def repoint(
    collection: AsyncCollection[Document], tenant: str, from_ids: Sequence[str], to_id: str
) -> int:
    """Give the records of customers `from_ids` to customer `to_id`; returns how many moved.

    `origin_customer_id` is left alone: a split moves records back by it.
    """
    if not from_ids:
        return 0
    result = await collection.update_many(
        {"tenant": tenant, "customer_id": {"$in": list(from_ids)}},
        {"$set": {"customer_id": to_id}},
    )
    return result.modified_count


async def move_by_id(
    collection: AsyncCollection[Document], tenant: str, ids: Sequence[object], to_id: str
) -> None:
    """Give the records with these `_id`s to customer `to_id` (a split hands records back)."""
    await collection.update_many(
        {"_id": {"$in": list(ids)}, "tenant": tenant}, {"$set": {"customer_id": to_id}}
    )


async def move_many_by_id(
    collection: AsyncCollection[Document], tenant: str, moves: Mapping[str, Sequence[object]]
) -> None:
    """`move_by_id` to many customers in one round trip: customer id → the `_id`s it gets.

    Merges move records by `_id` (read after the losers were marked) rather than by
    `customer_id`: on the embedded store an update filtered on anything but `_id` scans the
    whole collection, once per target; by `_id` it is a primary-key lookup. On MongoDB both
    are index lookups; this costs it the one read, which the merge makes anyway.
    """
    updates = [
        UpdateMany(
            {"_id": {"$in": list(ids[start : start + MOVE_CHUNK])}, "tenant": tenant},
            {"$set": {"customer_id": to_id}},
        )
        for to_id, ids in moves.items()
        for start in range(0, len(ids), MOVE_CHUNK)
    ]
    if updates:
        await collection.bulk_write(updates, ordered=False)
