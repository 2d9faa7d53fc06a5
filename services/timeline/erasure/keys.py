"""Customers' data keys: made on first write, unwrapped per read, never cached past a call."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from services.timeline.erasure.store import DataKeyDoc, ErasureStore, data_key_id
from tsunagu.crypto import DataKey, KeyProvider, new_data_key, unwrap_data_key

_MAX_CACHED = 100_000


def owner_of(key_id: str) -> str:
    """The owner named in a data key id (`dek/<owner>/<random>`)."""
    return key_id.removeprefix("dek/").rpartition("/")[0]


# How long a replica keeps an unwrapped data key: the bound on how long, after an erasure on
# another replica, it can still open that person's data (docs/privacy.md). Its own
# erasures evict at once.
CACHE_SECONDS = 30.0


class CustomerKeys:
    """Data keys by owner (a customer id), over the `data_keys` collection.

    Unwrapped keys are cached for `CACHE_SECONDS` (a page of a timeline, a batch of
    events, open and seal under the same few keys many times).
    """

    def __init__(
        self,
        store: ErasureStore,
        provider: KeyProvider,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._provider = provider
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[DataKey, float]] = {}

    def forget(self, tenant: str, owners: Iterable[str]) -> None:
        """Drop the owners' keys from this replica's cache (an erasure here)."""
        for owner in owners:
            self._cache.pop((tenant, owner), None)

    def forget_all(self) -> None:
        """Drop every cached key (a key-provider reload; the benchmark's cold reads)."""
        self._cache.clear()

    def _cached(self, tenant: str, owners: Iterable[str]) -> dict[str, DataKey]:
        now = self._clock()
        found = {}
        for owner in owners:
            entry = self._cache.get((tenant, owner))
            if entry is not None and entry[1] > now:
                found[owner] = entry[0]
        return found

    def _remember(self, tenant: str, keys: dict[str, DataKey]) -> dict[str, DataKey]:
        if len(self._cache) > _MAX_CACHED:
            self._cache.clear()  # a burst of many customers: start over rather than grow
        expires = self._clock() + self._cache_seconds
        for owner, key in keys.items():
            self._cache[(tenant, owner)] = (key, expires)
        return keys

    async def for_writing(self, tenant: str, owners: Iterable[str]) -> dict[str, DataKey]:
        """The owners' live keys, made (and stored) for owners that have none."""
        wanted = set(owners)
        cached = self._cached(tenant, wanted)
        if len(cached) == len(wanted):
            return cached
        return cached | self._remember(tenant, await self._load(tenant, wanted - cached.keys()))

    async def _load(self, tenant: str, wanted: set[str]) -> dict[str, DataKey]:
        stored = await self._store.data_keys(tenant, wanted)
        missing = wanted - stored.keys()
        found = {owner: self._unwrapped(tenant, doc) for owner, doc in stored.items()}
        if missing:
            made = {o: new_data_key(self._provider, tenant=tenant, owner=o) for o in missing}
            lost = await self._store.add_data_keys(
                [
                    DataKeyDoc(
                        _id=data_key_id(tenant, owner),
                        tenant=tenant,
                        owner=owner,
                        key_id=key.key_id,
                        wrapped=key.wrapped,
                    )
                    for owner, key in sorted(made.items())
                ]
            )
            found |= {owner: key for owner, key in made.items() if owner not in lost}
            if lost:
                # Another replica stored its key first: the stored one is the key.
                again = await self._store.data_keys(tenant, lost)
                found |= {owner: self._unwrapped(tenant, doc) for owner, doc in again.items()}
        return found

    async def warm(self, tenant: str, owners: Iterable[str]) -> None:
        """Load (or make) many owners' keys in one round trip, ahead of sealing one by one."""
        await self.for_writing(tenant, owners)

    async def for_reading(self, tenant: str, key_ids: Iterable[str]) -> dict[str, DataKey]:
        """Live keys by key id; a shredded (or replaced) key is absent."""
        wanted = set(key_ids)
        owners = {owner_of(k) for k in wanted}
        found = self._cached(tenant, owners)
        missing = owners - found.keys()
        if missing:
            stored = await self._store.data_keys(tenant, missing)
            found |= self._remember(
                tenant, {owner: self._unwrapped(tenant, doc) for owner, doc in stored.items()}
            )
        return {key.key_id: key for key in found.values() if key.key_id in wanted}

    def _unwrapped(self, tenant: str, doc: DataKeyDoc) -> DataKey:
        return unwrap_data_key(
            self._provider, tenant=tenant, key_id=doc["key_id"], wrapped=bytes(doc["wrapped"])
        )
