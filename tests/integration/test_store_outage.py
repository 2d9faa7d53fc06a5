"""The timeline rides out a store outage: it holds, reports not ready, and resumes; nothing lost.

The store is a real nx-27017 process of this test only, stopped for a while and started again
on the same port and data; events are published to the real nats-server during the outage.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pymongo import AsyncMongoClient

from services.timeline.consumer import Held, InteractionConsumer
from services.timeline.service import TimelineService
from services.timeline.settings import TimelineSettings
from services.timeline.store.documents import Document
from tests import builders
from tests.conftest import service_nats
from tsunagu.bus.permissions import TIMELINE
from tsunagu.bus.publisher import InteractionPublisher
from tsunagu.bus.subjects import DEAD_LETTER_STREAM, INTERACTIONS_STREAM
from tsunagu.local.processes import MongoWireStore, NatsServer
from tsunagu.v1 import timeline_pb2

log = logging.getLogger(__name__)

READINESS = timeline_pb2.DESCRIPTOR.services_by_name["TimelineService"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Short, so that an outage of a few ack_wait periods would redeliver (and dead-letter) the
# held messages were they not kept in progress.
ACK_WAIT_SECONDS = 5.0
OUTAGE_SECONDS = 18.0
DEADLINE_SECONDS = 90.0


def _sink(name: str, line: str) -> None:
    log.debug("[%s] %s", name, line)


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until `condition()` holds, failing after a generous deadline."""
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not in {DEADLINE_SECONDS:.0f}s: {what}")
        await asyncio.sleep(0.2)


async def readiness(address: str) -> tuple[int, int]:
    """(liveness, readiness) as the timeline's health service reports them."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        live = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        ready = await stub.Check(health_pb2.HealthCheckRequest(service=READINESS), timeout=10)
        return int(live.status), int(ready.status)


async def dead_letter_count(js: JetStreamContext, tenant: str) -> int:
    try:
        msg = await js.get_msg(
            DEAD_LETTER_STREAM, seq=1, subject=f"dlq.interactions.{tenant}.>", next=True
        )
    except NotFoundError:
        return 0
    return 1 if msg else 0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MongoWireStore]:
    async with MongoWireStore(tmp_path / "store", sink=_sink) as running:
        yield running


async def test_store_outage_holds_events_without_spending_deliveries_and_records_each_once(
    nats_server: NatsServer,
    store: MongoWireStore,
    tmp_path: Path,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deliveries: dict[int, int] = {}  # stream sequence → highest delivery count handled
    handle = InteractionConsumer.handle_batch

    async def counted(consumer: InteractionConsumer, msgs: list[Msg]) -> Held:
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            deliveries[seq] = max(deliveries.get(seq, 0), msg.metadata.num_delivered)
        return await handle(consumer, msgs)

    monkeypatch.setattr(InteractionConsumer, "handle_batch", counted)
    database = f"test_{uuid.uuid4().hex[:12]}"
    settings = TimelineSettings(
        host="127.0.0.1",
        port=0,
        **service_nats(nats_server, TIMELINE),
        mongodb_uri=store.uri,
        mongodb_database=database,
        consumer_name=f"timeline-{tenant}",
        subject_filter=f"interactions.{tenant}.>",
        ack_wait_seconds=ACK_WAIT_SECONDS,
        max_deliver=3,
        shutdown_grace_seconds=1,
    )
    nc = await nats.connect(nats_server.url)
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(store.uri, tz_aware=True)
    log_of = mongo[database]["interactions"]
    js = nc.jetstream()
    publisher = InteractionPublisher(js)
    restarted: MongoWireStore | None = None
    try:
        async with TimelineService(settings) as service:
            address = service.server.address
            before = builders.chat(tenant, visitor="before-the-outage")
            await publisher.publish(before)

            async def settled_before() -> bool:
                return await log_of.count_documents({"tenant": tenant, "announced": True}) == 1

            await eventually(settled_before, "the event before the outage stored and announced")
            assert await readiness(address) == (SERVING, SERVING)

            await store.stop()
            during = [builders.chat(tenant, visitor=f"during-{i}") for i in range(20)]
            for outcome in await publisher.publish_many(during):
                assert not isinstance(outcome, Exception)

            async def not_ready() -> bool:
                return await readiness(address) == (SERVING, NOT_SERVING)

            await eventually(not_ready, "readiness NOT_SERVING while the store is down")
            # The outage lasts several ack_wait periods: long enough for JetStream to
            # redeliver (and spend attempts on) every message not kept in progress.
            await asyncio.sleep(OUTAGE_SECONDS)
            info = await js.consumer_info(INTERACTIONS_STREAM, settings.consumer_name)
            assert info.num_redelivered == 0
            assert info.num_ack_pending == len(during)
            assert await readiness(address) == (SERVING, NOT_SERVING)

            restarted = MongoWireStore(tmp_path / "store", port=store.port, sink=_sink)
            await restarted.start()

            async def all_stored() -> bool:
                return await log_of.count_documents({"tenant": tenant}) == 1 + len(during)

            await eventually(all_stored, "every event stored after the outage")

            async def ready_again() -> bool:
                return await readiness(address) == (SERVING, SERVING)

            await eventually(ready_again, "readiness SERVING once the store is back")
            event_ids = [d["event_id"] async for d in log_of.find({"tenant": tenant})]
            assert sorted(event_ids) == sorted(e.event_id for e in [before, *during])
            assert await dead_letter_count(js, tenant) == 0
            assert max(deliveries.values()) <= 2
    finally:
        await mongo.close()
        await nc.close()
        if restarted is not None:
            await restarted.stop()
