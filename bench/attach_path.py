"""Store round trips per batch on the attach path, counted with a pymongo command listener.

The recorder runs in this process over a fresh database (as in `bench.identity`). Customers
are created first, one chat message each (which also opens a case per customer); then
batches of 1, 16, 64 and 256 messages of those customers go through `record_batch`, each
message attaching to its customer and its open case, then `mark_announced` (the flags the
consumer writes once the batch's notices are out), and every command the batch sends to the
store is counted: the issue's bound is 3 per batch, whatever the batch size. Baseline: one
`insert_many`, the single round trip that stores a batch.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bench.identity import T0, TENANT, BenchStore
from bench.interactions import inbound
from services.timeline.recorder import Recorded
from services.timeline.store.command_counts import CommandCounts, CountsSnapshot
from tsunagu.v1 import interaction_pb2 as pb

SIZES = (1, 16, 64, 256)


def chat_message(run: str, customer: int, at: timedelta) -> pb.Interaction:
    """Chat visitor `customer`'s message of run `run`, `at` after the benchmarks' T0."""
    return inbound(
        TENANT,
        pb.CHANNEL_CHAT,
        pb.KIND_MESSAGE,
        T0 + at,
        [pb.Identifier(kind=pb.IDENTIFIER_KIND_CHAT_VISITOR, value=f"{run}-v{customer}")],
        content=pb.Content(text="where is my parcel?"),
        chat=pb.ChatDetail(session_id=f"{run}-session-{customer}"),
    )


def _messages(run: str, customers: int, minute: int) -> list[pb.Interaction]:
    return [
        chat_message(run, k, timedelta(minutes=minute, milliseconds=k)) for k in range(customers)
    ]


def _commands(snapshot: CountsSnapshot) -> Counter[str]:
    return Counter({key: tally["count"] for key, tally in snapshot["commands"].items()})


async def round_trips_per_batch(mongodb_uri: str, sizes: Sequence[int] = SIZES) -> dict[str, Any]:
    """Store commands of one attach-only `record_batch` of each size, by command."""
    counts = CommandCounts()
    run = uuid.uuid4().hex[:6]
    per_size: dict[str, Any] = {}
    async with BenchStore(mongodb_uri, [counts]) as bench:
        for batch in _chunks(_messages(run, max(sizes), 0), 64):
            await bench.recorder.record_batch(batch)
        for minute, size in enumerate(sizes, start=1):
            batch = _messages(run, size, minute)
            before = _commands(counts.snapshot())
            outcomes = await bench.recorder.record_batch(batch, marks_with_notices=True)
            recorded = [o for o in outcomes if isinstance(o, Recorded)]
            await bench.recorder.mark_announced(recorded)  # as the consumer, after the notices
            spent = _commands(counts.snapshot()) - before
            attached = [o for o in recorded if not o.merged_ids]
            assert len(attached) == size, outcomes[:3]
            per_size[str(size)] = {
                "round_trips": sum(spent.values()),
                "by_command": dict(spent.most_common()),
            }
    worst = max(v["round_trips"] for v in per_size.values())
    return {"per_batch_size": per_size, "max_round_trips_per_batch": worst, "baseline": 1}


def _chunks(items: list[pb.Interaction], size: int) -> list[list[pb.Interaction]]:
    return [items[offset : offset + size] for offset in range(0, len(items), size)]
