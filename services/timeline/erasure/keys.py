"""Customers' data keys: made on first write, checked live on every read, unwrapped once a while."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from services.timeline.erasure.store import DataKeyDoc, ErasureStore, data_key_id
from tsunagu.crypto import DataKey, KeyProvider, new_data_key, unwrap_data_key

_MAX_CACHED = 100_000
_Read = TypeVar("_Read")


def owner_of(key_id: str) -> str:
    """The owner named in a data key id (`dek/<owner>/<random>`)."""
    return key_id.removeprefix("dek/").rpartition("/")[0]


# How long a replica keeps an unwrapped data key in memory: the KEK unwrap (a KMS call in a
# deployment) is paid once per key in that time. It never decides whether a key is still
# live: that is the lease's (docs/privacy.md).
CACHE_SECONDS = 30.0
# How long a read trusts the store's word that a key is live, counted from before the
# store was asked. An erasure returns only this long after its keys were shredded
# (`Eraser`): by then no replica trusts an earlier answer. Reads of one customer within it
# (a profile, then its page, then the next page) ask the store once.
LEASE_SECONDS = 1.0


@dataclass(slots=True)
class KeyRing:
    """The live data keys of some owners of one tenant, as the store had them for one read.

    `checked` are the owners whose keys were looked up; a checked owner without a key was
    shredded (or never had one): what it sealed reads as the mask.
    """

    tenant: str
    keys: dict[str, DataKey] = field(default_factory=dict)  # by owner
    checked: set[str] = field(default_factory=set)
    leased: set[str] = field(default_factory=set)  # checked by an earlier read's answer

    def get(self, key_id: str) -> DataKey | None:
        """The live key `key_id`, or None (shredded, replaced, or its owner not checked)."""
        key = self.keys.get(owner_of(key_id))
        return key if key is not None and key.key_id == key_id else None

    def by_key_id(self, key_ids: Collection[str]) -> dict[str, DataKey]:
        """The live keys among `key_ids` (a shredded or replaced key is absent)."""
        return {key.key_id: key for key in self.keys.values() if key.key_id in key_ids}


class _Expiring:
    """Keys by (tenant, owner), each until a time; bounded (a burst of customers starts over)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[DataKey, float]] = {}

    def fresh(self, tenant: str, owners: Iterable[str]) -> dict[str, DataKey]:
        now = self._clock()
        found = {}
        for owner in owners:
            entry = self._entries.get((tenant, owner))
            if entry is not None and entry[1] > now:
                found[owner] = entry[0]
        return found

    def put(self, tenant: str, keys: dict[str, DataKey], until: float) -> None:
        if len(self._entries) > _MAX_CACHED:
            self._entries.clear()
        for owner, key in keys.items():
            self._entries[(tenant, owner)] = (key, until)

    def ending(self, tenant: str, owners: Iterable[str], before: float) -> set[str]:
        """The owners whose entries end before `before` (or have none)."""
        return {
            owner
            for owner in owners
            if (entry := self._entries.get((tenant, owner))) is None or entry[1] < before
        }

    def drop(self, tenant: str, owners: Iterable[str]) -> None:
        for owner in owners:
            self._entries.pop((tenant, owner), None)

    def clear(self) -> None:
        self._entries.clear()


