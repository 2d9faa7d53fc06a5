"""A store error's document never reaches the log or the dead-letter error header."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError

from services.timeline.recorder import Recorded
from tests import builders
from tests.integration.test_consumer_retries import dead_lettered
from tsunagu.bus import headers
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
        self,
        interactions: Sequence[pb.Interaction],
        *,
        marks_with_notices: bool = False,  # noqa: ARG002 - nothing is recorded to mark
    ) -> list[Recorded | Exception]:
        doc: dict[str, object] = {"_id": "duplicate", "text": _SECRET}
        with pytest.raises(BulkWriteError, match="card ends 4242") as refused:
            # The match shows the driver quotes the document: what must not leak.
            await self._collection.insert_many([doc, dict(doc)], ordered=False)
        return [refused.value for _ in interactions]

    async def close(self) -> None:
        await self._client.close()


async def test_a_store_error_is_logged_and_dead_lettered_as_class_and_code_only(
    nats_server: NatsServer,
    mongodb_uri: str,
    database_name: str,
    tenant: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # INFO, as the processes log (pymongo's DEBUG command log quotes every document).
    caplog.set_level(logging.INFO)
    recorder = _DuplicateWrites(mongodb_uri, database_name)
    try:
        _, dead = await dead_lettered(
            nats_server, recorder, tenant=tenant, interaction=builders.chat(tenant)
        )
    finally:
        await recorder.close()

    assert (dead.headers or {})[headers.DEAD_LETTER_ERROR] == "BulkWriteError code 11000"
    logged = caplog.text
    assert "BulkWriteError code 11000" in logged  # the failure is still reported
    assert "Mallory" not in logged
    assert "12345678" not in logged
