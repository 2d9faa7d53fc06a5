"""With sealed events the timeline's notices carry no entry: insights reads a batch's entries
back in bulk, counted here at the timeline's own gRPC server, and a bad notice in the batch
never keeps the good ones out. Notices that arrive a few at a time are gathered for a linger
into one batch, so into one read."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from nats.aio.client import Client

from services.insights.service import InsightsService
from services.insights.settings import InsightsSettings
from services.timeline.settings import TimelineSettings
from tests import builders
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.insights_fixtures import figures, query, running, wait_for_rows
from tests.integration.sealed_services import Services, sealed_services
from tsunagu.bus.streams import TIMELINE_OUTCOMES_STREAM
from tsunagu.grpc_auth import ServerInterceptor
from tsunagu.grpc_settings import ServerSecurity
from tsunagu.v1 import ingest_pb2, insights_pb2, insights_pb2_grpc, notices_pb2, timeline_pb2

Starter = Callable[..., AbstractAsyncContextManager[Any]]
GET_INTERACTIONS = "/tsunagu.v1.TimelineService/GetInteractions"
if TYPE_CHECKING:  # grpc's handler types are generic to the type checker only
    Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]]
# Beyond the feed's reads: the automatic topic builds read every message's words back (one
# when a tenant's messages reach 20, again each time they double), 200 ids a call.
# Notices read back per GetInteractions call, on average, at the least (200 when idle).
PER_CALL_AT_LEAST = 10


class CountedCalls(ServerInterceptor):
    """Counts every call the server receives, by method, then lets its own interceptor on."""

    def __init__(self, inner: ServerInterceptor, calls: Counter[str]) -> None:
        self.inner = inner
        self.calls = calls

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any]:
        self.calls[handler_call_details.method] += 1
        return await self.inner.intercept_service(continuation, handler_call_details)


@pytest.fixture
def timeline_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The calls the timelines this test starts receive, counted at their gRPC server."""
    counted = Counter[str]()
    security = TimelineSettings.server_security

    def counting(self: TimelineSettings, **kwargs: Any) -> ServerSecurity:
        original = security(self, **kwargs)
        return replace(original, interceptor=CountedCalls(original.interceptor, counted))

    monkeypatch.setattr(TimelineSettings, "server_security", counting)
    return counted


@dataclass(frozen=True)
class Rig:
    """A sealed timeline (its calls counted) and chat ingestion, and an insights to start."""

    services: Services
    calls: Counter[str]
    config: InsightsSettings
    callers: CallerSet
    operator: Client
    tenant: str

    def reads(self) -> int:
        return self.calls[GET_INTERACTIONS]


@pytest.fixture
async def rig(  # noqa: PLR0917 - pytest passes fixtures by name
    run_timeline: Starter,
    run_ingest: Starter,
    callers: CallerSet,
    tmp_path: Path,
    timeline_calls: Counter[str],
    insights_config: InsightsSettings,
    operator: Client,
    tenant: str,
) -> AsyncIterator[Rig]:
    """Encryption on: the timeline's notices carry no entry."""
    sealed = partial(sealed_services, run_timeline=run_timeline, run_ingest=run_ingest)
    async with sealed(callers=callers, key_file=tmp_path / "keys.json") as services:
        config = insights_config.model_copy(update={"timeline_address": services.timeline_address})
        yield Rig(services, timeline_calls, config, callers, operator, tenant)


async def _submit(services: Services, chats: list[Any]) -> None:
    for start in range(0, len(chats), 100):
        response = await services.ingest["chat"].SubmitBatch(
            ingest_pb2.SubmitBatchRequest(interactions=chats[start : start + 100])
        )
        assert {r.status for r in response.results} == {ingest_pb2.SubmitResult.STATUS_ACCEPTED}


async def _mirrored(operator: Client, tenant: str, count: int) -> None:
    """Wait until the outcomes mirror holds `count` notices of the tenant (insights would
    otherwise fetch a backlog still arriving, in smaller batches)."""
    js = operator.jetstream()
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        info = await js.stream_info(
            TIMELINE_OUTCOMES_STREAM, subjects_filter=f"timeline.updated.{tenant}.>"
        )
        held = sum((info.state.subjects or {}).values())
        if held >= count:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{held} of {count} mirrored"
        await asyncio.sleep(0.2)


async def _settled(operator: Client, durable: str) -> None:
    """Wait until the insights consumer has nothing pending or unacknowledged."""
    js = operator.jetstream()
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        info = await js.consumer_info(TIMELINE_OUTCOMES_STREAM, durable)
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        assert asyncio.get_running_loop().time() < deadline, f"never settled: {info}"
        await asyncio.sleep(0.2)


async def _delivered(operator: Client, durable: str, count: int) -> None:
    """Wait until the insights consumer has delivered `count` notices: a fetch holds them."""
    js = operator.jetstream()
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        info = await js.consumer_info(TIMELINE_OUTCOMES_STREAM, durable)
        if info.delivered.consumer_seq >= count:
            return
        assert asyncio.get_running_loop().time() < deadline, f"never delivered: {info}"
        await asyncio.sleep(0.2)


