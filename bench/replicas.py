"""`python -m bench.replicas`: does a second timeline replica raise the end-to-end rate here?

The same ingest load (`bench.ingest`) runs twice on one stack: with the stack's one timeline,
then with a second timeline process beside it, started with the first one's settings (same
durable consumer, so the two share the stream's batches) on a port of its own. Reported: the
rate of each run and the CPU per event of the store and of the timelines together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

from bench.ingest import contact_centre_mix, end_to_end
from bench.stack import bench_stack
from bench.usage import COUNTS_SETTING, cpu_seconds
from tsunagu.local.processes import ManagedProcess
from tsunagu.local.stack import LocalStack


def _cpu_s(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


async def _run(stack: LocalStack, pids: dict[str, list[int]], events: int, customers: int) -> Any:
    before = {name: _cpu_s(p) for name, p in pids.items()}
    mix = contact_centre_mix(events, customers)
    run = await end_to_end(stack, mix, batch=256, window=events // 5, limit_s=3600)
    return {
        "stored_per_s": run["stored_per_s"],
        "cpu_ms_per_event": {
            name: 1000 * (_cpu_s(p) - before[name]) / events for name, p in pids.items()
        },
    }


async def compare(events: int, customers: int, *, without_insights: bool) -> dict[str, Any]:
    """The load with one timeline replica, then with two (insights held down if asked)."""
    async with bench_stack() as stack, AsyncExitStack() as held:
        if without_insights:
            await held.enter_async_context(stack.held_down("insights"))
        first = stack.processes["timeline"]
        pids = {"store": [stack.processes["store"].pid], "timelines": [first.pid]}
        one = await _run(stack, pids, events, customers)
        env = {
            **first.env,
            "TSUNAGU_TIMELINE_PORT": "0",
            # Its own counts file: the first replica's is the one `bench.usage` reads.
            COUNTS_SETTING: str(stack.data_dir / "store-command-counts-2.json"),
        }
        second = ManagedProcess(
            "timeline-2",
            first.argv,
            ready_pattern=r"timeline ready on (\S+:(?P<port>\d+))",
            env=env,
            inherit_environment=False,
            sink=lambda _name, _line: None,
        )
        async with second:
            pids["timelines"].append(second.pid)
            two = await _run(stack, pids, events, customers)
    return {
        "events": events,
        "customers": customers,
        "insights": not without_insights,
        "one_replica": one,
        "two_replicas": two,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.replicas")
    parser.add_argument("--events", type=int, default=3_000)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument(
        "--without-insights", action="store_true", help="hold the insights service down"
    )
    arguments = parser.parse_args()
    result = compare(
        arguments.events, arguments.customers, without_insights=arguments.without_insights
    )
    print(json.dumps(asyncio.run(result), indent=2))
