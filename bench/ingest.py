"""End-to-end ingest of a contact centre's traffic; whether its rate stays flat as the store grows.

The load is chat traffic of `customers` signed-in visitors. New customers arrive at a steady
pace over the whole run (one every `count / customers` messages; the first message creates
the customer and opens a case); every other message comes from a customer already seen,
picked at random, and attaches to it and its open case. So the first and the last events of
a run are the same mix, and only the store's size differs. Every 25th customer's second
message comes from another device (another visitor id, with the customer's email: a second
customer), and its third from the first device with that email too, which merges the two.
Chat identifiers are vouched for by the widget (verified), so they may link customers.

Rate: from the first `SubmitBatch` until `LookupEvents` (through the timeline's API) finds
the last batch stored, projected and queryable, then every event checked. Over the run, the
store's and the timeline's CPU seconds and the timeline's store commands (`bench.usage`).
Flatness: the rate at which the timeline took the first and the last `window` events (their
`recorded_at` stamps), in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from bench.interactions import inbound
from bench.stack import TENANT, bench_stack, chat_and_timeline, submit_batches, wait_stored
from bench.usage import Meter, between
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import timeline_pb2, timeline_pb2_grpc

# One customer in this many writes from two devices first, then is merged.
MERGE_EVERY = 25
# The tail polled for: the last batch, stored last since the timeline takes the stream in order.
_TAIL = 64


@dataclass(frozen=True, slots=True)
class Mix:
    """The interactions to submit, in order, and what they should make of the store."""

    items: list[pb.Interaction]
    customers: int
    merges: int


def _visitor(value: str) -> pb.Identifier:
    return pb.Identifier(kind=pb.IDENTIFIER_KIND_CHAT_VISITOR, value=value, verified=True)


def _email(value: str) -> pb.Identifier:
    return pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=value, verified=True)


def contact_centre_mix(count: int, customers: int) -> Mix:
    """`count` chat messages over `customers` customers (see the module's docstring)."""
    run = uuid.uuid4().hex[:6]
    start = datetime.now(UTC) - timedelta(hours=2)
    every = max(1, count // customers)
    # Seeded: two runs of the same sizes send the same sequence of customers.
    pick = random.Random(count).randrange  # noqa: S311 - a load shape, not a secret
    sent: list[int] = []  # per customer, messages so far
    items = []
    for i in range(count):
        if i % every == 0 and len(sent) < customers:
            sent.append(0)
            c = len(sent) - 1
        else:
            c = pick(len(sent))
        persona = c % MERGE_EVERY == MERGE_EVERY - 1
        identifiers = [_visitor(f"{run}-v{c}")]
        if persona and sent[c] == 1:
            identifiers = [_visitor(f"{run}-w{c}"), _email(f"{run}-{c}@example.com")]
        elif persona and sent[c] == 2:
            identifiers.append(_email(f"{run}-{c}@example.com"))
        sent[c] += 1
        items.append(
            inbound(
                TENANT,
                pb.CHANNEL_CHAT,
                pb.KIND_MESSAGE,
                start + timedelta(milliseconds=i),
                identifiers,
                content=pb.Content(text=f"message {i}: my delivery is late"),
                chat=pb.ChatDetail(session_id=f"{run}-session-{c}"),
            )
        )
    merges = sum(1 for c, n in enumerate(sent) if c % MERGE_EVERY == MERGE_EVERY - 1 and n >= 3)
    return Mix(items, len(sent), merges)


async def _missing(
    timeline: timeline_pb2_grpc.TimelineServiceAsyncStub, event_ids: list[str]
) -> list[str]:
    """The events `LookupEvents` does not find (one pass)."""
    found: set[str] = set()
    for offset in range(0, len(event_ids), 500):
        chunk = event_ids[offset : offset + 500]
        answer = await timeline.LookupEvents(
            timeline_pb2.LookupEventsRequest(tenant=TENANT, event_ids=chunk)
        )
        found.update(f.event_id for f in answer.found)
    return [e for e in event_ids if e not in found]


async def _recorded_at(stack: LocalStack, event_ids: set[str]) -> list[float]:
    """The timeline's `recorded_at` of each event (epoch seconds), oldest first."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_uri, tz_aware=True)
    try:
        # One pass over the tenant rather than `$in` lists: cheaper on the embedded store.
        cursor = client[stack.database]["interactions"].find(
            {"tenant": TENANT}, {"event_id": 1, "recorded_at": 1}
        )
        return sorted(
            [d["recorded_at"].timestamp() async for d in cursor if d["event_id"] in event_ids]
        )
    finally:
        await client.close()


def _window_rates(stamps: list[float], window: int) -> dict[str, float]:
    """Events per second over the first and the last `window` stamps."""
    window = max(2, min(window, len(stamps)))

    def rate(part: list[float]) -> float:
        return (len(part) - 1) / max(part[-1] - part[0], 1e-3)

    first, last = rate(stamps[:window]), rate(stamps[-window:])
    return {
        "window": window,
        "first_per_s": first,
        "last_per_s": last,
        "last_vs_first": last / first,
    }


async def end_to_end(
    stack: LocalStack, mix: Mix, *, batch: int, window: int, limit_s: float
) -> dict[str, Any]:
    """Submit the mix, wait until all of it is queryable; rates, usage and flatness."""
    items, meter = mix.items, Meter(stack)
    ids = [i.event_id for i in items]
    async with chat_and_timeline(stack) as (ingest, timeline):
        before = await meter.sample()
        started = time.perf_counter()
        await submit_batches(ingest, items, batch)
        acked = time.perf_counter() - started
        await wait_stored(timeline, TENANT, ids[-_TAIL:], limit_s=limit_s)
        stored = time.perf_counter() - started
        usage = between(before, await meter.sample())
        late = await _missing(timeline, ids)
        if late:  # stored out of order (a redelivery): the run ends when they are stored too
            await wait_stored(timeline, TENANT, late, limit_s=limit_s)
            stored = time.perf_counter() - started
    stamps = await _recorded_at(stack, set(ids))
    return {
        "events": len(items),
        "customers": mix.customers,
        "merges_expected": mix.merges,
        "batch": batch,
        "acked_per_s": len(items) / acked,
        "stored_per_s": len(items) / stored,
        "stored_s": stored,
        "stored_out_of_order": len(late),
        **usage.per(len(items)),
        "flatness": _window_rates(stamps, window),
    }


async def measure_alone(
    events: int, customers: int, window: int, *, without_insights: bool
) -> dict[str, Any]:
    """The end-to-end measure on a bench stack of its own (insights held down if asked)."""
    async with bench_stack() as stack:
        mix = contact_centre_mix(events, customers)
        if not without_insights:
            return await end_to_end(stack, mix, batch=256, window=window, limit_s=7200)
        async with stack.held_down("insights"):
            return await end_to_end(stack, mix, batch=256, window=window, limit_s=7200)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description="End-to-end ingest alone, e.g. a longer run for flatness than `make bench`.",
    )
    parser.add_argument("--events", type=int, default=6_000)
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--window", type=int, default=1_200, help="events per flatness window")
    parser.add_argument("--without-insights", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(
        measure_alone(
            args.events, args.customers, args.window, without_insights=args.without_insights
        )
    )
    print(json.dumps(result, indent=2))
