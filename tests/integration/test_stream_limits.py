"""A full stream refuses new events with a clear error; it never discards unconsumed ones.

Each test has a nats-server of its own, provisioned with tiny limits.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import nats
import pytest
from nats.js.api import DiscardPolicy

from services.ingest.bootstrap import bootstrap
from services.ingest.settings import IngestSettings
from tests import builders
from tests.conftest import _quiet_sink
from tests.grpc_credentials import caller_set, channel_for
from tsunagu.bus.provision import ProvisionSettings, provision
from tsunagu.bus.subjects import DEAD_LETTER_STREAM, INTERACTIONS_STREAM
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc
from tsunagu.v1 import interaction_pb2 as pb

PER_SUBJECT = 3
Result = ingest_pb2.SubmitResult


@pytest.fixture
async def small_nats(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """A nats-server whose streams hold at most PER_SUBJECT events per tenant and channel."""
    async with NatsServer(tmp_path / "nats", sink=_quiet_sink, name="small-nats") as server:
        await provision(ProvisionSettings(nats_url=server.url, max_msgs_per_subject=PER_SUBJECT))
        yield server


async def test_streams_refuse_new_messages_when_full_instead_of_discarding_old_ones(
    small_nats: NatsServer,
) -> None:
    nc = await nats.connect(small_nats.url)
    try:
        js = nc.jetstream()
        interactions = await js.stream_info(INTERACTIONS_STREAM)
        dead_letters = await js.stream_info(DEAD_LETTER_STREAM)
    finally:
        await nc.close()
    assert interactions.config.discard == DiscardPolicy.NEW
    assert interactions.config.max_msgs_per_subject == PER_SUBJECT
    assert interactions.config.discard_new_per_subject
    assert dead_letters.config.discard == DiscardPolicy.NEW


async def test_ingest_refuses_an_event_over_the_tenant_limit_naming_it_and_keeps_the_stored_ones(
    small_nats: NatsServer, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    # One adapter acting for both tenants: a full tenant must not hold back the other.
    callers = caller_set([tenant, f"{tenant}-quiet"])
    settings = IngestSettings(
        channel="chat",
        host="127.0.0.1",
        port=0,
        nats_url=small_nats.url,
        callers=callers.credentials,
    )
    stored = [builders.chat(tenant, visitor=f"v{i}") for i in range(PER_SUBJECT)]
    over = builders.chat(tenant, visitor="one-too-many")
    in_batch = builders.chat(tenant, visitor="batched-too-many")
    other_tenant = builders.chat(f"{tenant}-quiet", visitor="v0")
    async with (
        bootstrap(settings) as service,
        channel_for(service.server.address, callers.adapter("chat")) as channel,
    ):
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        accepted = [await stub.Submit(ingest_pb2.SubmitRequest(interaction=i)) for i in stored]
        assert [a.result.status for a in accepted] == [Result.STATUS_ACCEPTED] * PER_SUBJECT

        with caplog.at_level(logging.ERROR, logger="tsunagu.bus.publisher"):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Submit(ingest_pb2.SubmitRequest(interaction=over))
            batch = await stub.SubmitBatch(
                ingest_pb2.SubmitBatchRequest(interactions=[in_batch, other_tenant])
            )
        quiet = await stub.Submit(ingest_pb2.SubmitRequest(interaction=other_tenant))

    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "stream INTERACTIONS is full" in (refused.value.details() or "")
    assert "TSUNAGU_STREAMS_MAX_MSGS_PER_SUBJECT" in (refused.value.details() or "")
    [too_many, fair] = batch.results
    assert too_many.status == Result.STATUS_REJECTED
    assert "TSUNAGU_STREAMS_MAX_MSGS_PER_SUBJECT" in too_many.reason
    # Another tenant is not held back by the full one.
    assert fair.status == Result.STATUS_ACCEPTED
    assert quiet.result.status == Result.STATUS_DUPLICATE
    assert any("ALARM stream INTERACTIONS is full" in r.getMessage() for r in caplog.records)

    nc = await nats.connect(small_nats.url)
    try:
        js = nc.jetstream()
        kept = [
            pb.Interaction.FromString(
                (await js.get_msg(INTERACTIONS_STREAM, a.result.stream_sequence)).data or b""
            ).event_id
            for a in accepted
        ]
    finally:
        await nc.close()
    assert kept == [i.event_id for i in stored]
