"""The `data_keys` and `erasures` collections: wrapped data keys, certificates, suppression."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypedDict

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.timeline.store.by_id import find_by_ids
from services.timeline.store.documents import Document
from tsunagu.store_writes import insert_many_new


class DataKeyDoc(TypedDict):
    """One customer's data key, wrapped by the tenant's KEK; deleting it shreds the data."""

    _id: str  # `<tenant>/<owner>`: one live key per owner
    tenant: str
    owner: str
    key_id: str
    wrapped: bytes


def data_key_id(tenant: str, owner: str) -> str:
    return f"{tenant}/{owner}"


class ErasureStore:
    """Data keys, erasure certificates and the suppression list; every query is by tenant."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._keys: AsyncCollection[Document] = db["data_keys"]
        self._certificates: AsyncCollection[Document] = db["erasures"]
        self._suppressed: AsyncCollection[Document] = db["suppressed_identifiers"]

    async def ensure_indexes(self) -> None:
        await self._certificates.create_indexes(
            [IndexModel([("tenant", ASCENDING), ("customer_ids", ASCENDING)], name="customer")]
        )

    async def data_keys(self, tenant: str, owners: Iterable[str]) -> dict[str, DataKeyDoc]:
        """The live data keys of `owners` (a shredded or never-made one is absent)."""
        ids = [data_key_id(tenant, owner) for owner in set(owners)]
        found = await find_by_ids(self._keys, tenant, ids)
        return {doc["owner"]: DataKeyDoc(**doc) for doc in found}  # type: ignore[typeddict-item]

    async def add_data_keys(self, docs: Sequence[DataKeyDoc]) -> set[str]:
        """Store new keys; returns the owners another writer stored a key for first (kept)."""
        refused = await insert_many_new(self._keys, [dict(doc) for doc in docs])
        return {docs[i]["owner"] for i in refused}

    async def shred(self, tenant: str, owners: Iterable[str]) -> list[str]:
        """Delete the owners' data keys; returns the key ids destroyed."""
        ids = [data_key_id(tenant, owner) for owner in set(owners)]
        found = await self._keys.find({"_id": {"$in": ids}, "tenant": tenant}).to_list(None)
        # Overwritten before the delete, so a store that keeps deleted documents' pages
        # (the embedded SQLite one) holds random bytes there rather than the wrapped key.
        for doc in found:
            await self._keys.update_one(
                {"_id": doc["_id"]}, {"$set": {"wrapped": bytes(len(doc["wrapped"]))}}
            )
        await self._keys.delete_many({"_id": {"$in": ids}, "tenant": tenant})
        return sorted(doc["key_id"] for doc in found)

    async def add_certificate(self, certificate: Document) -> None:
        await self._certificates.insert_one(certificate)

    async def certificates(self, tenant: str, customer_id: str) -> list[Document]:
        # `$in` rather than equality on the array: the embedded store matched no element by
        # equality (MongoDB answers both the same).
        cursor = self._certificates.find({"tenant": tenant, "customer_ids": {"$in": [customer_id]}})
        return [doc async for doc in cursor]

    async def suppress(self, tenant: str, indexes: Iterable[str], certificate_id: str) -> None:
        await insert_many_new(
            self._suppressed,
            [
                {"_id": f"{tenant}/{index}", "tenant": tenant, "erasure": certificate_id}
                for index in sorted(set(indexes))
            ],
        )

    async def suppressed(self, tenant: str, indexes: Iterable[str]) -> set[str]:
        """Which of these blind indexes belong to erased people."""
        ids = [f"{tenant}/{index}" for index in set(indexes)]
        found = await find_by_ids(self._suppressed, tenant, ids, {"_id": 1})
        return {doc["_id"].split("/", 1)[1] for doc in found}
