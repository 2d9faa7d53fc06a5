"""Identity resolution benchmarks, straight against the store (no bus, no gRPC).

- Resolution throughput: interactions per second through `TimelineRecorder.record_batch` for
  a mix that creates customers, attaches to them and merges them (per group of four events:
  a call from a new phone, a second call from it, an email from a new address, and an email
  carrying both, which merges the two customers). Identifiers are marked verified, as if the
  channels vouched for them: only trusted identifiers link customers. Compare with the
  store's `insert_many` rate.
- Merge and split latency for two customers with `per_customer` interactions each, seeded
  with `insert_many` in the recorder's document shape: an automatic merge (one event linking
  both) and `MergeSplitter.split` of it, against one `update_many` over the same documents.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from bench.baselines import insert_many_rate
from bench.interactions import inbound
from bench.stack import bench_stack
from services.timeline.bootstrap import build_core
from services.timeline.identity.policy import IdentityPolicy
from services.timeline.identity.resolver import Actor
from services.timeline.interactions.entries import interaction_document
from services.timeline.recorder import Recorded, TimelineRecorder
from services.timeline.store.command_counts import CommandCounts, CommandTally
from services.timeline.store.documents import Document, IdentifierDoc
from services.timeline.stores import TimelineStore
from tsunagu.v1 import interaction_pb2 as pb

TENANT = "bench-identity"
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def _call(number: str, at: datetime) -> pb.Interaction:
    phone = pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=number, verified=True)
    detail = pb.CallDetail(call_id=uuid.uuid4().hex, from_number=number, to_number="0120123456")
    return inbound(TENANT, pb.CHANNEL_VOICE, pb.KIND_CALL_STARTED, at, [phone], call=detail)


def _email(address: str, at: datetime, *extra: pb.Identifier) -> pb.Interaction:
    sender = pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=address, verified=True)
    detail = pb.EmailDetail(from_address=address, subject="About my order", text_body="Hi")
    return inbound(TENANT, pb.CHANNEL_EMAIL, pb.KIND_EMAIL, at, [sender, *extra], email=detail)


def _phone(i: int) -> str:
    return f"090{1000 + i % 9000:04d}{2000 + i // 9000:04d}"  # valid mobile numbers


class BenchStore:
    """A fresh database of the store for one benchmark, dropped afterwards."""

    def __init__(
        self, mongodb_uri: str, listeners: Sequence[monitoring.CommandListener] = ()
    ) -> None:
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            mongodb_uri, tz_aware=True, event_listeners=listeners
        )
        self.name = f"bench_identity_{uuid.uuid4().hex[:8]}"
        self.store = TimelineStore(self.client[self.name])
        self.core = build_core(self.store, identity_for=lambda _tenant: IdentityPolicy("JP"))
        self.recorder: TimelineRecorder = self.core.recorder

    async def __aenter__(self) -> BenchStore:
        await self.store.ensure_indexes()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.client.drop_database(self.name)
        await self.client.close()


def identity_mix(count: int) -> list[pb.Interaction]:
    """Per group of four: a call from a new phone, a second one, an email from a new address,
    and an email carrying both (it merges the two customers).
    """
    events: list[pb.Interaction] = []
    for g in range(count // 4):
        at = T0 + timedelta(minutes=g)
        number, address = _phone(g), f"person{g}@example.jp"
        events += [
            _call(number, at),
            _call(number, at + timedelta(seconds=1)),
            _email(address, at + timedelta(seconds=2)),
            _email(
                address,
                at + timedelta(seconds=3),
                pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=number, verified=True),
            ),
        ]
    return events


async def resolution_throughput(mongodb_uri: str, count: int, batch: int) -> dict[str, Any]:
    """Events per second through record_batch: half create, a quarter attach, a quarter merge;
    with the store commands it sent per event, by command and collection.
    """
    events = identity_mix(count)
    counts = CommandCounts()
    async with BenchStore(mongodb_uri, [counts]) as bench:
        before = counts.snapshot()["commands"]
        started = time.perf_counter()
        outcomes = []
        for offset in range(0, len(events), batch):
            outcomes += await bench.recorder.record_batch(events[offset : offset + batch])
        elapsed = time.perf_counter() - started
        sent = _commands_since(before, counts)
        now = counts.snapshot()["commands"]
        seconds = {
            key: round(tally["seconds"] - before.get(key, {"seconds": 0.0})["seconds"], 3)
            for key, tally in now.items()
        }
        waited = sum(seconds.values())
        failed = [o for o in outcomes if not isinstance(o, Recorded)]
        assert not failed, failed[:3]
        merged = sum(1 for o in outcomes if isinstance(o, Recorded) and o.merged_ids)
        live = await bench.store.db["customers"].count_documents(
            {"tenant": TENANT, "merged_into": {"$exists": False}}
        )
        assert merged == len(events) // 4, merged
        assert live == len(events) // 4, live
    return {
        "events": len(events),
        "batch": batch,
        "merges": merged,
        "per_s": len(events) / elapsed,
        "store_commands_per_event": sum(sent.values()) / len(events),
        "store_commands_per_merge": sum(sent.values()) / max(1, merged),
        "store_commands": dict(sent.most_common()),
        # The share of the run spent waiting on store round trips (the rest: this process).
        "store_wait_share": waited / elapsed,
        "store_command_seconds": dict(sorted(seconds.items(), key=lambda kv: -kv[1])),
    }


def _commands_since(before: dict[str, CommandTally], counts: CommandCounts) -> Counter[str]:
    now = counts.snapshot()["commands"]
    return Counter(
        {
            key: tally["count"] - before.get(key, {"count": 0})["count"]
            for key, tally in now.items()
            if tally["count"] > before.get(key, {"count": 0})["count"]
        }
    )


async def merge_split_latency(mongodb_uri: str, per_customer: int) -> dict[str, Any]:
    """Seconds for an automatic merge and its split of two customers of `per_customer` each."""
    async with BenchStore(mongodb_uri) as bench:
        recorder, store = bench.recorder, bench.store
        number, address = "090-5555-0001", "big@example.jp"
        first_call = await recorder.record(_call(number, T0))
        first_email = await recorder.record(_email(address, T0 + timedelta(minutes=1)))
        customers = {"voice": first_call.customer_id, "email": first_email.customer_id}
        for channel, customer_id in customers.items():
            docs = []
            for i in range(1, per_customer):
                at = T0 + timedelta(minutes=2 + i)
                interaction = _call(number, at) if channel == "voice" else _email(address, at)
                ident: IdentifierDoc = {
                    "kind": "phone" if channel == "voice" else "email",
                    "value": "+819055550001" if channel == "voice" else address,
                }
                doc = interaction_document(
                    interaction,
                    customer_id=customer_id,
                    occurred_at=at,
                    recorded_at=at,
                    identifiers=[ident],
                )  # the documented shape
                docs.append({**doc, "projected": True})
            for offset in range(0, len(docs), 1000):
                await store.db["interactions"].insert_many(
                    docs[offset : offset + 1000], ordered=False
                )
            customer = (await store.customers.get_customers(TENANT, [customer_id]))[customer_id]
            await store.customers.replace_customer(
                {
                    **customer,
                    "interaction_count": per_customer,
                    "by_channel": {channel: per_customer},
                    "last_contact_at": T0 + timedelta(minutes=1 + per_customer),
                },
                expected_version=customer["version"],
            )
        both = list(customers.values())

        baseline = [await _touch_all(store, both, 1)]

        link = _email(
            address,
            T0 + timedelta(days=30),
            pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=number, verified=True),
        )
        started = time.perf_counter()
        merged = await recorder.record(link)
        merge_s = time.perf_counter() - started
        assert merged.merged_ids, merged
        survivor = (await store.customers.get_customers(TENANT, [merged.customer_id]))[
            merged.customer_id
        ]
        assert survivor["interaction_count"] == 2 * per_customer + 1, survivor
        entry = await store.db["merges"].find_one(
            {"tenant": TENANT, "evidence.event_id": link.event_id}
        )
        assert entry is not None

        started = time.perf_counter()
        await bench.core.splitter.split(
            TENANT, entry["_id"], actor=Actor("agent", "bench"), reason="bench", at=T0
        )
        split_s = time.perf_counter() - started
        counts = await store.customers.get_customers(TENANT, both)
        assert sorted(c["interaction_count"] for c in counts.values()) == [
            per_customer,
            per_customer + 1,
        ], counts
        # Again after: on a machine shared with other work, one measure of the baseline may
        # fall in a quiet or a busy moment; the mean of one before and one after is fairer.
        baseline.append(await _touch_all(store, both, 2))
    return {
        "interactions_per_customer": per_customer,
        "update_many_s": sum(baseline) / len(baseline),
        "update_many_runs_s": baseline,
        "merge_s": merge_s,
        "split_s": split_s,
        "merge_vs_update_many": merge_s / (sum(baseline) / len(baseline)),
        "split_vs_update_many": split_s / (sum(baseline) / len(baseline)),
    }


async def _touch_all(store: TimelineStore, customer_ids: list[str], mark: int) -> float:
    """Seconds for one `update_many` over every interaction of the customers (the baseline)."""
    started = time.perf_counter()
    await store.db["interactions"].update_many(
        {"tenant": TENANT, "customer_id": {"$in": customer_ids}},
        {"$set": {"bench_touched": mark}},
    )
    return time.perf_counter() - started


async def measure_alone(*, events: int, batch: int, merge_size: int) -> dict[str, Any]:
    """The identity rows of `make bench` alone, on a bench stack, beside their baseline."""
    async with bench_stack() as stack:
        inserts = await insert_many_rate(stack, max(2_000, events))
        resolution = await resolution_throughput(stack.mongodb_uri, events, batch)
        merge_split = (
            await merge_split_latency(stack.mongodb_uri, merge_size) if merge_size else None
        )
    return {"insert_many": inserts, "identity_resolution": resolution, "merge_split": merge_split}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.identity")
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--merge-size", type=int, default=10_000, help="0: no merge/split")
    args = parser.parse_args()
    print(
        json.dumps(
            asyncio.run(
                measure_alone(events=args.events, batch=args.batch, merge_size=args.merge_size)
            ),
            indent=2,
        )
    )
