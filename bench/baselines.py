"""Baselines measured in the same run on the same processes: what the bus and the store can do."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import nats
from nats.js.api import StorageType, StreamConfig
from pymongo import AsyncMongoClient

from bench.ingest import contact_centre_mix
from bench.usage import store_cpu_s
from services.timeline.interactions.entries import interaction_document
from services.timeline.store.documents import IdentifierDoc
from tsunagu.local.stack import LocalStack

# The baseline: `insert_many` of this many similar documents at a time.
INSERT_BATCH = 256


async def raw_publish_rate(nats_url: str, payload: bytes, count: int) -> float:
    """Pipelined JetStream publishes with PubAcks, on the same server."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(name="BENCH_RAW", subjects=["benchraw.>"], storage=StorageType.FILE)
    )
    started = time.perf_counter()
    futures = [
        await js.publish_async("benchraw.x", payload, headers={"Nats-Msg-Id": str(uuid.uuid4())})
        for _ in range(count)
    ]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await js.delete_stream("BENCH_RAW")
    await nc.close()
    return count / elapsed


async def insert_many_rate(stack: LocalStack, count: int) -> dict[str, Any]:
    """The store's own rate: `insert_many` of batches of 256 interaction log entries (the
    recorder's document shape, chat messages of 1/10 as many customers) into an empty
    collection, and the store's CPU per document meanwhile.
    """
    mix = contact_centre_mix(count, max(1, count // 10))
    now = datetime.now(UTC)
    docs = []
    for n, item in enumerate(mix.items):
        ident: IdentifierDoc = {"kind": "chat_visitor", "value": item.identifiers[0].value}
        entry = interaction_document(
            item,
            customer_id=f"customer-{n % mix.customers}",
            occurred_at=now,
            recorded_at=now,
            identifiers=[ident],
        )
        docs.append({**entry, "projected": True})
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_uri)
    collection = client[f"bench_raw_{uuid.uuid4().hex[:6]}"]["interactions"]
    try:
        cpu_before = store_cpu_s(stack)
        started = time.perf_counter()
        for offset in range(0, len(docs), INSERT_BATCH):
            await collection.insert_many(docs[offset : offset + INSERT_BATCH], ordered=False)
        elapsed = time.perf_counter() - started
        cpu_after = store_cpu_s(stack)
        await client.drop_database(collection.database.name)
    finally:
        await client.close()
    store_ms = (
        None if cpu_before is None or cpu_after is None else 1000 * (cpu_after - cpu_before) / count
    )
    return {
        "documents": count,
        "batch": INSERT_BATCH,
        "per_s": count / elapsed,
        "store_cpu_ms_per_document": store_ms,
        "commands_per_document": 1 / INSERT_BATCH,
    }
