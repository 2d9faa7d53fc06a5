"""The attach path as the store grows: the same batches of returning customers' messages
recorded against a store of few customers, then of ten times as many.

The recorder runs in this process over a fresh database (as in `bench.attach_path`). Each
step first adds new customers (one chat message each, which opens a case and claims an
identifier) until the store holds the step's number, then records `batches` batches of
`batch` messages from customers picked across all of them, each attaching to its customer's
open case. Reported per step: the rate, and the store time of the batch's reads and writes
(a command listener's round-trip seconds). Baseline: the first step, in the same run; the
issue's bound for flatness is 0.8x. The end-to-end flatness row measures the whole path over
a short run; this one grows the store ten-fold on the path whose reads used to be scans.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bench.attach_path import chat_message
from bench.identity import BenchStore
from bench.stack import bench_stack
from bench.targets import Row
from services.timeline.recorder import Recorded
from services.timeline.store.command_counts import CommandCounts, CommandTally

_SEED_BATCH = 256
# Batches recorded at each step before the timed ones (the first reads of a grown store).
_WARM_UP = 2


def _seconds(counts: CommandCounts, prefix: str) -> float:
    tallies: dict[str, CommandTally] = counts.snapshot()["commands"]
    return sum(t["seconds"] for key, t in tallies.items() if key.startswith(prefix))


async def _attach(bench: BenchStore, run: str, customers: list[int], minute: int) -> None:
    """One batch of these customers' messages, each attaching to its customer's open case."""
    at = timedelta(days=1, minutes=minute)
    outcomes = await bench.recorder.record_batch(
        [chat_message(run, k, at + timedelta(milliseconds=i)) for i, k in enumerate(customers)]
    )
    attached = [o for o in outcomes if isinstance(o, Recorded) and not o.duplicate]
    if len(attached) != len(customers):
        raise RuntimeError(f"an attach batch recorded {len(attached)} of {len(customers)}")


async def attach_growth(
    mongodb_uri: str, steps: Sequence[int], *, batches: int = 20, batch: int = 64
) -> dict[str, Any]:
    """Attach rate with the store at each of `steps` customers (ascending)."""
    counts = CommandCounts()
    run = uuid.uuid4().hex[:6]
    picker = random.Random(11)  # noqa: S311 - a benchmark's mix, not a secret
    measured: list[dict[str, Any]] = []
    async with BenchStore(mongodb_uri, [counts]) as bench:
        seeded = 0
        for step, customers in enumerate(steps, start=1):
            for start in range(seeded, customers, _SEED_BATCH):
                stop = min(customers, start + _SEED_BATCH)
                await bench.recorder.record_batch(
                    [chat_message(run, k, timedelta(seconds=k)) for k in range(start, stop)]
                )
            seeded = customers
            minute = step * (batches + _WARM_UP)
            for b in range(_WARM_UP):
                await _attach(bench, run, picker.sample(range(customers), batch), minute + b)
            reads, started = _seconds(counts, "find:"), time.perf_counter()
            for b in range(_WARM_UP, _WARM_UP + batches):
                await _attach(bench, run, picker.sample(range(customers), batch), minute + b)
            took = time.perf_counter() - started
            measured.append(
                {
                    "customers": customers,
                    "events": batches * batch,
                    "per_s": batches * batch / took,
                    "read_ms_per_batch": 1000 * (_seconds(counts, "find:") - reads) / batches,
                }
            )
    first, last = measured[0], measured[-1]
    return {"steps": measured, "last_vs_first": last["per_s"] / first["per_s"]}


def growth_row(result: dict[str, Any]) -> Row:
    """The attach path's flatness row of the table."""
    growth = result["attach_growth"]
    first, last = growth["steps"][0], growth["steps"][-1]
    return Row(
        f"attach path flat as the store grows: {last['customers']:,} vs "
        f"{first['customers']:,} customers",
        f"{last['per_s']:,.0f}/s (reads {last['read_ms_per_batch']:.1f} ms/batch)",
        f"{first['per_s']:,.0f}/s (reads {first['read_ms_per_batch']:.1f} ms/batch)",
        growth["last_vs_first"],
        "≥ 0.8×",
        growth["last_vs_first"] >= 0.8,
    )


async def measure_alone(steps: Sequence[int], batches: int) -> dict[str, Any]:
    async with bench_stack() as stack:
        return await attach_growth(stack.mongodb_uri, steps, batches=batches)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.store_growth")
    parser.add_argument("--steps", type=int, nargs="+", default=[2_000, 20_000])
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure_alone(args.steps, args.batches)), indent=2))
