"""An event stored by a timeline that crashed before announcing it is announced after a restart.

Real processes: the first timeline kills itself (SIGKILL) between the store write and the
notice; a normal timeline started afterwards gets the event redelivered and announces it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import nats
from nats.aio.msg import Msg
from pymongo import AsyncMongoClient

from services.timeline.store.documents import Document
from tests import builders
from tests.conftest import service_nats
from tsunagu.bus.notices import decode_notice
from tsunagu.bus.permissions import TIMELINE
from tsunagu.bus.publisher import InteractionPublisher
from tsunagu.local.processes import ManagedProcess, NatsServer
from tsunagu.v1 import notices_pb2

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 60.0


def _sink(name: str, line: str) -> None:
    log.debug("[%s] %s", name, line)


def timeline(
    name: str, module: str, *, nats_server: NatsServer, mongodb_uri: str, database: str, tenant: str
) -> ManagedProcess:
    login = service_nats(nats_server, TIMELINE)
    return ManagedProcess(
        name,
        [sys.executable, "-m", module],
        ready_pattern=r"timeline ready on",
        env={
            "TSUNAGU_TIMELINE_HOST": "127.0.0.1",
            "TSUNAGU_TIMELINE_PORT": "0",
            "TSUNAGU_TIMELINE_NATS_URL": login["nats_url"],
            "TSUNAGU_TIMELINE_NATS_USER": login["nats_user"],
            "TSUNAGU_TIMELINE_NATS_PASSWORD": str(login["nats_password"]),
            "TSUNAGU_TIMELINE_MONGODB_URI": mongodb_uri,
            "TSUNAGU_TIMELINE_MONGODB_DATABASE": database,
            "TSUNAGU_TIMELINE_CONSUMER_NAME": f"timeline-{tenant}",
            "TSUNAGU_TIMELINE_SUBJECT_FILTER": f"interactions.{tenant}.>",
            # The killed process's message comes back after this.
            "TSUNAGU_TIMELINE_ACK_WAIT_SECONDS": "3",
            "TSUNAGU_TIMELINE_SHUTDOWN_GRACE_SECONDS": "2",
            "OTEL_TRACES_EXPORTER": "none",
        },
        cwd=ROOT,
        sink=_sink,
        start_timeout=60,
    )


async def test_an_event_stored_before_a_crash_is_announced_after_the_restart(
    nats_server: NatsServer, mongodb_uri: str, database_name: str, tenant: str
) -> None:
    def start(name: str, module: str) -> ManagedProcess:
        return timeline(
            name,
            module,
            nats_server=nats_server,
            mongodb_uri=mongodb_uri,
            database=database_name,
            tenant=tenant,
        )

    heard: asyncio.Queue[notices_pb2.TimelineUpdated] = asyncio.Queue()

    async def listen(msg: Msg) -> None:
        if (notice := decode_notice(msg.data)) is not None:
            await heard.put(notice)

    nc = await nats.connect(nats_server.url)
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    log_of = mongo[database_name]["interactions"]
    try:
        await nc.subscribe(f"timeline.updated.{tenant}.>", cb=listen)
        await nc.flush()  # the subscription reached the server
        chat = builders.chat(tenant, phone="090-1111-2222")

        async with start(
            "timeline-killed", "tests.integration.timeline_killed_before_announce"
        ) as killed:
            await InteractionPublisher(nc.jetstream()).publish(chat)
            code = await asyncio.wait_for(killed.wait(), DEADLINE_SECONDS)
        assert code == -signal.SIGKILL
        [stored] = [d async for d in log_of.find({"tenant": tenant})]
        assert stored["event_id"] == chat.event_id
        assert not stored.get("announced")
        assert heard.empty()

        async with start("timeline", "services.timeline"):
            notice = await asyncio.wait_for(heard.get(), DEADLINE_SECONDS)
            assert notice.event_id == chat.event_id
            assert notice.customer_id == stored["customer_id"]
            assert notice.entry.interaction.event_id == chat.event_id
        [again] = [d async for d in log_of.find({"tenant": tenant})]
        assert again.get("announced")
        assert again.get("projected")
        # Killed before its flags were written, the event was rebuilt, not counted twice.
        profile = await mongo[database_name]["customers"].find_one({"_id": again["customer_id"]})
        assert profile is not None
        assert profile["interaction_count"] == 1
    finally:
        await mongo.drop_database(database_name)
        await mongo.close()
        await nc.close()
