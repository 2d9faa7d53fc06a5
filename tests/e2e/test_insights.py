"""Supervisors' figures end to end: ingest → NATS → timeline → insights → gateway (GraphQL)."""

from __future__ import annotations

import asyncio
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from tests import builders
from tests.e2e.agent_desk import (
    TENANT,
    eventually,
    execute,
    http_session,
    submit,
    unique_phone,
    ws_session,
)
from tsunagu.local.stack import LocalStack

SUPERVISOR = ("supervisor",)
ANALYST = ("analyst",)

SCREEN_POP = """
query ($phone: String!) { customerByIdentifier(kind: PHONE, value: $phone) { id openCase { id } } }
"""
AT_RISK = """
{ customersAtRisk(first: 200) { customerId score reasons { code caseId eventId }
    customer { id } } }
"""
METRICS = """
query ($since: DateTime!, $until: DateTime!) {
  serviceMetrics(since: $since, until: $until, groupBy: CHANNEL) {
    timeZone
    rows { group contacts uniqueCustomers figure(name: "retention_rate")
           cancellationsByReason { reason count } }
  }
}
"""
CASES = """
query ($since: DateTime!, $until: DateTime!, $figure: String!, $group: String!, $first: Int!) {
  metricCases(since: $since, until: $until, groupBy: CHANNEL, figure: $figure,
              rowGroup: $group, first: $first) {
    truncated cases { caseId customerId case { id status } customer { id } } csv
  }
}
"""


def _window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "since": (now - timedelta(hours=1)).isoformat(),
        "until": (now + timedelta(hours=1)).isoformat(),
    }


async def _act(session: Any, mutation: str, **variables: Any) -> str:
    result = await execute(session, mutation, **variables)
    [payload] = result.values()
    assert payload["status"] == "STORED", payload
    return str(payload["eventId"])


async def _screen_pop(session: Any, phone: str) -> dict[str, Any]:
    """The customer with its open case, once the timeline has both."""
    popped = await eventually(
        session,
        SCREEN_POP,
        lambda r: (r["customerByIdentifier"] or {}).get("openCase") is not None,
        phone=phone,
    )
    return dict(popped["customerByIdentifier"])


async def _first(session: Any, subscription: str) -> dict[str, Any]:
    async for update in session.subscribe(GraphQLRequest(subscription)):
        return dict(update)
    raise AssertionError("the subscription ended without an update")


def _reasons(result: dict[str, Any], customer: str) -> dict[str, dict[str, Any]]:
    mine = [c for c in result["customersAtRisk"] if c["customerId"] == customer]
    return {r["code"]: r for r in mine[0]["reasons"]} if mine else {}


async def test_a_cancellation_call_becomes_a_risk_then_a_retention_figure_with_its_case(
    stack: LocalStack,
) -> None:
    suffix, phone = unique_phone("080-77")
    visitor = f"v-insights-{suffix}"
    at = datetime.now(UTC) - timedelta(minutes=5)
    await submit(stack, "chat", builders.chat(TENANT, visitor=visitor, phone=phone, at=at))
    reply = builders.agent_reply(
        TENANT, visitor=visitor, text="I can help", at=at + timedelta(minutes=1)
    )
    await submit(stack, "chat", reply)

    async with http_session(stack, SUPERVISOR) as supervisor:
        popped = await _screen_pop(supervisor, phone)
        customer, case = popped["id"], popped["openCase"]["id"]
        ids = {"c": customer, "k": case}
        request = await _act(
            supervisor,
            """mutation ($c: ID!, $k: ID!) { requestCancellation(customerId: $c, caseId: $k,
                reason: SURPLUS_STOCK) { status eventId } }""",
            **ids,
        )
        rated = await _act(
            supervisor,
            """mutation ($c: ID!, $k: ID!) { recordCsat(customerId: $c, caseId: $k, score: 1,
                comment: "too many boxes") { status eventId } }""",
            **ids,
        )
        risky = await eventually(
            supervisor,
            AT_RISK,
            lambda r: {"open_cancellation_request", "low_csat"} <= set(_reasons(r, customer)),
        )
        reasons = _reasons(risky, customer)
        assert reasons["open_cancellation_request"] == {
            "code": "open_cancellation_request",
            "caseId": case,
            "eventId": request,
        }
        assert reasons["low_csat"]["eventId"] == rated
        [entry] = [c for c in risky["customersAtRisk"] if c["customerId"] == customer]
        assert entry["customer"] == {"id": customer}

        await _act(
            supervisor,
            """mutation ($c: ID!, $k: ID!) { recordCancellationOutcome(customerId: $c,
                caseId: $k, outcome: RETAINED) { status eventId } }""",
            **ids,
        )
        window = _window()
        behind = await eventually(
            supervisor,
            CASES,
            lambda r: case in {c["caseId"] for c in r["metricCases"]["cases"]},
            figure="retention_rate",
            group="chat",
            first=200,
            since=window["since"],
            until=window["until"],
        )
        [mine] = [c for c in behind["metricCases"]["cases"] if c["caseId"] == case]
        assert mine["customer"] == {"id": customer}
        assert mine["case"]["id"] == case
        assert case in behind["metricCases"]["csv"]
        # Retained: no longer an open cancellation request.
        assert "open_cancellation_request" not in _reasons(
            await execute(supervisor, AT_RISK), customer
        )
        metrics = (await execute(supervisor, METRICS, **window))["serviceMetrics"]
        assert metrics["timeZone"] == "Asia/Tokyo"
        [chat] = [r for r in metrics["rows"] if r["group"] == "chat"]
        assert chat["figure"] is not None
        assert 0 < chat["figure"] <= 1
        assert "surplus_stock" in {r["reason"] for r in chat["cancellationsByReason"]}
        assert chat["uniqueCustomers"] <= chat["contacts"]


