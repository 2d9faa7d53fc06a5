"""The cost of encryption: the same work with `TSUNAGU_KEY_FILE` set and unset, in one run.

- Ingest: an event sealed for the bus (a data key of its own, wrapped by the tenant's KEK),
  opened by the consumer, then recorded with every personal field sealed at the store
  boundary — against the same mix recorded in the clear. Customers are created, attached
  to and merged, as in `bench.identity`.
- Reads: pages of a customer's timeline and the customer's profile, opened — against the
  same pages of the plain database.

Each side runs twice, alternating, and keeps its faster run: the machine is shared, and a
ratio of two noisy figures is noisier still.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
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


async def _side(
    client: AsyncMongoClient[Document], events: Sequence[pb.Interaction], key_file: Path | None
) -> dict[str, float]:
    """Seconds to bring `events` in (sealed or not) and to read them back, on a fresh database."""
    name = f"bench_crypto_{uuid.uuid4().hex[:8]}"
    provider = None if key_file is None else LocalKeyFile(key_file)
    store = TimelineStore(client[name], provider=provider)
    await store.ensure_indexes()
    recorder = build_core(store, identity_for=lambda _tenant: IdentityPolicy("JP")).recorder
    sealer = None if provider is None else BusSealer(provider)
    try:
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
        reads = await _read_all(store, customers)
        if store.keys is not None:
            store.keys.forget_all()  # every customer's key read from the store again
        cold = await _read_all(store, customers)
    finally:
        await client.drop_database(name)
    return {"ingest_s": ingest, "reads_s": reads, "cold_reads_s": cold, "customers": len(customers)}


async def _read_all(store: TimelineStore, customers: Sequence[str]) -> float:
    """Seconds to read each customer's profile and first page."""
    started = time.perf_counter()
    for customer_id in customers:
        await store.customers.get_customers(TENANT, [customer_id])
        await store.interactions.list_interactions(TENANT, customer_id, limit=PAGE)
    return time.perf_counter() - started


async def encryption_cost(mongodb_uri: str, count: int) -> dict[str, Any]:
    """Ingest and read time with encryption on, each as a ratio to the plain path."""
    events = _mix(count)
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "sealed": []}
    try:
        with tempfile.TemporaryDirectory() as keys:
            for _ in range(2):
                for side, key_file in (("plain", None), ("sealed", Path(keys) / "keys.json")):
                    # Fresh event ids per run: each side records the same mix, new to it.
                    fresh = [pb.Interaction.FromString(e.SerializeToString()) for e in events]
                    for event in fresh:
                        event.event_id = str(uuid.uuid4())
                    runs[side].append(await _side(client, fresh, key_file))
    finally:
        await client.close()
    best = {
        side: {k: min(r[k] for r in found) for k in ("ingest_s", "reads_s", "cold_reads_s")}
        for side, found in runs.items()
    }
    return {
        "events": len(events),
        "customers": runs["plain"][0]["customers"],
        "plain": best["plain"],
        "sealed": best["sealed"],
        "ingest_ratio": best["sealed"]["ingest_s"] / best["plain"]["ingest_s"],
        "reads_ratio": best["sealed"]["reads_s"] / best["plain"]["reads_s"],
        "cold_reads_ratio": best["sealed"]["cold_reads_s"] / best["plain"]["cold_reads_s"],
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
