"""A store error's document never reaches the log or the dead-letter error header."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import cast

import nats
import pytest
from nats.js.errors import NotFoundError
from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError

from services.timeline.consumer import ConsumerOptions, InteractionConsumer
from services.timeline.recorder import Recorded, TimelineRecorder
from tests import builders
from tsunagu.bus import headers
from tsunagu.bus.subjects import DEAD_LETTER_STREAM, interaction_subject
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import interaction_pb2 as pb

_SECRET = "Mallory's card ends 4242, call +49 151 12345678"


class _DuplicateWrites:
    """Stands in for the recorder: every item fails with a real driver error from the store.

    The refused document carries personal data, as the timeline's documents do; the driver
    quotes it in the error's "full error".
    """

    def __init__(self, mongodb_uri: str, database: str) -> None:
        self._client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_uri)
        self._collection = self._client[database]["interactions"]

    async def record_batch(
        self, interactions: Sequence[pb.Interaction]
    ) -> list[Recorded | Exception]:
        doc: dict[str, object] = {"_id": "duplicate", "text": _SECRET}
        with pytest.raises(BulkWriteError, match="card ends 4242") as refused:
            # The match shows the driver quotes the document: what must not leak.
            await self._collection.insert_many([doc, dict(doc)], ordered=False)
        return [refused.value for _ in interactions]

    async def close(self) -> None:
        await self._client.close()


async def _announce(_outcome: Recorded) -> None:
    raise AssertionError("nothing was recorded, so nothing may be announced")


async def test_a_store_error_is_logged_and_dead_lettered_as_class_and_code_only(
    nats_server: NatsServer,
    mongodb_uri: str,
    database_name: str,
    tenant: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # INFO, as the processes log (pymongo's DEBUG command log quotes every document).
    caplog.set_level(logging.INFO)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    recorder = _DuplicateWrites(mongodb_uri, database_name)
    consumer = InteractionConsumer(
        js,
        cast("TimelineRecorder", recorder),
        options=ConsumerOptions(
            durable=f"errors-{tenant}", subject_filter=f"interactions.{tenant}.>", max_deliver=2
        ),
        announce=_announce,
    )
    await consumer.start()
    subject = interaction_subject(tenant, pb.CHANNEL_CHAT)
    try:
        await js.publish(subject, builders.chat(tenant).SerializeToString())
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                dead = await js.get_msg(
                    DEAD_LETTER_STREAM, seq=1, subject=f"dlq.{subject}", next=True
                )
                break
            except NotFoundError:
                assert asyncio.get_running_loop().time() < deadline, "never dead-lettered"
                await asyncio.sleep(0.2)
    finally:
        await consumer.stop(grace_seconds=5)
        await recorder.close()
        await nc.close()

    assert (dead.headers or {})[headers.DEAD_LETTER_ERROR] == "BulkWriteError code 11000"
    logged = caplog.text
    assert "BulkWriteError code 11000" in logged  # the failure is still reported
    assert "Mallory" not in logged
    assert "12345678" not in logged