async def _count(rig: Rig, service: InsightsService, cases: int) -> insights_pb2.MetricRow:
    """Wait until the figures of a running insights count `cases` cases; their row."""
    async with channel_for(service.server.address, rig.callers.service) as channel:
        [row] = await wait_for_rows(
            insights_pb2_grpc.InsightsServiceStub(channel),
            query(rig.tenant),
            lambda rows: bool(rows) and figures(rows[0])["cases"] == cases,
            failed=service.failed,
            deadline_seconds=180,
        )
        return row


@asynccontextmanager
async def _counted(rig: Rig, cases: int) -> AsyncIterator[insights_pb2.MetricRow]:
    """Start insights and wait until its figures count `cases` cases; their row."""
    async with running(rig.config) as service:
        yield await _count(rig, service, cases)


def _opened(tenant: str, count: int) -> list[Any]:
    """`count` chat messages of new visitors: each opens a case of its own."""
    at = datetime.now(UTC) - timedelta(hours=2)
    return [
        builders.chat(tenant, visitor=f"v-{uuid.uuid4().hex[:12]}", at=at + timedelta(seconds=n))
        for n in range(count)
    ]


async def test_a_sealed_backlog_is_read_back_in_bulk_calls(rig: Rig) -> None:
    backlog = 450
    await _submit(rig.services, _opened(rig.tenant, backlog))
    await _mirrored(rig.operator, rig.tenant, backlog)
    before = rig.reads()
    async with _counted(rig, backlog) as row:
        assert row.unique_customers == backlog
    # Read back in bulk: one call per fetched batch (up to 200 notices), plus the automatic
    # topic builds' reads; one call per notice before (779 here). On an idle machine that is
    # ceil(450 / 200) + 4; how many notices a fetch returns and how many builds the doubling
    # rule starts depend on timing, so the bound is what no per-notice read can meet.
    assert 0 < rig.reads() - before <= backlog // PER_CALL_AT_LEAST, rig.calls


async def test_a_good_notice_is_applied_beside_unknown_foreign_and_hostile_ones(rig: Rig) -> None:
    tenant = rig.tenant
    subject = f"timeline.updated.{tenant}.c-x"

    def without_entry(event_id: str, *, of: str = tenant) -> bytes:
        notice = notices_pb2.TimelineUpdated(
            tenant=of,
            customer_id="c-x",
            event_id=event_id,
            case_id="case-x",
            case_status=timeline_pb2.CASE_STATUS_OPEN,
        )
        return notice.SerializeToString()

    # Ahead of the good one, in the same fetched batch: an event the timeline never stored,
    # ids no event can have (one large enough to spoil a bulk read), garbage, another tenant.
    bad = [
        without_entry(str(uuid.uuid4())),
        without_entry("../../" + "x" * 40_000),
        without_entry("00000000-0000-0000-0000-000000000000"),
        without_entry(str(uuid.uuid4()), of=f"{tenant}x"),
        b"\xff\x00 not a notice",
    ]
    for payload in bad:
        await rig.operator.publish(subject, payload)
    await rig.operator.flush()
    await _submit(rig.services, _opened(tenant, 1))
    await _mirrored(rig.operator, tenant, len(bad) + 1)
    before = rig.reads()
    async with _counted(rig, 1) as row:
        assert row.contacts == 1
        # Every notice settled (acked or terminated): none is redelivered again and again.
        await _settled(rig.operator, rig.config.consumer_name)
    # The unknown id and the good one in one bulk read; the impossible ids never asked for.
    assert rig.reads() - before == 1, rig.calls


BURSTS, BURST = 3, 2


async def _reads_of_bursts(rig: Rig, *, linger: float) -> int:
    """GetInteractions calls for `BURSTS` bursts of `BURST` new visitors' messages, each burst
    submitted once insights has fetched the one before; a batch of them all fills a fetch."""
    config = rig.config.model_copy(
        update={"fetch_batch": BURSTS * BURST, "feed_linger_seconds": linger}
    )
    before = rig.reads()
    async with running(config) as service:
        for n in range(1, BURSTS + 1):
            await _submit(rig.services, _opened(rig.tenant, BURST))
            await _delivered(rig.operator, config.consumer_name, n * BURST)
        await _count(rig, service, BURSTS * BURST)
    return rig.reads() - before


async def test_notices_arriving_in_bursts_within_the_linger_are_read_back_in_one_call(
    rig: Rig,
) -> None:
    # Longer than the bursts take even on a busy machine (a quarter of ack_wait at most): the
    # batch is applied once it is full, not when the linger ends.
    assert await _reads_of_bursts(rig, linger=7.0) == 1, rig.calls


async def test_without_a_linger_each_burst_is_read_back_as_it_is_fetched(rig: Rig) -> None:
    assert await _reads_of_bursts(rig, linger=0.0) >= BURSTS, rig.calls


async def test_a_lone_notice_is_applied_once_the_linger_has_passed(rig: Rig) -> None:
    linger = 5.0
    config = rig.config.model_copy(update={"feed_linger_seconds": linger})
    async with running(config) as service:
        loop = asyncio.get_running_loop()
        submitted = loop.time()
        await _submit(rig.services, _opened(rig.tenant, 1))
        # Counted, however long a busy machine takes (no bound but the generous deadline);
        # never before the linger: the notice waited in case others came.
        row = await _count(rig, service, 1)
        assert loop.time() - submitted >= linger
    assert row.contacts == 1
