"""The cost of encryption: the same work with `TSUNAGU_KEY_FILE` set and unset, in one run.

- Ingest: an event sealed for the bus (a data key of its own, wrapped by the tenant's KEK),
  opened by the consumer, then recorded with every personal field sealed at the store
  boundary — against the same mix recorded in the clear. Customers are created, attached
  to and merged, as in `bench.identity`.
- Reads: each customer's profile and first page of its timeline, opened — with the data keys
  in memory, and cold (every key read from the store and unwrapped again) — against the same
  reads of the plain database.

The machine is shared, and a ratio of two noisy figures is noisier still: ingestion runs
twice per side, alternating, and keeps the faster run; a customer's plain, sealed and cold
reads are taken one after the other, and each total is the best of three rounds.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.identity import T0, _call, _email, _phone
from bench.targets import Row, table
from services.timeline.bootstrap import build_core
from services.timeline.identity.policy import IdentityPolicy
from services.timeline.recorder import Recorded
from services.timeline.store.documents import Document
from services.timeline.stores import TimelineStore
from tsunagu.crypto import LocalKeyFile
from tsunagu.crypto.bus_seal import BusSealer
from tsunagu.local.processes import MongoWireStore
from tsunagu.v1 import interaction_pb2 as pb

TENANT = "bench-identity"  # the mix's tenant (bench.identity)
BOUND = 1.3
PAGE = 50


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


@dataclass(frozen=True, slots=True)
class _Side:
    """One side's database after ingestion: its stores, customers and ingest time."""

    name: str
    store: TimelineStore
    customers: list[str]
    ingest_s: float


async def _ingested(
    client: AsyncMongoClient[Document], events: Sequence[pb.Interaction], key_file: Path | None
) -> _Side:
    """`events` brought in (sealed or not) on a fresh database, timed."""
    name = f"bench_crypto_{uuid.uuid4().hex[:8]}"
    provider = None if key_file is None else LocalKeyFile(key_file)
    store = TimelineStore(client[name], provider=provider)
    await store.ensure_indexes()
    recorder = build_core(store, identity_for=lambda _tenant: IdentityPolicy("JP")).recorder
    sealer = None if provider is None else BusSealer(provider)
    started = time.perf_counter()
    batch: list[pb.Interaction] = []
    outcomes = []
    for event in events:
        batch.append(event if sealer is None else _through_the_bus(sealer, event))
        if len(batch) == 64:
            outcomes += await recorder.record_batch(batch)
            batch = []
    outcomes += await recorder.record_batch(batch)
    ingest = time.perf_counter() - started
    assert all(isinstance(o, Recorded) for o in outcomes)
    customers = sorted({o.customer_id for o in outcomes if isinstance(o, Recorded)})
    return _Side(name, store, customers, ingest)


async def _read(store: TimelineStore, customer_id: str, *, cold: bool = False) -> float:
    """Seconds to read one customer's profile and first page (cold: no key in memory)."""
    if cold and store.keys is not None:
        store.keys.forget_all()
    started = time.perf_counter()
    # As the timeline's ListInteractions: the profile, then the page (and the keys of the
    # customers merged into this one alongside it).
    profile = (await store.customers.get_customers(TENANT, [customer_id]))[customer_id]
    await store.interactions.list_interactions(
        TENANT, customer_id, limit=PAGE, key_owners=profile.get("merged_ids", [])
    )
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
    sides: dict[str, _Side] = {}
    try:
        with tempfile.TemporaryDirectory() as keys:
            for _ in range(2):
                for side, key_file in (("plain", None), ("sealed", Path(keys) / "keys.json")):
                    # Fresh event ids per run: each side records the same mix, new to it.
                    fresh = [pb.Interaction.FromString(e.SerializeToString()) for e in events]
                    for event in fresh:
                        event.event_id = str(uuid.uuid4())
                    if side in sides:
                        await client.drop_database(sides[side].name)
                    sides[side] = await _ingested(client, fresh, key_file)
                    ingest[side].append(sides[side].ingest_s)
            reads = await _reads(sides["plain"], sides["sealed"], rounds)
    finally:
        for found in sides.values():
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
        "customers": len(sides["plain"].customers),
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
