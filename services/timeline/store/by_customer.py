"""Reads of a few customers' documents: one `customer_id` equality each, sent together.

On the embedded store a `customer_id: {$in: [...]}` filter is not answered from the
`customer` index: it scans the collection, so a merge's reads grew with the store (measured
on 100,000 log entries: 186 ms for four customers, against 1.6 ms for one customer's
equality and 4.9 ms for four equalities sent together). On MongoDB both forms are index
lookups; the equalities cost it a round trip per customer, overlapped.

So up to `EQUALITY_READS` customers (a merge round's two or three customers, a split's, a
batch's few customers without an open case) are read one equality each, all in flight at
once; more than that are read with one `$in`, which MongoDB answers from the index in one
round trip and the embedded store with one scan (a batch of many merges: measured on the
identity mix, 32 customers' equalities per round cost it more than the scan of a small
store did).

Like the reads by `_id` (`by_id`), each read asks by `customer_id` alone and keeps to the
tenant here: an equality next to `tenant` may be answered from the `tenant` index
(docs/store-compat.md). Customer ids are unique across tenants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from services.timeline.store.by_id import with_tenant
from services.timeline.store.documents import Document

# Up to this many customers, one equality read each, all in flight at once (a connection
# each); beyond it, one `$in` read.
EQUALITY_READS = 16


async def find_by_customers(
    collection: AsyncCollection[Document],
    tenant: str,
    customer_ids: Iterable[str],
    projection: Mapping[str, Any] | None = None,
) -> list[Document]:
    """The tenant's documents of these customers (in no particular order).

    Every read has ended before a failed one is reported (none is left running).
    """
    wanted = list(dict.fromkeys(customer_ids))
    kept = with_tenant(projection)
    if not wanted:
        return []
    if len(wanted) > EQUALITY_READS:
        cursor = collection.find({"customer_id": {"$in": wanted}}, kept)
        return [doc async for doc in cursor if doc.get("tenant") == tenant]

    async def of(customer_id: str) -> list[Document]:
        cursor = collection.find({"customer_id": customer_id}, kept)
        return [doc async for doc in cursor if doc.get("tenant") == tenant]

    found = await asyncio.gather(*(of(c) for c in wanted), return_exceptions=True)
    for outcome in found:
        if isinstance(outcome, BaseException):
            raise outcome
    return [doc for docs in found if not isinstance(docs, BaseException) for doc in docs]
