"""Customers' data keys: made on first write, unwrapped per read, never cached past a call."""

from __future__ import annotations

from collections.abc import Iterable

from services.timeline.erasure.store import DataKeyDoc, ErasureStore, data_key_id
from tsunagu.crypto import DataKey, KeyProvider, new_data_key, unwrap_data_key


def owner_of(key_id: str) -> str:
    """The owner named in a data key id (`dek/<owner>/<random>`)."""
    return key_id.removeprefix("dek/").rpartition("/")[0]


class CustomerKeys:
    """Data keys by owner (a customer id), over the `data_keys` collection.

    Nothing is cached between calls: once erasure shreds a key in the store, no replica
    can still seal or open with it from memory.
    """

    def __init__(self, store: ErasureStore, provider: KeyProvider) -> None:
        self._store = store
        self._provider = provider

    async def for_writing(self, tenant: str, owners: Iterable[str]) -> dict[str, DataKey]:
        """The owners' live keys, made (and stored) for owners that have none."""
        wanted = set(owners)
        stored = await self._store.data_keys(tenant, wanted)
        missing = wanted - stored.keys()
        if missing:
            made = [new_data_key(self._provider, tenant=tenant, owner=o) for o in sorted(missing)]
            await self._store.add_data_keys(
                [
                    DataKeyDoc(
                        _id=data_key_id(tenant, owner_of(key.key_id)),
                        tenant=tenant,
                        owner=owner_of(key.key_id),
                        key_id=key.key_id,
                        wrapped=key.wrapped,
                    )
                    for key in made
                ]
            )
            # Another replica may have stored its key first: the stored one is the key.
            stored = await self._store.data_keys(tenant, wanted)
        return {owner: self._unwrapped(tenant, doc) for owner, doc in stored.items()}

    async def for_reading(self, tenant: str, key_ids: Iterable[str]) -> dict[str, DataKey]:
        """Live keys by key id; a shredded (or replaced) key is absent."""
        wanted = set(key_ids)
        stored = await self._store.data_keys(tenant, {owner_of(k) for k in wanted})
        return {
            doc["key_id"]: self._unwrapped(tenant, doc)
            for doc in stored.values()
            if doc["key_id"] in wanted
        }

    def _unwrapped(self, tenant: str, doc: DataKeyDoc) -> DataKey:
        return unwrap_data_key(
            self._provider, tenant=tenant, key_id=doc["key_id"], wrapped=bytes(doc["wrapped"])
        )
