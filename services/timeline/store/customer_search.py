"""Customer search: name-key and identifier-value prefixes as index range scans."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import DESCENDING

from services.timeline.search_keys import PREFIX_TOP
from services.timeline.store.database import TimelineStore
from services.timeline.store.documents import Document


async def customers_by_name_prefix(
    store: TimelineStore, tenant: str, key: str, *, limit: int
) -> list[Document]:
    """Live customers whose `search_name` starts with `key`, most recently in contact first.

    A range `[key, key + PREFIX_TOP)` rather than a regex: both use the index on MongoDB,
    and the range is also what the embedded store answers correctly.
    """
    cursor = (
        store.customers.find(
            {
                "tenant": tenant,
                "search_name": {"$gte": key, "$lt": key + PREFIX_TOP},
                "merged_into": {"$exists": False},
            }
        )
        .sort([("last_contact_at", DESCENDING), ("_id", DESCENDING)])
        .limit(limit)
    )
    return [doc async for doc in cursor if not doc.get("merged_into")]


async def owners_by_identifier_prefix(
    store: TimelineStore, tenant: str, prefixes: Sequence[str], *, limit: int
) -> list[str]:
    """Customer ids holding an identifier whose normalised value starts with a prefix."""
    if not prefixes:
        return []
    cursor = store.identities.find(
        {
            "tenant": tenant,
            "$or": [{"value": {"$gte": p, "$lt": p + PREFIX_TOP}} for p in prefixes],
        },
        {"customer_id": 1},
    ).limit(limit)
    return list(dict.fromkeys([doc["customer_id"] async for doc in cursor]))
