"""The insights service follows the timeline's outcomes durably and serves figures over gRPC."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from nats.aio.client import Client

from services.insights.rebuild import rebuild
from services.insights.settings import InsightsSettings
from tests import builders
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.insights_fixtures import (
    figures,
    query,
    running,
    timeline_notice,
    wait_for_rows,
)
from tests.integration.test_consumer_faults import Bus
from tsunagu.v1 import insights_pb2, insights_pb2_grpc, notices_pb2, timeline_pb2
from tsunagu.v1 import interaction_pb2 as pb


def _stub(address: str, token: str) -> tuple[grpc.aio.Channel, Any]:
    channel = channel_for(address, token)
    return channel, insights_pb2_grpc.InsightsServiceStub(channel)


async def _entry(bus: Bus, event_id: str) -> timeline_pb2.TimelineEntry:
    await bus.recorded([event_id])
    found = await bus.timeline.GetInteractions(
        timeline_pb2.GetInteractionsRequest(tenant=bus.tenant, event_ids=[event_id])
    )
    return found.entries[0]


async def test_a_conversation_through_the_timeline_becomes_figures_cases_and_a_risk(
    bus: Bus, insights_config: InsightsSettings, callers: CallerSet
) -> None:
    t0 = datetime.now(UTC) - timedelta(hours=2)
    visitor = f"v-{uuid.uuid4().hex[:8]}"
    contact = builders.chat(bus.tenant, visitor=visitor, at=t0)
    await bus.publish(contact.SerializeToString())
    opened = await _entry(bus, contact.event_id)
    reply = builders.agent_reply(
        bus.tenant, visitor=visitor, text="On its way", at=t0 + timedelta(minutes=10)
    )
    await bus.publish(reply.SerializeToString())
    await bus.recorded([reply.event_id])
    customer, case = opened.customer_id, opened.case_id
    resolution = builders.agent_action(
        bus.tenant,
        customer,
        case_id=case,
        at=t0 + timedelta(minutes=15),
        resolution=pb.ResolutionAction(summary="re-sent"),
    )
    csat = builders.agent_action(
        bus.tenant,
        customer,
        case_id=case,
        at=t0 + timedelta(minutes=20),
        csat=pb.CsatResponse(score=2, comment="slow"),
    )
    for action in (resolution, csat):
        await bus.publish_action(action)
    await bus.recorded([resolution.event_id, csat.event_id])

    async with running(
        insights_config.model_copy(update={"timeline_address": bus.service.server.address})
    ) as service:
        channel, insights = _stub(service.server.address, callers.service)
        async with channel:
            [row] = await wait_for_rows(
                insights,
                query(bus.tenant),
                lambda rows: bool(rows) and figures(rows[0])["csat_mean"] is not None,
                failed=service.failed,
            )
            f = figures(row)
            assert (row.contacts, row.unique_customers, f["cases"]) == (1, 1, 1.0)
            assert f["first_response_seconds"] == pytest.approx(600, abs=1)
            assert f["resolution_seconds"] == pytest.approx(900, abs=1)
            assert f["first_contact_resolution_rate"] == 1.0
            assert (f["csat_mean"], f["csat_top2_share"], f["csat_comments"]) == (2.0, 0.0, 1.0)

            request = insights_pb2.ListFigureCasesRequest(
                tenant=bus.tenant, query=query(bus.tenant).query, figure="csat_mean"
            )
            behind = await insights.ListFigureCases(request)
            assert [(c.case_id, c.customer_id) for c in behind.cases] == [(case, customer)]
            exported = await insights.ExportCases(request)
            table = list(csv.DictReader(io.StringIO(exported.csv)))
            assert [(r["case_id"], r["csat_score"]) for r in table] == [(case, "2")]

            risk = await insights.ListCustomersAtRisk(
                insights_pb2.ListCustomersAtRiskRequest(tenant=bus.tenant)
            )
            [at_risk] = risk.customers
            assert at_risk.customer_id == customer
            assert ("low_csat", case, csat.event_id) in {
                (r.code, r.case_id, r.event_id) for r in at_risk.reasons
            }


def _notice(
    tenant: str, *, customer: str, case: str, at: datetime, **fields: Any
) -> notices_pb2.TimelineUpdated:
    """A notice as the timeline sends it, carrying its entry (a customer's chat message)."""
    chat = builders.chat(tenant, visitor=customer, at=at)
    return timeline_notice(tenant, chat, customer=customer, case=case, **fields)


async def _announce(nc: Client, notice: notices_pb2.TimelineUpdated, *, tenant: str = "") -> None:
    await nc.publish(
        f"timeline.updated.{tenant or notice.tenant}.{notice.customer_id}",
        notice.SerializeToString(),
    )
    await nc.flush()


async def test_garbage_foreign_and_repeated_notices_never_take_good_ones_down(
    insights_config: InsightsSettings, operator: Client, tenant: str, callers: CallerSet
) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    first = _notice(tenant, customer="c-1", case="case-1", at=at)
    async with running(insights_config) as service:
        channel, insights = _stub(service.server.address, callers.service)
        async with channel:
            await operator.publish(f"timeline.updated.{tenant}.c-1", b"\xff\x00 not a notice")
            await operator.publish(f"timeline.updated.{tenant}.c-1", b"x" * 200_000)
            # Claims another tenant than its subject: never applied to either.
            await _announce(
                operator, _notice(f"{tenant}x", customer="c-9", case="case-9", at=at), tenant=tenant
            )
            await _announce(operator, first)
            await _announce(operator, first)
            second = _notice(tenant, customer="c-2", case="case-2", at=at)
            await _announce(operator, second)
            [row] = await wait_for_rows(
                insights,
                query(tenant),
                lambda rows: bool(rows) and figures(rows[0])["cases"] == 2,
                failed=service.failed,
            )
            assert (row.contacts, row.unique_customers) == (2, 2)
            # A merge announced later counts both customers as one person from then on.
            merge = _notice(tenant, customer="c-1", case="case-1", at=at, merged_ids=["c-2"])
            await _announce(operator, merge)
            await wait_for_rows(
                insights,
                query(tenant),
                lambda rows: bool(rows) and rows[0].unique_customers == 1,
                failed=service.failed,
            )


async def test_it_catches_up_after_downtime_and_a_rebuild_gives_the_same_figures(
    insights_config: InsightsSettings, operator: Client, tenant: str, callers: CallerSet
) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    async with running(insights_config) as service:
        channel, insights = _stub(service.server.address, callers.service)
        async with channel:
            await _announce(operator, _notice(tenant, customer="c-1", case="case-1", at=at))
            await wait_for_rows(insights, query(tenant), bool, failed=service.failed)
    # While it is down, the mirror keeps what the timeline announces.
    for i in range(2, 5):
        await _announce(operator, _notice(tenant, customer=f"c-{i}", case=f"case-{i}", at=at))
    async with running(insights_config) as service:
        channel, insights = _stub(service.server.address, callers.service)
        async with channel:
            by_day = query(
                tenant,
                period=insights_pb2.METRIC_PERIOD_DAY,
                group_by=insights_pb2.METRIC_GROUP_CHANNEL,
            )
            before = await wait_for_rows(
                insights,
                by_day,
                lambda rows: sum(figures(r)["cases"] or 0 for r in rows) == 4,
                failed=service.failed,
            )
    done = await rebuild(insights_config)
    assert (done.recorded, done.skipped) == (4, 0)
    async with running(insights_config) as service:
        channel, insights = _stub(service.server.address, callers.service)
        async with channel:
            assert list((await insights.GetServiceMetrics(by_day)).rows) == before


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda r: setattr(r, "tenant", "../etc"), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda r: setattr(r, "tenant", ""), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda r: r.query.ClearField("since"), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda r: r.query.since.CopyFrom(r.query.until), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda r: setattr(r.query.since, "seconds", 0), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda r: setattr(r.query, "period", 99), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda r: setattr(r, "figure", "no_such_figure"), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda r: setattr(r, "figure", "x" * 300), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda r: setattr(r, "limit", 5000), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda r: setattr(r, "limit", -1), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda r: setattr(r, "group", "g" * 2_000_000), grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
async def test_hostile_drill_down_requests_are_refused(
    insights_config: InsightsSettings,
    tenant: str,
    callers: CallerSet,
    mutate: Any,
    code: grpc.StatusCode,
) -> None:
    request = insights_pb2.ListFigureCasesRequest(tenant=tenant, query=query(tenant).query)
    mutate(request)
    async with running(insights_config) as service:
        channel, insights = _stub(service.server.address, callers.service)
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await insights.ListFigureCases(request)
            assert refused.value.code() == code
            # The service still answers a good request afterwards.
            await insights.GetServiceMetrics(query(tenant))


async def test_only_service_identities_read_figures(
    insights_config: InsightsSettings, tenant: str, callers: CallerSet
) -> None:
    async with running(insights_config) as service:
        for token, code in (
            ("", grpc.StatusCode.UNAUTHENTICATED),
            ("forged-token", grpc.StatusCode.UNAUTHENTICATED),
            (callers.adapter("chat"), grpc.StatusCode.PERMISSION_DENIED),
        ):
            channel, insights = _stub(service.server.address, token)
            async with channel:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await insights.ListCustomersAtRisk(
                        insights_pb2.ListCustomersAtRiskRequest(tenant=tenant)
                    )
                assert refused.value.code() == code
