"""The timeline rides out a NATS restart: not ready while it reconnects, then records again.

The nats-server is this test's own, stopped and started again on the same port and data.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nats
from pymongo import AsyncMongoClient

from services.timeline.service import TimelineService
from services.timeline.settings import TimelineSettings
from services.timeline.store.documents import Document
from tests import builders
from tests.conftest import service_nats
from tests.integration.conftest import nats_sink
from tests.integration.test_store_outage import (
    NOT_SERVING,
    SERVING,
    dead_letter_count,
    eventually,
    readiness,
)
from tsunagu.bus.permissions import TIMELINE
from tsunagu.bus.publisher import InteractionPublisher
from tsunagu.local.processes import NatsServer

log = logging.getLogger(__name__)


async def test_a_nats_restart_turns_the_timeline_not_ready_and_then_it_records_again(
    own_nats: NatsServer,
    mongodb_uri: str,
    database_name: str,
    tmp_path: Path,
    tenant: str,
) -> None:
    settings = TimelineSettings(
        host="127.0.0.1",
        port=0,
        **service_nats(own_nats, TIMELINE),
        mongodb_uri=mongodb_uri,
        mongodb_database=database_name,
        consumer_name=f"timeline-{tenant}",
        subject_filter=f"interactions.{tenant}.>",
        shutdown_grace_seconds=1,
    )
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    log_of = mongo[database_name]["interactions"]
    restarted: NatsServer | None = None

    async def stored(count: int) -> bool:
        return await log_of.count_documents({"tenant": tenant, "announced": True}) == count

    try:
        async with TimelineService(settings) as service:
            address = service.server.address
            nc = await nats.connect(own_nats.url)
            try:
                await InteractionPublisher(nc.jetstream()).publish(builders.chat(tenant))
            finally:
                await nc.close()
            await eventually(lambda: stored(1), "the event before the restart recorded")

            await own_nats.stop()

            async def not_ready() -> bool:
                return await readiness(address) == (SERVING, NOT_SERVING)

            await eventually(not_ready, "readiness NOT_SERVING while NATS is away")

            restarted = NatsServer(
                tmp_path / "nats", port=own_nats.port, sink=nats_sink, users=own_nats.users
            )
            await restarted.start()

            async def ready_again() -> bool:
                return await readiness(address) == (SERVING, SERVING)

            await eventually(ready_again, "readiness SERVING once NATS is back")
            nc = await nats.connect(restarted.url)
            try:
                after = [builders.chat(tenant, visitor=f"after-{i}") for i in range(5)]
                for outcome in await InteractionPublisher(nc.jetstream()).publish_many(after):
                    assert not isinstance(outcome, Exception)
                await eventually(lambda: stored(6), "the events after the restart recorded")
                assert await dead_letter_count(nc.jetstream(), tenant) == 0
            finally:
                await nc.close()
    finally:
        await mongo.drop_database(database_name)
        await mongo.close()
        if restarted is not None:
            await restarted.stop()
