"""`make bench`: issue 11's targets, each against a baseline measured in the same run.

Everything runs on this machine in one process tree: a real nats-server, the embedded store
(or MONGODB_URI), the timeline, a chat ingestion service and the gateway.

- Baselines: pipelined JetStream publishes on the same nats-server; the store's own
  `insert_many` rate (batches of 256 log entries into an empty collection) and its CPU per
  document (`bench.baselines`).
- End-to-end ingest of a contact centre's mix, with store commands, store and timeline CPU
  per event, and whether the rate stays flat as the store grows (`bench.ingest`).
- Store round trips per batch on the attach path (`bench.attach_path`), and its rate as the
  store grows ten-fold (`bench.store_growth`).
- Identity resolution, merge and split (`bench.identity`); the live view: push freshness
  under other customers' traffic and timeline pages deep in by cursors (`bench.live_view`).
- Voice of the customer (issue 13): topic quality on the labelled data set against the same
  clustering without the glossary, rebuild time against vectorising alone, assignment
  (`bench.voc`).

One table at the end: target, measured, baseline, ratio, the issue's target, met. Benchmarks
report; they never fail (exit 0 whatever the figures). `--quick` is a smoke run (the test
suite runs it), the default takes a few minutes, `--full` the issue's sizes (long).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats

from bench import insights, live_view, voc
from bench.attach_path import round_trips_per_batch
from bench.baselines import insert_many_rate, raw_publish_rate
from bench.encryption import encryption_cost, encryption_rows
from bench.export import export_row, export_timing, size_for
from bench.identity import merge_split_latency, resolution_throughput
from bench.ingest import contact_centre_mix, end_to_end
from bench.sizes import QUICK_LIVE, Sizes
from bench.stack import TENANT, bench_stack
from bench.store_growth import attach_growth, growth_row
from bench.targets import rows, table
from tsunagu.bus.streams import TIMELINE_OUTCOMES_STREAM
from tsunagu.local.stack import LocalStack


async def _growth(stack: LocalStack, sizes: Sizes, ingest: dict[str, Any]) -> dict[str, Any]:
    if sizes.growth_events <= sizes.events:
        return {**ingest["flatness"], "events": ingest["events"]}
    mix = contact_centre_mix(sizes.growth_events, sizes.growth_events // 10)
    run = await end_to_end(stack, mix, batch=sizes.batch, window=sizes.window, limit_s=7200)
    return {**run["flatness"], "events": run["events"], "stored_per_s": run["stored_per_s"]}


async def _without_insights(stack: LocalStack, sizes: Sizes) -> dict[str, Any]:
    """The same end-to-end load with the insights service held down, on a store of about the
    same size: insights shares the one embedded store (and the two cores) in this stack, and
    this shows what the timeline's path costs alone. Then insights takes the notices it missed
    before the next measure starts.
    """
    async with stack.held_down("insights"):
        mix = contact_centre_mix(sizes.events, sizes.customers)
        alone = await end_to_end(stack, mix, batch=sizes.batch, window=sizes.window, limit_s=3600)
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            info = await js.consumer_info(TIMELINE_OUTCOMES_STREAM, "insights")
            if info.num_pending == 0 and info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.5)
    finally:
        await nc.close()
    return alone


async def main(
    sizes: Sizes, live: live_view.LiveViewSizes, mode: str = "default"
) -> dict[str, Any]:
    """Every measure on one stack; the result as JSON-ready data."""
    async with bench_stack() as stack:
        payload = contact_centre_mix(1, 1).items[0].SerializeToString()
        publish = await raw_publish_rate(stack.nats_url, payload, sizes.publishes)
        inserts = await insert_many_rate(stack, sizes.inserts)
        mix = contact_centre_mix(sizes.events, sizes.customers)
        ingest = await end_to_end(stack, mix, batch=sizes.batch, window=sizes.window, limit_s=3600)
        growth = await _growth(stack, sizes, ingest)
        alone = await _without_insights(stack, sizes)
        attach = await round_trips_per_batch(stack.mongodb_uri, sizes.attach_sizes)
        attach_grown = await attach_growth(
            stack.mongodb_uri,
            [sizes.growth_customers, 10 * sizes.growth_customers],
            batches=sizes.growth_batches,
        )
        resolution = await resolution_throughput(
            stack.mongodb_uri, sizes.identity_events, sizes.identity_batch
        )
        merge_split = await merge_split_latency(stack.mongodb_uri, sizes.merge_size)
        live_result = await live_view.measure(stack, TENANT, live)
        export = await export_timing(stack, TENANT, size_for(sizes.events))
        # Encryption's cost against the plain path, on the same store (docs/privacy.md).
        encryption = await encryption_cost(stack.mongodb_uri, max(40, sizes.identity_events // 5))
        # Issue 13: metric query latency and freshness of the insights service.
        insight_result = await insights.measure(stack, mode)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count()},
        "sizes": asdict(sizes),
        "payload_bytes": len(payload),
        "baselines": {"jetstream_publish_per_s": publish, "insert_many": inserts},
        "ingest": {**ingest, "acked_vs_publish": ingest["acked_per_s"] / publish},
        "ingest_without_insights": alone,
        "growth": growth,
        "attach_path": attach,
        "attach_growth": attach_grown,
        "identity_resolution": resolution,
        "merge_split": merge_split,
        "live_view": live_result,
        "export": export,
        "encryption": encryption,
        "insights": insight_result,
        "voc": voc.measure(sizes.voc_messages),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run (< 1 min)")
    mode.add_argument("--full", action="store_true", help="the issue's sizes (takes long)")
    parser.add_argument("--events", type=int, help="end-to-end events")
    parser.add_argument("--customers", type=int, help="customers they come from")
    parser.add_argument("--growth-events", type=int, help="a longer run for flatness")
    parser.add_argument("--window", type=int, help="events per flatness window")
    parser.add_argument("--out", type=Path, default=Path("bench-results/latest.json"))
    live_view.add_arguments(parser)
    return parser


def _sizes(args: argparse.Namespace) -> tuple[Sizes, live_view.LiveViewSizes]:
    sizes = Sizes.of("quick" if args.quick else "full" if args.full else "default")
    overrides = {
        name: getattr(args, name)
        for name in ("events", "customers", "growth_events", "window")
        if getattr(args, name) is not None
    }
    live = QUICK_LIVE if args.quick else live_view.LiveViewSizes.from_args(args)
    return replace(sizes, **overrides), live


if __name__ == "__main__":
    arguments = _parser().parse_args()
    mode = "quick" if arguments.quick else "full" if arguments.full else "default"
    result = asyncio.run(main(*_sizes(arguments), mode=mode))
    print(live_view.report(result["live_view"]))
    # issue 11's rows, then issue 12's, then issue 13's
    targets = [
        *rows(result),
        growth_row(result),
        export_row(result),
        *encryption_rows(result),
        *insights.rows(result),
        *voc.rows(result),
    ]
    result["targets"] = [asdict(t) for t in targets]
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(result, indent=2))
    print(f"written to {arguments.out}\n")
    print(f"issue 11 targets ({result['measured_at']}, {os.cpu_count()} cores)")
    print(table(targets))
