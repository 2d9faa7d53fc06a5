"""The cost of encryption: the same work with `TSUNAGU_KEY_FILE` set and unset, in one run.

- Ingest: an event sealed for the bus (a data key of its own, wrapped by the tenant's KEK),
  opened by the consumer, then recorded with every personal field sealed at the store
  boundary — against the same mix recorded in the clear. Customers are created, attached
  to and merged, as in `bench.identity`.
- Reads: each customer's profile and first page of its timeline, opened — with the data keys
  in memory, and cold (every key read from the store and unwrapped again) — against the same
  reads of the plain database.

The machine is shared, and a ratio of two noisy figures is noisier still: a plain batch of
events and its sealed twin are recorded one after the other (twice over, the faster total
kept), and a customer's plain, sealed and cold reads are taken one after the other (each
total the best of three rounds), so a change of load weighs on both sides alike.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.identity import T0, _call, _email, _phone
from bench.targets import Row, table
from services.timeline.bootstrap import build_core
from services.timeline.identity.policy import IdentityPolicy
from services.timeline.recorder import Recorded, TimelineRecorder
from services.timeline.store.documents import Document
from services.timeline.stores import TimelineStore
from tsunagu.crypto import LocalKeyFile
from tsunagu.crypto.bus_seal import BusSealer
from tsunagu.local.processes import MongoWireStore
from tsunagu.v1 import interaction_pb2 as pb

TENANT = "bench-identity"  # the mix's tenant (bench.identity)
BOUND = 1.3
PAGE = 50
_BATCH = 64  # events per `record_batch`, as the consumer's batches


def _mix(count: int) -> list[pb.Interaction]:
    events: list[pb.Interaction] = []
    for g in range(count // 4):
        at = T0 + timedelta(minutes=g)
        number, address = _phone(g), f"person{g}@example.jp"
        link = pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=number, verified=True)
        events += [
            _call(number, at),
            _call(number, at + timedelta(seconds=1)),
            _email(address, at + timedelta(seconds=2)),
            _email(address, at + timedelta(seconds=3), link),
        ]
    for event in events:
        event.content.text = f"My order {event.event_id[:8]} has not arrived; call me back."
    return events


def _through_the_bus(sealer: BusSealer, event: pb.Interaction) -> pb.Interaction:
    """What ingestion publishes and the consumer opens: seal, then open and decode."""
    data, headers = sealer.seal(
        tenant=TENANT, event_id=event.event_id, data=event.SerializeToString()
    )
    return pb.Interaction.FromString(sealer.open(tenant=TENANT, data=data, headers=headers))


@dataclass(slots=True)
class _Side:
    """One side's fresh database: its stores, recorder, bus sealer, and what it recorded."""

    name: str
    store: TimelineStore
    recorder: TimelineRecorder
    sealer: BusSealer | None
    customers: list[str] = field(default_factory=list)
    ingest_s: float = 0.0

    async def record(self, events: Sequence[pb.Interaction]) -> None:
        """One batch through the bus (sealed or not) and recorded; its time added."""
        started = time.perf_counter()
        batch = [e if self.sealer is None else _through_the_bus(self.sealer, e) for e in events]
        outcomes = await self.recorder.record_batch(batch)
        self.ingest_s += time.perf_counter() - started
        assert all(isinstance(o, Recorded) for o in outcomes)
        self.customers += [o.customer_id for o in outcomes if isinstance(o, Recorded)]


async def _side(client: AsyncMongoClient[Document], key_file: Path | None) -> _Side:
    name = f"bench_crypto_{uuid.uuid4().hex[:8]}"
    provider = None if key_file is None else LocalKeyFile(key_file)
    store = TimelineStore(client[name], provider=provider)
    await store.ensure_indexes()
    recorder = build_core(store, identity_for=lambda _tenant: IdentityPolicy("JP")).recorder
    return _Side(name, store, recorder, None if provider is None else BusSealer(provider))


async def _ingested(
    client: AsyncMongoClient[Document], events: Sequence[pb.Interaction], key_file: Path
) -> tuple[_Side, _Side]:
    """The mix recorded plain and sealed on two fresh databases, batch by batch in turn.

    Each side records the same events under fresh event ids; a plain batch and its sealed
    twin are timed one after the other, so a change of load weighs on both alike.
    """
    plain, sealed = await _side(client, None), await _side(client, key_file)
    copies = {id(side): _fresh(events) for side in (plain, sealed)}
    for start in range(0, len(events), _BATCH):
        for side in (plain, sealed):
            await side.record(copies[id(side)][start : start + _BATCH])
    for side in (plain, sealed):
        side.customers = sorted(set(side.customers))
    return plain, sealed


def _fresh(events: Sequence[pb.Interaction]) -> list[pb.Interaction]:
    copies = [pb.Interaction.FromString(e.SerializeToString()) for e in events]
    for event in copies:
        event.event_id = str(uuid.uuid4())
    return copies


