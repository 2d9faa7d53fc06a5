"""The ``audit_log`` collection: the only code touching it. Insert-only, never updated."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import cast

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from services.timeline.audit.model import AuditDoc
from services.timeline.audit.records import ChainTaken
from services.timeline.store.documents import Document
from services.timeline.store.expiry import create_without_ttl
from tsunagu.store_writes import DUPLICATE_KEY

# Sequence numbers are zero-padded in ids, so id order is chain order within a tenant.
_WIDTH = 20
# Above every digit: the end of one tenant's id range ("<tenant>/" + digits).
_END = "~"


def _id(tenant: str, sequence: int) -> str:
    return f"{tenant}/{sequence:0{_WIDTH}d}"


def _doc(found: Document) -> AuditDoc:
    record = {key: value for key, value in found.items() if key not in {"_id", "customer_key"}}
    return cast("AuditDoc", record)


class AuditStore:
    """Audit records keyed ``<tenant>/<sequence>``: one id per place in the chain."""

    def __init__(self, collection: AsyncCollection[Document], *, retention: timedelta) -> None:
        self._log = collection
        self._retention = retention

    async def ensure_indexes(self) -> None:
        await self._log.create_indexes(
            [IndexModel([("customer_key", ASCENDING)], name="customer_key")]
        )
        # Retention: records older than it leave the old end of the chain, by the timeline's
        # sweep over this index (services/timeline/store/expiry.py).
        await create_without_ttl(self._log, IndexModel([("at", ASCENDING)], name="retention"))

    async def delete_expired(self, now: datetime) -> int:
        """Delete the records older than the retention; returns how many."""
        result = await self._log.delete_many({"at": {"$lt": now - self._retention}})
        return result.deleted_count

    async def last(self, tenant: str, *, after: int = 0) -> AuditDoc | None:
        found = await self._log.find_one(
            {"_id": {"$gt": _id(tenant, after), "$lt": f"{tenant}/{_END}"}},
            sort=[("_id", DESCENDING)],
        )
        return None if found is None else _doc(found)

    async def append(self, docs: Sequence[AuditDoc]) -> None:
        rows = [
            {
                "_id": _id(doc["tenant"], doc["sequence"]),
                "customer_key": f"{doc['tenant']}/{doc['customer_id']}",
                **doc,
            }
            for doc in docs
        ]
        try:
            await self._log.insert_many(rows, ordered=True)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if errors and errors[0].get("code") == DUPLICATE_KEY:
                raise ChainTaken(stored=int(errors[0]["index"])) from error
            raise

    async def page(
        self, tenant: str, *, customer_id: str, before: int | None, limit: int
    ) -> list[AuditDoc]:
        upper = _id(tenant, before) if before is not None else f"{tenant}/{_END}"
        query: Document = {"_id": {"$gte": f"{tenant}/", "$lt": upper}}
        if customer_id:
            query["customer_key"] = f"{tenant}/{customer_id}"
        cursor = self._log.find(query).sort("_id", DESCENDING).limit(limit)
        return [_doc(found) async for found in cursor]

    async def in_order(self, tenant: str) -> AsyncIterator[AuditDoc]:
        cursor = self._log.find({"_id": {"$gte": f"{tenant}/", "$lt": f"{tenant}/{_END}"}}).sort(
            "_id", ASCENDING
        )
        async for found in cursor:
            yield _doc(found)
