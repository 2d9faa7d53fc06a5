"""Identities keyed by what they are: `_id` is `tenant/kind/stored value`.

A batch looks up its identifiers by `_id $in`, a primary-key read on every store. Earlier
versions let the store assign `_id` and looked identifiers up by `{tenant, value $in}`: on
the embedded store a `$in` on any field but `_id` scans the collection, so the lookup grew
with the number of identities (measured: 73 ms against 3 ms for 50 keys among 40,000).

Identities stored by an earlier version are given their natural `_id` at start
(`give_natural_ids`, once: a mark records that it ran). A replica of the earlier version still
running during a rolling upgrade may store more of them; a claim refused by one of those adopts
it (`adopt`), so resolution never loops on an identifier it cannot see by `_id`. The unique
`(tenant, kind, value)` index stays: it is what refuses such a claim, and what the earlier
version's replicas rely on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pymongo.asynchronous.collection import AsyncCollection

from services.timeline.store.documents import Document
from tsunagu.store_writes import insert_many_new

log = logging.getLogger(__name__)

MARK = "natural_ids"
# Identities per conversion round trip.
_CHUNK = 500


def identity_id(tenant: str, kind: str, stored_value: str) -> str:
    """An identity's `_id`: tenant names and identifier kinds hold no '/', so it is unique."""
    return f"{tenant}/{kind}/{stored_value}"


def by_fields(tenant: str, kind: str, stored_value: str) -> Document:
    """The filter of an identity by what it is, whatever its `_id` (an earlier version's)."""
    return {"value": stored_value, "tenant": tenant, "kind": kind}


def natural(doc: Document) -> Document:
    """`doc` (as stored: its value sealed, when sealed) with its natural `_id`."""
    return {**doc, "_id": identity_id(doc["tenant"], doc["kind"], doc["value"])}


async def give_natural_ids(
    identities: AsyncCollection[Document], marks: AsyncCollection[Document]
) -> int:
    """Give identities stored by an earlier version their natural `_id`; returns how many.

    Idempotent, run at start: after the first run it reads one mark. Replicas starting at
    once convert the same documents harmlessly (the second insert is a duplicate).
    """
    if await marks.find_one({"_id": MARK}) is not None:
        return 0
    legacy: list[object] = []
    cursor = identities.find({}, {"tenant": 1, "kind": 1, "value": 1}, batch_size=5_000)
    async for doc in cursor:
        if doc["_id"] != identity_id(doc["tenant"], doc["kind"], doc["value"]):
            legacy.append(doc["_id"])
    for start in range(0, len(legacy), _CHUNK):
        docs = await identities.find({"_id": {"$in": legacy[start : start + _CHUNK]}}).to_list()
        await convert(identities, docs)
    await marks.update_one({"_id": MARK}, {"$set": {"converted": len(legacy)}}, upsert=True)
    if legacy:
        log.warning("gave %d identities of an earlier version their natural _id", len(legacy))
    return len(legacy)


async def adopt(identities: AsyncCollection[Document], docs: Sequence[Document]) -> int:
    """Convert the stored-by-an-earlier-version identities holding these (refused) claims.

    `docs` are the claims as they were to be stored; returns how many were converted.
    """
    legacy = []
    for doc in docs:
        held = await identities.find_one(by_fields(doc["tenant"], doc["kind"], doc["value"]))
        if held is not None and held["_id"] != doc["_id"]:
            legacy.append(held)
    await convert(identities, legacy)
    return len(legacy)


async def convert(identities: AsyncCollection[Document], docs: Sequence[Document]) -> None:
    """Store `docs` under their natural `_id` instead of the one they have.

    Each is deleted, then inserted again: the unique `(tenant, kind, value)` index refuses two
    at once. A replica of the earlier version may claim an identifier between the two; then
    the customer that held it is added to those that presented it (merge protection counts
    them), and the next event presenting it goes to the customer that claimed it.
    """
    if not docs:
        return
    await identities.delete_many({"_id": {"$in": [doc["_id"] for doc in docs]}})
    converted = [natural(doc) for doc in docs]
    for position in sorted(await insert_many_new(identities, converted)):
        doc = converted[position]
        holder = await identities.find_one(by_fields(doc["tenant"], doc["kind"], doc["value"]))
        if holder is None or holder["customer_id"] == doc["customer_id"]:
            continue
        log.warning(
            "identity %s of customer %s was claimed by customer %s while given its natural _id",
            doc["_id"],
            doc["customer_id"],
            holder["customer_id"],
        )
        presenters = {*doc.get("customer_ids", []), doc["customer_id"]}
        await identities.update_one(
            {"_id": holder["_id"]}, {"$addToSet": {"customer_ids": {"$each": sorted(presenters)}}}
        )