async def _read(store: TimelineStore, customer_id: str, *, cold: bool = False) -> float:
    """Seconds to read one customer's profile and first page (cold: no key in memory)."""
    if cold and store.keys is not None:
        store.keys.forget_all()
    started = time.perf_counter()
    # As the timeline's ListInteractions: the customer as stored (its merge pointers are not
    # sealed), then the page with the keys of the customer and of those merged into it, in
    # one query alongside. The profile is opened too, as a screen shows it beside the page:
    # with the keys the page read (its lease), not another key query.
    stored = await store.customers.stored_customers(TENANT, [customer_id])
    await store.interactions.list_interactions(
        TENANT, customer_id, limit=PAGE, key_owners=stored[customer_id].get("merged_ids", [])
    )
    await store.customers.opened_customers(TENANT, stored)
    return time.perf_counter() - started


async def _reads(plain: _Side, sealed: _Side, rounds: int) -> dict[str, float]:
    """Seconds to read every customer: plain, sealed with keys cached, sealed cold.

    The three reads of a customer are taken one after the other, so a change of load on the
    shared machine weighs on all three alike; each total is the best of `rounds`.
    """
    best = {"plain": float("inf"), "sealed": float("inf"), "cold": float("inf")}
    for _ in range(rounds):
        took = dict.fromkeys(best, 0.0)
        for mine, theirs in zip(plain.customers, sealed.customers, strict=True):
            took["plain"] += await _read(plain.store, mine)
            await _read(sealed.store, theirs)  # its keys in memory, as after any recent read
            took["sealed"] += await _read(sealed.store, theirs)
            took["cold"] += await _read(sealed.store, theirs, cold=True)
        best = {kind: min(best[kind], took[kind]) for kind in best}
    return best


async def encryption_cost(mongodb_uri: str, count: int, *, rounds: int = 3) -> dict[str, Any]:
    """Ingest and read time with encryption on, each as a ratio to the plain path."""
    events = _mix(count)
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    ingest: dict[str, list[float]] = {"plain": [], "sealed": []}
    made: list[_Side] = []  # dropped at the end
    try:
        with tempfile.TemporaryDirectory() as keys:
            for _ in range(2):
                for dropped in made:
                    await client.drop_database(dropped.name)
                plain_side, sealed_side = await _ingested(client, events, Path(keys) / "keys.json")
                made = [plain_side, sealed_side]
                ingest["plain"].append(plain_side.ingest_s)
                ingest["sealed"].append(sealed_side.ingest_s)
            reads = await _reads(plain_side, sealed_side, rounds)
    finally:
        for found in made:
            await client.drop_database(found.name)
        await client.close()
    plain = {"ingest_s": min(ingest["plain"]), "reads_s": reads["plain"]}
    sealed = {
        "ingest_s": min(ingest["sealed"]),
        "reads_s": reads["sealed"],
        "cold_reads_s": reads["cold"],
    }
    return {
        "events": len(events),
        "customers": len(plain_side.customers),
        "plain": {**plain, "cold_reads_s": plain["reads_s"]},  # no keys: nothing is cold
        "sealed": sealed,
        "ingest_ratio": sealed["ingest_s"] / plain["ingest_s"],
        "reads_ratio": sealed["reads_s"] / plain["reads_s"],
        "cold_reads_ratio": sealed["cold_reads_s"] / plain["reads_s"],
    }


def encryption_rows(result: dict[str, Any]) -> list[Row]:
    """Encryption's cost on ingest, on reads and on cold reads, each against the plain path."""
    found = result.get("encryption")
    if not found:
        return []
    events, customers = found["events"], found["customers"]
    rows = []
    for label, key, unit in (
        (f"encryption on ingest (seal, open, record), {events:,} events", "ingest_s", events),
        (
            f"encryption on timeline reads (profile + page), {customers:,} cust.",
            "reads_s",
            customers,
        ),
        (
            f"encryption on cold reads (data keys not cached), {customers:,} cust.",
            "cold_reads_s",
            customers,
        ),
    ):
        sealed = found["sealed"][key] * 1000 / unit
        plain = found["plain"][key] * 1000 / unit
        ratio = found[key.removesuffix("_s") + "_ratio"]
        rows.append(
            Row(
                label,
                f"{sealed:.2f} ms each",
                f"unencrypted {plain:.2f} ms",
                ratio,
                f"< {BOUND}×",
                ratio < BOUND,
            )
        )
    return rows


async def _standalone(count: int) -> dict[str, Any]:
    """`encryption_cost` on an embedded store of its own (or MONGODB_URI)."""
    if uri := os.environ.get("MONGODB_URI"):
        return await encryption_cost(uri, count)
    with tempfile.TemporaryDirectory(prefix="tsunagu-bench-crypto-") as tmp:
        async with MongoWireStore(Path(tmp) / "store", sink=lambda _name, _line: None) as store:
            return await encryption_cost(store.uri, count)


if __name__ == "__main__":
    # `python -m bench.encryption [events]`: this part of `make bench` alone, same rows.
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    print(table(encryption_rows({"encryption": asyncio.run(_standalone(events))})))
