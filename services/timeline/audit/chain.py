"""Appending to a tenant's hash chain without losing or forking it, and verifying it.

Within a process, appends of one tenant are serialised by a lock, and everything queued
while a write is in flight goes into the next write as one batch (one insert, however many
agents read at once). Between replicas the store decides: record ``n`` has one id, so only
one writer can store it; the loser reads what the winner stored and chains after it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.timeline.audit.model import GENESIS_HASH, Access, AuditDoc, chained, record_hash
from services.timeline.audit.records import AuditRecords, ChainTaken

# A replica that loses this many races in a row is starved by the others: the read fails
# (closed) rather than wait on.
MAX_ROUNDS = 50


class AuditUnavailable(RuntimeError):
    """The accesses could not be recorded: the reads they describe must not be answered."""


@dataclass(slots=True)
class _Waiting:
    accesses: Sequence[Access]
    done: asyncio.Future[list[AuditDoc]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What verifying a chain found."""

    intact: bool
    checked: int
    first_broken: int = 0
    problem: str = ""


class AuditChain:
    """The tenants' audit chains over ``AuditRecords``."""

    def __init__(self, records: AuditRecords, *, clock: Callable[[], datetime]) -> None:
        self._records = records
        self._clock = clock
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._queued: defaultdict[str, list[_Waiting]] = defaultdict(list)
        # The last record this process knows of, per tenant: where the next one chains.
        self._heads: dict[str, tuple[int, str]] = {}
        # Tenants whose chain another writer extended: read forward before chaining again.
        self._stale: set[str] = set()

    async def append(self, tenant: str, accesses: Sequence[Access]) -> list[AuditDoc]:
        """Record ``accesses`` in order on ``tenant``'s chain; returns the stored records.

        Raises:
            AuditUnavailable: They could not be stored (the store failed, or kept losing).
        """
        if not accesses:
            return []
        waiting = _Waiting(accesses)
        self._queued[tenant].append(waiting)
        async with self._locks[tenant]:
            batch = self._queued.pop(tenant, [])
            if batch:
                # Shielded: a cancelled reader must not leave the others of its batch waiting.
                await asyncio.shield(self._write(tenant, batch))
        return await waiting.done

    async def _write(self, tenant: str, batch: list[_Waiting]) -> None:
        accesses = [access for waiting in batch for access in waiting.accesses]
        try:
            stored = await self._chain(tenant, accesses)
        except Exception as failure:  # noqa: BLE001 - every waiter learns it failed
            for waiting in batch:
                waiting.done.set_exception(AuditUnavailable(type(failure).__name__))
            return
        start = 0
        for waiting in batch:
            waiting.done.set_result(stored[start : start + len(waiting.accesses)])
            start += len(waiting.accesses)

    async def _chain(self, tenant: str, accesses: list[Access]) -> list[AuditDoc]:
        stored: list[AuditDoc] = []
        for _ in range(MAX_ROUNDS):
            sequence, previous = await self._head(tenant)
            now = self._clock()
            docs = []
            for access in accesses[len(stored) :]:
                sequence += 1
                doc = chained(tenant, sequence, access, at=now, previous_hash=previous)
                previous = doc["hash"]
                docs.append(doc)
            try:
                await self._records.append(docs)
            except ChainTaken as taken:
                stored.extend(docs[: taken.stored])
                self._forget(tenant, docs[: taken.stored])
                continue
            stored.extend(docs)
            self._heads[tenant] = (docs[-1]["sequence"], docs[-1]["hash"])
            return stored
        raise AuditUnavailable(f"lost {MAX_ROUNDS} races for the chain of {tenant}")

    def _forget(self, tenant: str, written: list[AuditDoc]) -> None:
        # Another replica wrote after our last record: scan forward from what we did write.
        if written:
            self._heads[tenant] = (written[-1]["sequence"], written[-1]["hash"])
        self._stale.add(tenant)

    async def _head(self, tenant: str) -> tuple[int, str]:
        known = self._heads.get(tenant)
        if known is not None and tenant not in self._stale:
            return known
        last = await self._records.last(tenant, after=known[0] if known else 0)
        self._stale.discard(tenant)
        head = (last["sequence"], last["hash"]) if last else (known or (0, GENESIS_HASH))
        self._heads[tenant] = head
        return head

    async def verify(self, tenant: str) -> Verdict:
        """Recompute every record's hash and link, oldest first.

        The oldest record kept is the anchor: retention removes records from the old end,
        so a chain that starts after 1 is not broken by that alone; a gap is.
        """
        checked = 0
        previous: AuditDoc | None = None
        async for doc in self._records.in_order(tenant):
            checked += 1
            if record_hash(doc) != doc["hash"]:
                return Verdict(False, checked, doc["sequence"], "hash")
            if previous is None:
                if doc["sequence"] == 1 and doc["previous_hash"] != GENESIS_HASH:
                    return Verdict(False, checked, doc["sequence"], "link")
            elif doc["sequence"] != previous["sequence"] + 1:
                return Verdict(False, checked, previous["sequence"] + 1, "gap")
            elif doc["previous_hash"] != previous["hash"]:
                return Verdict(False, checked, doc["sequence"], "link")
            previous = doc
        return Verdict(True, checked)