class CustomerKeys:
    """Data keys by owner (a customer id), over the `data_keys` collection.

    Reads ask the store which keys are live (one round trip for a whole read, made
    alongside the documents' own where the owners are known first), and trust a live
    answer for `lease_seconds` from before it was asked; an erasure waits out the lease
    before it returns, so a key shredded by any replica's erasure opens nothing anywhere
    once the erasure has returned. Unwrapped keys are cached for `CACHE_SECONDS`: by key
    id for reads (the unwrap), by owner for writes (a batch of events seals under the same
    few keys many times; what a replica seals under a key another one shredded meanwhile
    is unreadable too).
    """

    def __init__(
        self,
        store: ErasureStore,
        provider: KeyProvider,
        *,
        cache_seconds: float = CACHE_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._provider = provider
        self._cache_seconds = cache_seconds
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._cache = _Expiring(clock)  # for writing
        self._leases = _Expiring(clock)  # live keys, until when that answer is trusted
        # (tenant, key id) -> the key and when it stops being reused.
        self._unwrapped: dict[tuple[str, str], tuple[DataKey, float]] = {}
        self.unwraps = 0  # KEK unwraps done (what the cache saves; the tests count them)

    def forget(self, tenant: str, owners: Iterable[str]) -> None:
        """Drop the owners' keys from this replica's memory (an erasure here)."""
        gone = set(owners)
        self._cache.drop(tenant, gone)
        self._leases.drop(tenant, gone)
        for cached in [k for k in self._unwrapped if k[0] == tenant and owner_of(k[1]) in gone]:
            del self._unwrapped[cached]

    def forget_all(self) -> None:
        """Drop every cached key (a key-provider reload; the benchmark's cold reads)."""
        self._cache.clear()
        self._leases.clear()
        self._unwrapped.clear()

    def _remember(self, tenant: str, keys: dict[str, DataKey]) -> dict[str, DataKey]:
        self._cache.put(tenant, keys, self._clock() + self._cache_seconds)
        return keys

    async def for_writing(
        self, tenant: str, owners: Iterable[str], *, new: bool = False
    ) -> dict[str, DataKey]:
        """The owners' live keys, made (and stored) for owners that have none.

        `new`: the owners were just made (their ids minted here), so none has a key yet:
        theirs are made and stored without looking for them first. One another writer
        stored meanwhile (a replay of the same customers) is taken instead.
        """
        wanted = set(owners)
        cached = self._cache.fresh(tenant, wanted)
        if len(cached) == len(wanted):
            return cached
        loaded = await self._load(tenant, wanted - cached.keys(), new=new)
        return cached | self._remember(tenant, loaded)

    async def _load(self, tenant: str, wanted: set[str], *, new: bool) -> dict[str, DataKey]:
        """The owners' keys as stored, or made and stored; leased as live (the store's
        answer, or the write that stored them, counts from before it was asked).
        """
        asked_at = self._clock()
        stored = {} if new else await self._store.data_keys(tenant, wanted)
        missing = wanted - stored.keys()
        found = {owner: self._unwrapped_key(tenant, doc) for owner, doc in stored.items()}
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
                # Another writer stored its key first: the stored one is the key.
                again = await self._store.data_keys(tenant, lost)
                found |= {owner: self._unwrapped_key(tenant, doc) for owner, doc in again.items()}
        # Reads of these owners within the lease (the batch's own, right after) ask nothing.
        self._leases.put(tenant, found, asked_at + self._lease_seconds)
        return found

    async def warm(self, tenant: str, owners: Iterable[str], *, new: bool = False) -> None:
        """Load (or make) many owners' keys in one round trip, ahead of sealing one by one."""
        await self.for_writing(tenant, owners, new=new)

    async def live(
        self,
        tenant: str,
        owners: Iterable[str],
        ring: KeyRing | None = None,
        *,
        named: Collection[str] = (),
    ) -> KeyRing:
        """`ring` (or a new one) with the live keys of the owners it has not checked yet.

        `named` are key ids the documents name: their owners are checked too, and asked
        again where a lease holds another key of theirs. One store round trip for all the
        owners not under a lease, none when there are none.
        """
        if ring is None:
            ring = KeyRing(tenant)
        elif ring.tenant != tenant:
            raise ValueError("a key ring holds one tenant's keys")
        if ask := self._leased(ring, owners, named):
            await self._asked(ring, ask)
        return ring

    def _leased(self, ring: KeyRing, owners: Iterable[str], named: Collection[str]) -> set[str]:
        """Puts the leased keys of the owners (and of those `named` names) in `ring`; returns
        the owners still to ask the store about.
        """
        wanted = set(owners) | {owner_of(k) for k in named}
        # A lease of an older key than the documents name (one made after an erasure).
        again = {owner_of(k) for k in named if owner_of(k) in ring.leased and not ring.get(k)}
        ask = (wanted - ring.checked) | again
        leased = self._leases.fresh(ring.tenant, ask - again)
        ring.keys |= leased
        ring.checked |= leased.keys()
        ring.leased |= leased.keys()
        return ask - leased.keys()

    async def _asked(self, ring: KeyRing, ask: set[str]) -> None:
        """Asks the store for the live keys of `ask` (one round trip) and puts them in `ring`."""
        asked_at = self._clock()  # the lease counts from before the store answered
        stored = await self._store.data_keys(ring.tenant, ask)
        found = {owner: self._unwrapped_key(ring.tenant, doc) for owner, doc in stored.items()}
        for owner in ask - found.keys():
            ring.keys.pop(owner, None)
        ring.keys |= found
        ring.checked |= ask
        ring.leased -= ask
        self._leases.put(ring.tenant, found, asked_at + self._lease_seconds)
        # A live key read is one to write under too: the batch that read a customer writes
        # it next, and asks nothing for that.
        self._remember(ring.tenant, found)

    async def alongside(
        self, tenant: str, read: Awaitable[_Read], owners: Collection[str]
    ) -> tuple[_Read, KeyRing]:
        """`read`'s result and the owners' live keys, both read at once.

        The owners of a customer's documents are known before the documents are (keys are
        per customer): asking for both concurrently costs one round trip's wait, not two.
        """
        ring = KeyRing(tenant)
        if not (ask := self._leased(ring, owners, ())):
            return await read, ring  # all leased: no second task to schedule
        # Asking anyway: the leases that would end within half a lease are renewed by the
        # same query, so that the reads right after this one (a batch's cases) need none.
        ask |= self._leases.ending(tenant, owners, self._clock() + self._lease_seconds / 2)
        found, _ = await asyncio.gather(read, self._asked(ring, ask))
        return found, ring

    async def for_reading(
        self, tenant: str, key_ids: Iterable[str], ring: KeyRing | None = None
    ) -> dict[str, DataKey]:
        """Live keys by key id; a shredded (or replaced) key is absent.

        Owners `ring` has checked are not asked again; the others are, in one round trip
        (and added to `ring`).
        """
        wanted = set(key_ids)
        if not wanted:
            return {}
        found = await self.live(tenant, (), ring, named=wanted)
        return found.by_key_id(wanted)

    def _unwrapped_key(self, tenant: str, doc: DataKeyDoc) -> DataKey:
        """The stored key unwrapped, or the cached unwrap of the same wrapped bytes."""
        now = self._clock()
        cached = self._unwrapped.get((tenant, doc["key_id"]))
        wrapped = bytes(doc["wrapped"])
        # The same wrapped bytes only: a re-wrap (KEK rotation) or a tampered one unwraps anew.
        if cached is not None and cached[1] > now and cached[0].wrapped == wrapped:
            return cached[0]
        key = unwrap_data_key(self._provider, tenant=tenant, key_id=doc["key_id"], wrapped=wrapped)
        self.unwraps += 1
        if len(self._unwrapped) > _MAX_CACHED:
            self._unwrapped.clear()
        self._unwrapped[(tenant, doc["key_id"])] = (key, now + self._cache_seconds)
        return key
