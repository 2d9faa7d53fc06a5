"""Starting a real insights service in a test, and waiting for its figures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from services.insights.service import InsightsService
from services.insights.settings import InsightsSettings
from tests.conftest import service_nats
from tests.grpc_credentials import CallerSet
from tsunagu.bus.permissions import INSIGHTS
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import insights_pb2, insights_pb2_grpc, notices_pb2, timeline_pb2
from tsunagu.v1 import interaction_pb2 as pb

Figures = dict[str, float | None]


def insights_settings(
    *,
    nats_server: NatsServer,
    mongodb_uri: str,
    database_name: str,
    tenant: str,
    callers: CallerSet,
    **overrides: Any,
) -> InsightsSettings:
    """The settings of a test's insights service: its own database, consumer and tenant."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        **service_nats(nats_server, INSIGHTS),
        "mongodb_uri": mongodb_uri,
        "mongodb_database": f"{database_name}_insights",
        "consumer_name": f"insights-{tenant}",
        "subject_filter": f"timeline.updated.{tenant}.>",
        "callers": callers.credentials,
        "timeline_token": callers.service,
        "shutdown_grace_seconds": 1.0,
    }
    values.update(overrides)
    return InsightsSettings(**values)


@asynccontextmanager
async def running(settings: InsightsSettings) -> AsyncIterator[InsightsService]:
    async with InsightsService(settings) as service:
        yield service


def query(
    tenant: str,
    *,
    days: int = 3,
    period: insights_pb2.MetricPeriod.ValueType = insights_pb2.METRIC_PERIOD_UNSPECIFIED,
    group_by: insights_pb2.MetricGroup.ValueType = insights_pb2.METRIC_GROUP_UNSPECIFIED,
) -> insights_pb2.GetServiceMetricsRequest:
    """Figures of the cases opened in the last `days` days (and the next hour)."""
    request = insights_pb2.GetServiceMetricsRequest(tenant=tenant)
    request.query.since.FromDatetime(datetime.now(UTC) - timedelta(days=days))
    request.query.until.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    request.query.period = period
    request.query.group_by = group_by
    return request


def figures(row: insights_pb2.MetricRow) -> Figures:
    return {f.name: (f.value if f.defined else None) for f in row.figures}


async def wait_for_rows(
    insights: insights_pb2_grpc.InsightsServiceAsyncStub,
    request: insights_pb2.GetServiceMetricsRequest,
    until: Callable[[list[insights_pb2.MetricRow]], bool],
    *,
    failed: Awaitable[object] | None = None,
    deadline_seconds: float = 30.0,
) -> list[insights_pb2.MetricRow]:
    """Poll the figures until `until` holds for them; fail at the deadline with the last."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    while True:
        rows = list((await insights.GetServiceMetrics(request)).rows)
        if until(rows):
            return rows
        if failed is not None and asyncio.isfuture(failed) and failed.done():
            raise AssertionError(f"the insights feed crashed: {failed.result()!r}")
        if loop.time() > deadline:
            raise AssertionError(f"figures never got there; last: {rows}")
        await asyncio.sleep(0.2)


def voc_request(tenant: str) -> insights_pb2.ListVocTopicsRequest:
    """The tenant's topics over the last 30 days (and the next hour)."""
    request = insights_pb2.ListVocTopicsRequest(tenant=tenant)
    request.since.FromDatetime(datetime.now(UTC) - timedelta(days=30))
    request.until.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    return request


async def eventually(
    call: Callable[[], Awaitable[Any]], check: Callable[[Any], bool], seconds: float = 60
) -> Any:
    """Call until `check` holds for the answer; fail at the deadline with the last one."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await call()
        if check(result):
            return result
        assert asyncio.get_running_loop().time() < deadline, f"never: {result}"
        await asyncio.sleep(0.2)


def timeline_notice(
    tenant: str, interaction: pb.Interaction, *, customer: str, case: str, **fields: Any
) -> notices_pb2.TimelineUpdated:
    """A notice as the timeline sends it, carrying its entry, recorded when it happened."""
    entry = timeline_pb2.TimelineEntry(interaction=interaction, customer_id=customer, case_id=case)
    entry.recorded_at.CopyFrom(interaction.occurred_at)
    notice = notices_pb2.TimelineUpdated(
        tenant=tenant,
        customer_id=customer,
        event_id=interaction.event_id,
        case_id=case,
        entry=entry,
        case_status=timeline_pb2.CASE_STATUS_OPEN,
        **fields,
    )
    notice.recorded_at.CopyFrom(interaction.occurred_at)
    return notice
