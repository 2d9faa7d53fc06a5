"""The consumer writes a batch's flags once, with its notices, on the real bus and store: the
entries are marked projected and announced in one write after the notices go out, and marked
projected (readable, acked, never rebuilt) when the notices fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import nats
from opentelemetry.context import Context

from services.timeline.consumer import ConsumerOptions, InteractionConsumer
from services.timeline.recorder import Recorded
from services.timeline.signed_actors import SignedActors
from services.timeline.store.command_counts import CommandCounts
from services.timeline.stores import TimelineStore
from tests import builders
from tests.integration.counted_store import commands_sent, recorder_over
from tsunagu.bus.subjects import interaction_subject
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import interaction_pb2 as pb

Announce = Callable[[Sequence[Recorded], Sequence[Context]], Awaitable[None]]
DEADLINE_SECONDS = 60.0


async def _dependencies_up() -> None:
    return None


@asynccontextmanager
async def consuming(
    nats_server: NatsServer, store: TimelineStore, tenant: str, announce: Announce
) -> AsyncIterator[Callable[[list[pb.Interaction]], Awaitable[None]]]:
    """A consumer recording into `store` and announcing with `announce`; yields a publisher."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    consumer = InteractionConsumer(
        js,
        recorder_over(store),
        options=ConsumerOptions(
            durable=f"marks-{tenant}", subject_filter=f"interactions.{tenant}.>"
        ),
        announce=announce,
        actors=SignedActors({}),
        probe=_dependencies_up,
    )

    async def publish(interactions: list[pb.Interaction]) -> None:
        for interaction in interactions:
            subject = interaction_subject(tenant, interaction.channel)
            await js.publish(subject, interaction.SerializeToString())

    await consumer.start()
    try:
        yield publish
    finally:
        await consumer.stop(grace_seconds=5)
        await nc.close()


async def _entries(store: TimelineStore, tenant: str, count: int) -> list[dict[str, object]]:
    """The tenant's log entries once `count` of them are marked projected (or the deadline)."""
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    while True:
        found = [d async for d in store.db["interactions"].find({"tenant": tenant})]
        if sum(1 for d in found if d.get("projected")) >= count:
            return found
        assert asyncio.get_running_loop().time() < deadline, found
        await asyncio.sleep(0.1)


async def test_a_batch_is_marked_projected_and_announced_in_one_write_after_its_notices(
    nats_server: NatsServer, counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, counts = counted
    notices: list[list[str]] = []
    unmarked_at_notice: list[str] = []

    async def announce(batch: Sequence[Recorded], _contexts: Sequence[Context]) -> None:
        ids = [o.event_id for o in batch]
        flagged = store.db["interactions"].find({"tenant": tenant, "event_id": {"$in": ids}})
        unmarked_at_notice.extend([d["event_id"] async for d in flagged if not d.get("projected")])
        notices.append(ids)

    chats = [builders.chat(tenant, visitor=f"v{k % 4}") for k in range(12)]
    before = commands_sent(counts)
    async with consuming(nats_server, store, tenant, announce) as publish:
        await publish(chats)
        entries = await _entries(store, tenant, len(chats))
    sent = commands_sent(counts) - before

    assert sorted(e for ids in notices for e in ids) == sorted(c.event_id for c in chats)
    # The notices went out before the flags; then one write per batch set both.
    assert sorted(unmarked_at_notice) == sorted(c.event_id for c in chats)
    assert sent["update:interactions"] == len(notices), (sent, notices)
    assert all(e.get("projected") and e.get("announced") for e in entries)


async def test_a_batch_whose_notices_fail_is_still_marked_projected_and_acked(
    nats_server: NatsServer, counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, _ = counted
    attempts: list[str] = []

    async def announce(batch: Sequence[Recorded], _contexts: Sequence[Context]) -> None:
        attempts.extend(o.event_id for o in batch)
        raise RuntimeError("the notice could not be built")  # not a dependency down

    chats = [builders.chat(tenant, visitor=f"w{k}") for k in range(3)]
    async with consuming(nats_server, store, tenant, announce) as publish:
        await publish(chats)
        entries = await _entries(store, tenant, len(chats))
        profiles = await store.customers.get_customers(
            tenant, {str(e["customer_id"]) for e in entries}
        )

    assert sorted(attempts) == sorted(c.event_id for c in chats)  # once each: acked
    assert all(e.get("projected") and not e.get("announced") for e in entries)
    assert sorted(p["interaction_count"] for p in profiles.values()) == [1, 1, 1]
