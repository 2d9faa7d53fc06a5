"""Per-tenant retention: interactions carry their expiry, and the store's TTL index removes them."""

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


async def test_expired_interactions_are_deleted_by_the_store(  # pytest passes fixtures by name
    *,
    run_timeline: Starter,
    run_ingest: Starter,
    callers: CallerSet,
    tenant: str,
    mongodb_uri: str,
    database_name: str,
) -> None:
    # Kept for a day after it happened, which is 20 seconds from now: stored first, then gone.
    at = datetime.now(UTC) - timedelta(days=1) + timedelta(seconds=20)
    old = builders.chat(tenant, text="kept for a day only", at=at)
    retention = {tenant: "P1D"}
    async with (
        run_timeline(tenant_interaction_retention=retention) as timeline,
        run_ingest("chat") as chat,
    ):
        timeline_channel = channel_for(timeline.server.address, callers.service)
        chat_channel = channel_for(chat.server.address, callers.adapter("chat"))
        try:
            await submit(ingest_pb2_grpc.IngestServiceStub(chat_channel), old)
            stub = timeline_pb2_grpc.TimelineServiceStub(timeline_channel)
            await wait_for_events(stub, tenant, [old.event_id])
        finally:
            await chat_channel.close(grace=None)
            await timeline_channel.close(grace=None)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    try:
        log = client[database_name]["interactions"]
        stored = await log.find_one({"tenant": tenant, "event_id": old.event_id})
        assert stored is not None
        assert abs(stored["expire_at"] - (at + timedelta(days=1))) < timedelta(seconds=1)
        # Removed by the store's TTL monitor (MongoDB's runs every 60 seconds).
        deadline = asyncio.get_running_loop().time() + 150
        while await log.count_documents({"tenant": tenant}):
            assert asyncio.get_running_loop().time() < deadline, "not removed in time"
            await asyncio.sleep(1)
    finally:
        await client.close()
