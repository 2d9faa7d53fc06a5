"""`python -m bench.insights_fold`: what folding cases' facts costs insights on the store.

The insights projector alone, on the embedded store (or MONGODB_URI): `--cases` cases of
`--events` events each (a customer's message and an agent's answer in turn, then a
resolution and a CSAT), their notices applied in time order in batches of 200 (the feed's
`fetch_batch`), each carrying its entry. Reported: how many events the folds read back and
in how many queries, the insights store commands (a command listener on its client), and the
store process's CPU (embedded store only). Run it on two versions to compare them
(docs/scaling.md, "Insights folds incrementally (issue 11)").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
from pymongo import AsyncMongoClient

from services.insights.events import CaseEvent
from services.insights.projector import Projector
from services.insights.store import InsightsStore
from services.timeline.store.command_counts import CommandCounts
from tsunagu.local.processes import MongoWireStore
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import notices_pb2, timeline_pb2

TENANT = "bench-fold"
_BATCH = 200
_T0 = 1_767_225_600.0
_Doc = dict[str, Any]


def _notice(case: int, n: int, last: int) -> notices_pb2.TimelineUpdated:
    """Event `n` of case `case` (cases open 7 s apart, events 5 minutes apart)."""
    i = pb.Interaction(tenant=TENANT, event_id=f"case-{case}-{n}")
    i.occurred_at.FromNanoseconds(int((_T0 + case * 7.0 + n * 300.0) * 1e9))
    if n >= last - 1:
        i.channel, i.kind, i.direction = (
            pb.CHANNEL_AGENT_DESK,
            pb.KIND_NOTE,
            pb.DIRECTION_INTERNAL,
        )
        i.actor.CopyFrom(pb.Actor(type=pb.ACTOR_TYPE_AGENT, id="agent-1"))
        if n == last - 1:
            i.agent_action.resolution.SetInParent()
        else:
            i.agent_action.csat.score = 4
    else:
        inbound = n % 2 == 0
        i.channel, i.kind = pb.CHANNEL_CHAT, pb.KIND_MESSAGE
        i.direction = pb.DIRECTION_INBOUND if inbound else pb.DIRECTION_OUTBOUND
        i.actor.CopyFrom(
            pb.Actor(type=pb.ACTOR_TYPE_CUSTOMER)
            if inbound
            else pb.Actor(type=pb.ACTOR_TYPE_AGENT, id="agent-1")
        )
        i.conversation_ref = f"conv-{case}"
    entry = timeline_pb2.TimelineEntry(
        interaction=i, customer_id=f"cust-{case}", case_id=f"case-{case}"
    )
    entry.recorded_at.CopyFrom(i.occurred_at)
    return notices_pb2.TimelineUpdated(
        tenant=TENANT,
        customer_id=entry.customer_id,
        event_id=i.event_id,
        case_id=entry.case_id,
        entry=entry,
    )


def notices(cases: int, events: int) -> list[notices_pb2.TimelineUpdated]:
    """Every case's notices, in the time order their events happened."""
    made = [_notice(c, n, events - 1) for c in range(cases) for n in range(events)]
    return sorted(made, key=lambda m: (m.entry.interaction.occurred_at.ToNanoseconds(), m.event_id))


class CountedStore(InsightsStore):
    """The insights store, counting the events its folds read back."""

    queries = 0
    events_read = 0

    async def events_of_cases(
        self, tenant: str, case_ids: Iterable[str]
    ) -> dict[str, list[CaseEvent]]:
        found = await super().events_of_cases(tenant, case_ids)
        self.queries += 1
        self.events_read += sum(len(events) for events in found.values())
        return found


async def _never(_tenant: str, _ids: Sequence[str]) -> Sequence[timeline_pb2.TimelineEntry]:
    raise AssertionError("the notices carry their entries")


@asynccontextmanager
async def _store_uri() -> AsyncIterator[tuple[str, int | None]]:
    if uri := os.environ.get("MONGODB_URI"):
        yield uri, None
        return
    with tempfile.TemporaryDirectory(prefix="tsunagu-fold-") as tmp:
        async with MongoWireStore(Path(tmp) / "store", sink=lambda _n, _l: None) as server:
            yield server.uri, server.pid


def _cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def measure(cases: int, events: int) -> dict[str, Any]:
    """Apply the notices through a projector; what it cost."""
    async with _store_uri() as (uri, pid):
        counts = CommandCounts()
        client: AsyncMongoClient[_Doc] = AsyncMongoClient(
            uri, tz_aware=True, event_listeners=[counts]
        )
        try:
            await client.drop_database("bench_fold_insights")
            store = CountedStore(client["bench_fold_insights"])
            await store.ensure_indexes()
            projector = Projector(store, read_many=_never, follow_up_due_seconds=86_400.0)
            todo = notices(cases, events)
            start, cpu = time.perf_counter(), _cpu(pid)
            before = sum(t["count"] for t in counts.snapshot()["commands"].values())
            for at in range(0, len(todo), _BATCH):
                outcomes = await projector.apply(todo[at : at + _BATCH])
                if failed := [o for o in outcomes if isinstance(o, Exception)]:
                    raise failed[0]
            seconds, cpu = time.perf_counter() - start, _cpu(pid) - cpu
            commands = sum(t["count"] for t in counts.snapshot()["commands"].values()) - before
            await client.drop_database("bench_fold_insights")
        finally:
            await client.close()
    return {
        "events": len(todo),
        "seconds": round(seconds, 2),
        "store_cpu_ms_per_event": round(1000 * cpu / len(todo), 3) if pid else None,
        "store_commands": commands,
        "fold_queries": store.queries,
        "events_read_back": store.events_read,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.insights_fold")
    parser.add_argument("--cases", type=int, default=600)
    parser.add_argument("--events", type=int, default=10)
    arguments = parser.parse_args()
    print(asyncio.run(measure(arguments.cases, arguments.events)))
