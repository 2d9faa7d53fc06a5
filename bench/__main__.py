"""`make bench`: ingest throughput and freshness against the raw JetStream publish rate.

Everything runs on this machine in one process tree: a real nats-server, the embedded store
(or MONGODB_URI), the timeline, a chat ingestion service and the gateway. The baseline is
the rate at which this machine's nats-server stores pipelined publishes of the same payload,
so the ratios say how much of the bus's capacity Tsunagu's pipeline delivers, whatever the
machine. A second baseline, one-by-one inserts into the same store, shows how many store round
trips recording one interaction costs (the end-to-end rate is bound by the store).
Identity benchmarks (bench/identity.py) run against the same store: resolution throughput
through the recorder, against the raw insert rate, and merge/split latency of two customers
of 10,000 interactions each, against one `update_many` over their documents.
Benchmarks report; they never fail the test suite. `--quick` runs everything smaller.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.js.api import StorageType, StreamConfig
from pymongo import AsyncMongoClient

from bench import live_view
from bench.identity import merge_split_latency, resolution_throughput
from bench.interactions import inbound
from bench.stack import (
    TENANT,
    bench_stack,
    chat_and_timeline,
    chat_channel,
    submit_batches,
    wait_stored,
)
from bench.stats import percentile
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import (
    ingest_pb2,
    ingest_pb2_grpc,
    interaction_pb2,
)


def _chat(i: int, run: str, at: datetime) -> interaction_pb2.Interaction:
    pb = interaction_pb2
    visitor = pb.Identifier(kind=pb.IDENTIFIER_KIND_CHAT_VISITOR, value=f"{run}-visitor-{i % 50}")
    return inbound(
        TENANT,
        pb.CHANNEL_CHAT,
        pb.KIND_MESSAGE,
        at,
        [visitor],
        content=pb.Content(text=f"message {i}: my delivery is late " * 4),
        chat=pb.ChatDetail(session_id=f"{run}-session-{i % 50}"),
    )


async def raw_publish_rate(nats_url: str, payload: bytes, count: int) -> float:
    """Baseline: pipelined JetStream publishes with PubAcks, on the same server."""
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


async def raw_insert_rate(mongodb_uri: str, payload: bytes, count: int) -> float:
    """Second baseline: one awaited insert_one per document, on the same store."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    collection = client["bench_raw"]["docs"]
    started = time.perf_counter()
    for i in range(count):
        await collection.insert_one({"i": i, "raw": payload, "at": datetime.now(UTC)})
    elapsed = time.perf_counter() - started
    await client.drop_database("bench_raw")
    await client.close()
    return count / elapsed


async def end_to_end(stack: LocalStack, count: int, batch: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:6]
    base = datetime.now(UTC) - timedelta(hours=1)
    items = [_chat(i, run, base + timedelta(milliseconds=i)) for i in range(count)]
    async with chat_and_timeline(stack) as (ingest, timeline):
        started = time.perf_counter()
        await submit_batches(ingest, items, batch)
        acked = time.perf_counter() - started
        await wait_stored(timeline, TENANT, [i.event_id for i in items], limit_s=600)
        stored = time.perf_counter() - started
    return {"ingest_acked_per_s": count / acked, "stored_per_s": count / stored}


