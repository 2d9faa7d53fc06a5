"""Per-tenant retention: interactions carry their expiry, and the timeline's sweep removes them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from services.timeline.settings import TimelineSettings
from tests import builders
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.test_ingest_to_timeline import submit, wait_for_events
from tsunagu.v1 import ingest_pb2_grpc, timeline_pb2_grpc

Starter = Callable[..., AbstractAsyncContextManager[Any]]


def test_a_tenant_override_wins_over_the_default_and_bad_periods_fail_start_up() -> None:
    settings = TimelineSettings(
        interaction_retention="P400D", tenant_interaction_retention={"acme": "P30D"}
    )
    assert settings.retention_for("acme") == timedelta(days=30)
    assert settings.retention_for("globex") == timedelta(days=400)
    assert TimelineSettings().retention_for("acme") is None
    for bad in ({"interaction_retention": "-P1D"}, {"tenant_interaction_retention": {"a": "PT0S"}}):
        try:
            TimelineSettings(**bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")


async def test_the_running_timeline_sweeps_expired_interactions_and_keeps_the_rest(  # fixtures
    *,
    run_timeline: Starter,
    run_ingest: Starter,
    callers: CallerSet,
    tenant: str,
    mongodb_uri: str,
    database_name: str,
) -> None:
    # Kept for a day after they happened: the old one runs out 30 seconds from now (stored
    # first, then gone), the recent one tomorrow.
    at = datetime.now(UTC) - timedelta(days=1) + timedelta(seconds=30)
    old = builders.chat(tenant, text="kept for a day only", at=at)
    recent = builders.chat(tenant, text="kept until tomorrow")
    retention = {tenant: "P1D"}
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    log = client[database_name]["interactions"]
    async with (
        run_timeline(tenant_interaction_retention=retention, retention_sweep_seconds=1) as timeline,
        run_ingest("chat") as chat,
    ):
        timeline_channel = channel_for(timeline.server.address, callers.service)
        chat_channel = channel_for(chat.server.address, callers.adapter("chat"))
        try:
            ingest = ingest_pb2_grpc.IngestServiceStub(chat_channel)
            await submit(ingest, old)
            await submit(ingest, recent)
            stub = timeline_pb2_grpc.TimelineServiceStub(timeline_channel)
            await wait_for_events(stub, tenant, [old.event_id, recent.event_id])
            kept = await log.find_one({"tenant": tenant, "event_id": recent.event_id})
            assert kept is not None
            occurred = recent.occurred_at.ToDatetime(tzinfo=UTC)
            assert abs(kept["expire_at"] - (occurred + timedelta(days=1))) < timedelta(seconds=1)
            # Deleted by the timeline's sweep once its day has passed; the recent one stays.
            deadline = asyncio.get_running_loop().time() + 150
            while await log.count_documents({"tenant": tenant, "event_id": old.event_id}):
                assert asyncio.get_running_loop().time() < deadline, "not removed in time"
                await asyncio.sleep(1)
            assert await log.count_documents({"tenant": tenant, "event_id": recent.event_id}) == 1
        finally:
            await chat_channel.close(grace=None)
            await timeline_channel.close(grace=None)
            await client.close()