async def test_analysts_read_figures_but_not_who_is_at_risk_and_agents_neither(
    stack: LocalStack,
) -> None:
    async with http_session(stack, ANALYST) as analyst:
        assert (await execute(analyst, METRICS, **_window()))["serviceMetrics"] is not None
        with pytest.raises(TransportQueryError) as refused:
            await execute(analyst, AT_RISK)
        assert refused.value.errors is not None
        assert refused.value.errors[0]["extensions"]["code"] == "FORBIDDEN"
    async with http_session(stack) as agent:
        with pytest.raises(TransportQueryError) as refused:
            await execute(agent, METRICS, **_window())
        assert refused.value.errors is not None
        assert refused.value.errors[0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"figure": "no_such_figure"}, "unknown figure"),
        ({"first": 201}, "`first`"),
        ({"first": 0}, "`first`"),
        ({"group": "g" * 300}, "256"),
        ({"since": "2020-01-01T00:00:00+00:00"}, "366 days"),
        ({"since": "2030-01-01T00:00:00+00:00"}, "after since"),
        ({"since": "2026-01-01T00:00:00"}, "time zone"),
    ],
)
async def test_hostile_metric_arguments_are_refused_as_bad_input(
    stack: LocalStack, variables: dict[str, Any], message: str
) -> None:
    values = {"figure": "cases", "group": "chat", "first": 10, **_window(), **variables}
    async with http_session(stack, SUPERVISOR) as supervisor:
        with pytest.raises(TransportQueryError) as refused:
            await execute(supervisor, CASES, **values)
    assert refused.value.errors is not None
    [error] = refused.value.errors
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in error["message"]


async def test_supervisors_hear_when_a_customer_becomes_at_risk(stack: LocalStack) -> None:
    suffix, phone = unique_phone("080-78")
    at = datetime.now(UTC) - timedelta(minutes=2)
    await submit(
        stack, "chat", builders.chat(TENANT, visitor=f"v-risk-{suffix}", phone=phone, at=at)
    )
    async with (
        http_session(stack, SUPERVISOR) as supervisor,
        ws_session(stack, SUPERVISOR) as live,
    ):
        popped = await _screen_pop(supervisor, phone)
        customer, case = popped["id"], popped["openCase"]["id"]
        heard: asyncio.Queue[list[str]] = asyncio.Queue()

        async def listen() -> None:
            request = GraphQLRequest("subscription { atRiskChanged { customerIds } }")
            async for update in live.subscribe(request):
                await heard.put(update["atRiskChanged"]["customerIds"])

        listener = asyncio.create_task(listen())
        try:
            # No message says "subscribed": act until the change is heard.
            # Each new score changes the customer's reasons, so each is announced. Up to a
            # minute of tries: on busy shared cores a change may take more than 3 s to arrive.
            for score in (2, 1) * 10:
                await _act(
                    supervisor,
                    """mutation ($c: ID!, $k: ID!, $s: Int!) { recordCsat(customerId: $c,
                        caseId: $k, score: $s) { status eventId } }""",
                    c=customer,
                    k=case,
                    s=score,
                )
                try:
                    ids = await asyncio.wait_for(heard.get(), timeout=3)
                except TimeoutError:
                    continue  # the subscription was not live yet
                if customer in ids:
                    break
            else:
                pytest.fail("the change was never heard")
        finally:
            listener.cancel()
    async with ws_session(stack) as agent_live:
        with pytest.raises(TransportQueryError) as refused:
            await _first(agent_live, "subscription { atRiskChanged { customerIds } }")
        assert refused.value.errors is not None
        assert refused.value.errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_insights_counts_the_notices_it_applied_and_their_freshness(
    stack: LocalStack,
) -> None:
    suffix, phone = unique_phone("080-79")
    at = datetime.now(UTC) - timedelta(minutes=1)
    await submit(stack, "chat", builders.chat(TENANT, visitor=f"v-m-{suffix}", phone=phone, at=at))
    url = stack.metrics.urls["insights"]
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        text = await asyncio.to_thread(_scrape, url)
        if 'tsunagu_insights_notices_total{outcome="recorded"' in text:
            break
        assert asyncio.get_running_loop().time() < deadline, text[-2000:]
        await asyncio.sleep(0.2)
    assert "tsunagu_insights_freshness_seconds_count" in text


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())