async def freshness(stack: LocalStack, samples: int) -> list[float]:
    """Seconds from a Submit acknowledgement until GraphQL shows the interaction."""
    query = """query($v: String!) { customerByIdentifier(kind: CHAT_VISITOR, value: $v) {
        timeline(first: 1) { edges { node { eventId } } } } }"""
    latencies = []
    agent = {"authorization": f"Bearer {stack.issuer.mint(tenant=TENANT, roles=['agent'])}"}
    async with (
        chat_channel(stack) as ch,
        httpx.AsyncClient(timeout=10) as http,
    ):
        ingest = ingest_pb2_grpc.IngestServiceStub(ch)
        visitor = f"fresh-{uuid.uuid4().hex[:6]}"
        for i in range(samples):
            item = _chat(i, "fresh", datetime.now(UTC))
            item.identifiers[0].value = visitor
            await ingest.Submit(ingest_pb2.SubmitRequest(interaction=item))
            acked = time.perf_counter()
            while time.perf_counter() - acked < 30:
                response = await http.post(
                    stack.graphql_url,
                    json={"query": query, "variables": {"v": visitor}},
                    headers=agent,
                )
                data: Any = response.json().get("data") or {}
                customer = data.get("customerByIdentifier")
                edges = customer["timeline"]["edges"] if customer else []
                if edges and edges[0]["node"]["eventId"] == item.event_id:
                    break
                await asyncio.sleep(0.002)
            else:
                raise TimeoutError(f"interaction {item.event_id} never visible through GraphQL")
            latencies.append(time.perf_counter() - acked)
    return latencies


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with bench_stack() as stack:
        payload = _chat(0, "size", datetime.now(UTC)).SerializeToString()
        raw = await raw_publish_rate(stack.nats_url, payload, args.raw_count)
        raw_store = await raw_insert_rate(stack.mongodb_uri, payload, args.store_count)
        e2e = await end_to_end(stack, args.count, args.batch)
        fresh = await freshness(stack, args.samples)
        resolution = await resolution_throughput(
            stack.mongodb_uri, args.identity_count, args.identity_batch
        )
        merge_split = await merge_split_latency(stack.mongodb_uri, args.merge_size)
        live = await live_view.measure(stack, TENANT, live_view.LiveViewSizes.from_args(args))
    return {
        "machine": {"cpus": os.cpu_count()},
        "payload_bytes": len(payload),
        "baseline_raw_jetstream_publish_per_s": raw,
        "baseline_raw_store_insert_per_s": raw_store,
        **e2e,
        "stored_vs_store_inserts": e2e["stored_per_s"] / raw_store,
        "ingest_vs_raw": e2e["ingest_acked_per_s"] / raw,
        "stored_vs_raw": e2e["stored_per_s"] / raw,
        "identity_resolution": {
            **resolution,
            "vs_store_inserts": resolution["per_s"] / raw_store,
        },
        "merge_split": merge_split,
        "freshness_ms": {
            "p50": 1000 * statistics.median(fresh),
            "p99": 1000 * percentile(fresh, 0.99),
            "samples": len(fresh),
        },
        "live_view": live,
    }


def _report(result: dict[str, Any]) -> str:
    raw = result["baseline_raw_jetstream_publish_per_s"]
    fresh = result["freshness_ms"]
    resolution, ms = result["identity_resolution"], result["merge_split"]
    return "\n".join(
        [
            f"payload: {result['payload_bytes']} bytes per interaction",
            f"{'measure':44} {'per second':>12} {'vs baseline':>12}",
            f"{'baseline: raw JetStream publish (pipelined)':44} {raw:12,.0f} {1:12.3f}",
            f"{'gRPC SubmitBatch acknowledged (durable)':44} "
            f"{result['ingest_acked_per_s']:12,.0f} {result['ingest_vs_raw']:12.3f}",
            f"{'SubmitBatch → stored and queryable':44} "
            f"{result['stored_per_s']:12,.0f} {result['stored_vs_raw']:12.3f}",
            f"{'baseline: store insert_one (awaited, one by one)':44} "
            f"{result['baseline_raw_store_insert_per_s']:12,.0f}",
            f"{'SubmitBatch → stored, vs store inserts':44} {'':12} "
            f"{result['stored_vs_store_inserts']:12.3f}",
            f"freshness, Submit ack → visible in GraphQL: p50 {fresh['p50']:.1f} ms, "
            f"p99 {fresh['p99']:.1f} ms over {fresh['samples']} samples",
            f"{'identity: record_batch (create/attach/merge)':44} "
            f"{resolution['per_s']:12,.0f} {resolution['vs_store_inserts']:12.3f}"
            "  (vs store inserts)",
            f"merge / split of two customers of {ms['interactions_per_customer']:,} "
            f"interactions each: merge {ms['merge_s']:.2f} s "
            f"({ms['merge_vs_update_many']:.2f}x), split {ms['split_s']:.2f} s "
            f"({ms['split_vs_update_many']:.2f}x) vs one update_many over them "
            f"{ms['update_many_s']:.2f} s",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--count", type=int, default=2000, help="interactions end to end")
    parser.add_argument("--batch", type=int, default=200, help="SubmitBatch size")
    parser.add_argument("--raw-count", type=int, default=20000, help="baseline publishes")
    parser.add_argument("--store-count", type=int, default=2000, help="baseline inserts")
    parser.add_argument("--samples", type=int, default=50, help="freshness samples")
    parser.add_argument("--identity-count", type=int, default=2000, help="events resolved")
    parser.add_argument("--identity-batch", type=int, default=64, help="record_batch size")
    parser.add_argument(
        "--merge-size", type=int, default=10_000, help="interactions per merged customer"
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--out", type=Path, default=Path("bench-results/latest.json"))
    live_view.add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.count, args.raw_count, args.store_count, args.samples = 300, 2000, 300, 10
        args.identity_count, args.merge_size = 400, 1000
        args.live_seconds, args.page_seed, args.page_requests = 3.0, 500, 5
        args.page_deep = 5
    result = asyncio.run(main(args))
    print(_report(result))
    print(live_view.report(result["live_view"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"written to {args.out}")
