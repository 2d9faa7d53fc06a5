"""Insights figures for `make bench`: metric query latency over many interactions, freshness.

- Metric query latency: the insights read model is loaded with N interactions of a synthetic
  month (cases of contact, reply, resolution, CSAT or cancellation across channels, agents
  and 2,000 customers), then `serviceMetrics` (30 days, per day and agent) is timed through
  the gateway. Baseline: one customer's first timeline page (50 entries), through the same
  gateway in the same run.
- Freshness under a backlog: a backlog of chat messages (each a new customer, so a new case)
  is submitted and stored by the timeline (encryption on, as in `make run`: its notices carry
  no entry, insights reads the entries back); right after, single messages are submitted one
  by one and, from each acknowledgement, the time until `serviceMetrics` counts its case is
  taken: the first ones wait behind whatever of the backlog insights has not applied yet.
  Baseline: the time until the timeline stores the same message (`LookupEvents`), polled
  alongside. Also reported: from the backlog's last ack, stored at the timeline vs counted by
  insights (catch-up).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from gql import GraphQLRequest

from bench.stack import TENANT, bench_stack, chat_and_timeline, submit_batches, wait_stored
from bench.stats import ms_summary
from bench.targets import Row
from services.insights.events import CaseEvent
from services.insights.facts import fold_case
from services.insights.settings import InsightsSettings
from services.insights.store import open_store
from tsunagu.grpc_channels import open_channel
from tsunagu.local.graphql import http_session
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import ingest_pb2, insights_pb2, insights_pb2_grpc, timeline_pb2
from tsunagu.v1 import interaction_pb2 as pb

# A tenant of its own: the figures measured are those of the synthetic month only.
METRICS_TENANT = "bench-metrics"
INTERACTIONS = {"quick": 2_000, "default": 100_000, "full": 100_000}
REQUESTS = {"quick": 3, "default": 20, "full": 30}
FRESHNESS_SAMPLES = {"quick": 3, "default": 20, "full": 30}
# Messages queued ahead of the freshness samples (the default bench's earlier parts leave
# tens of thousands of events for insights to follow).
BACKLOG = {"quick": 300, "default": 20_000, "full": 50_000}
_BACKLOG_BATCH = 256
# Long enough for insights to work through a backlog one read-back at a time (the baseline).
_SAMPLE_LIMIT_S = 1800.0
_CHANNELS = (pb.CHANNEL_CHAT, pb.CHANNEL_VOICE, pb.CHANNEL_EMAIL, pb.CHANNEL_SMS)
_FOLLOW_UP_DUE = 24 * 3600.0
# No faster than the gateway refills a principal's query budget (600 a minute): a slow
# sample on a loaded machine would otherwise be refused (RATE_LIMITED) once the burst is gone.
_POLL_S = 0.1

METRICS = """
query ($since: DateTime!, $until: DateTime!) {
  serviceMetrics(since: $since, until: $until, period: DAY, groupBy: AGENT) {
    rows { period group contacts uniqueCustomers figures { name value } }
  }
}
"""
CASES = """
query ($since: DateTime!, $until: DateTime!) {
  serviceMetrics(since: $since, until: $until) { rows { figure(name: "cases") } }
}
"""
PAGE = """
query ($id: ID!) { customer(id: $id) { timeline(first: 50) { edges { node { eventId } } } } }
"""


def _case(tenant: str, i: int, start: float) -> list[CaseEvent]:
    """Four interactions of one case: contact, answer, resolution, then CSAT or cancellation."""
    at = start + i * 97.0
    case, customer, agent = f"case-{i}", f"cust-{i % 2000}", f"agent-{i % 20}"
    channel = _CHANNELS[i % len(_CHANNELS)]
    base: dict[str, Any] = {
        "tenant": tenant,
        "case_id": case,
        "customer_id": customer,
        "recorded_at": at,
    }

    def event(n: int, minutes: float, **fields: Any) -> CaseEvent:
        return CaseEvent(event_id=f"{case}-{n}", occurred_at=at + minutes * 60, **base, **fields)

    agent_desk = {"channel": pb.CHANNEL_AGENT_DESK, "kind": pb.KIND_NOTE}
    internal = {"direction": pb.DIRECTION_INTERNAL, "actor_type": pb.ACTOR_TYPE_AGENT}
    last = (
        event(4, 40, **agent_desk, **internal, actor_id=agent, action="csat", csat_score=1 + i % 5)
        if i % 7
        else event(
            4,
            40,
            **agent_desk,
            **internal,
            actor_id=agent,
            action="cancellation_request",
            cancellation_reason=1 + i % 7,
        )
    )
    return [
        event(
            1,
            0,
            channel=channel,
            kind=pb.KIND_MESSAGE,
            direction=pb.DIRECTION_INBOUND,
            actor_type=pb.ACTOR_TYPE_CUSTOMER,
            conversation=f"conv-{i}",
            queue=f"q{i % 4}",
        ),
        event(
            2,
            5 + i % 30,
            channel=channel,
            kind=pb.KIND_MESSAGE,
            direction=pb.DIRECTION_OUTBOUND,
            actor_type=pb.ACTOR_TYPE_AGENT,
            actor_id=agent,
        ),
        event(3, 35, **agent_desk, **internal, actor_id=agent, action="resolution"),
        last,
    ]


async def seed(stack: LocalStack, interactions: int, *, tenant: str = METRICS_TENANT) -> int:
    """Load the insights read model with `interactions` events of a synthetic month; cases."""
    settings = InsightsSettings(
        mongodb_uri=stack.mongodb_uri, mongodb_database=f"{stack.database}_insights"
    )
    mongo, store = open_store(settings)
    start = time.time() - 30 * 24 * 3600
    try:
        cases = interactions // 4
        for offset in range(0, cases, 1000):
            events = [
                e for i in range(offset, min(cases, offset + 1000)) for e in _case(tenant, i, start)
            ]
            await store.record_many(events)
            by_case: dict[str, list[CaseEvent]] = defaultdict(list)
            for e in events:
                by_case[e.case_id].append(e)
            folded = [fold_case(v, follow_up_due_seconds=_FOLLOW_UP_DUE) for v in by_case.values()]
            await store.save_cases([f for f in folded if f is not None])
        return cases
    finally:
        await mongo.close()


def _bearer(stack: LocalStack, tenant: str) -> str:
    return f"Bearer {stack.issuer.mint(tenant=tenant, roles=['supervisor'])}"


async def _timed(call: Callable[[], Awaitable[object]], requests: int) -> list[float]:
    await call()  # warm-up: connections, caches
    took = []
    for _ in range(requests):
        began = time.perf_counter()
        await call()
        took.append(time.perf_counter() - began)
    return took


async def _first_page(stack: LocalStack, requests: int) -> list[float]:
    """One customer with 50 chat messages; its first timeline page through the gateway."""
    visitor = f"bench-insights-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    items = [
        _message(now - timedelta(minutes=50 - n), visitor=visitor, text=f"message {n}")
        for n in range(50)
    ]
    async with chat_and_timeline(stack) as (ingest, timeline):
        await submit_batches(ingest, items, 50)
        owners = await wait_stored(timeline, TENANT, [i.event_id for i in items], limit_s=120)
    customer = owners[items[0].event_id]
    async with http_session(stack.graphql_url, authorization=_bearer(stack, TENANT)) as session:
        request = GraphQLRequest(PAGE, variable_values={"id": customer})
        return await _timed(lambda: session.execute(request), requests)


async def _load_tenant(stack: LocalStack, tenant: str, now: datetime) -> None:
    request = insights_pb2.GetServiceMetricsRequest(tenant=tenant)
    request.query.since.FromDatetime(now - timedelta(days=1))
    request.query.until.FromDatetime(now)
    async with open_channel(stack.insights_address, token=stack.grpc_callers.gateway) as channel:
        await insights_pb2_grpc.InsightsServiceStub(channel).GetServiceMetrics(request, timeout=300)


async def metric_latency(stack: LocalStack, mode: str) -> dict[str, Any]:
    """`serviceMetrics` over the seeded month vs one customer's first timeline page."""
    seeded = time.perf_counter()
    cases = await seed(stack, INTERACTIONS[mode])
    seed_s = time.perf_counter() - seeded
    now = datetime.now(UTC)
    # The tenant's first question loads its cases into the service's memory: timed apart,
    # straight at insights with a long deadline (the gateway gives up after 5 s).
    loaded = time.perf_counter()
    await _load_tenant(stack, METRICS_TENANT, now)
    load_s = time.perf_counter() - loaded
    window = {"since": (now - timedelta(days=31)).isoformat(), "until": now.isoformat()}
    auth = _bearer(stack, METRICS_TENANT)
    async with http_session(stack.graphql_url, authorization=auth) as session:
        request = GraphQLRequest(METRICS, variable_values=window)
        rows = (await session.execute(request))["serviceMetrics"]["rows"]
        metrics = await _timed(lambda: session.execute(request), REQUESTS[mode])
    page = await _first_page(stack, REQUESTS[mode])
    return {
        "interactions": cases * 4,
        "cases": cases,
        "rows": len(rows),
        "seed_s": seed_s,
        "first_question_s": load_s,
        "metrics_ms": ms_summary(metrics),
        "first_page_ms": ms_summary(page),
    }


async def _until(check: Callable[[], Awaitable[bool]], poll_s: float = _POLL_S) -> None:
    while True:
        if await check():
            return
        await asyncio.sleep(poll_s)


def _message(at: datetime, *, visitor: str = "", text: str = "freshness") -> pb.Interaction:
    """A customer's chat message at `at` (from a new visitor unless one is named)."""
    item = pb.Interaction(
        event_id=str(uuid.uuid4()),
        tenant=TENANT,
        channel=pb.CHANNEL_CHAT,
        kind=pb.KIND_MESSAGE,
        direction=pb.DIRECTION_INBOUND,
        actor=pb.Actor(type=pb.ACTOR_TYPE_CUSTOMER),
    )
    item.occurred_at.FromDatetime(at)
    visitor = visitor or f"b-{uuid.uuid4().hex}"
    item.identifiers.add(kind=pb.IDENTIFIER_KIND_CHAT_VISITOR, value=visitor)
    item.content.text = text
    item.chat.session_id = visitor
    return item


async def _sample(ingest: Any, timeline: Any, session: Any, at: datetime) -> tuple[float, float]:
    """One message opening a case at `at`: (ack → in the figure, ack → stored)."""
    item = _message(at)
    window = {"since": at.isoformat(), "until": (at + timedelta(seconds=1)).isoformat()}
    request = GraphQLRequest(CASES, variable_values=window)
    lookup = timeline_pb2.LookupEventsRequest(tenant=TENANT, event_ids=[item.event_id])
    response = await ingest.Submit(ingest_pb2.SubmitRequest(interaction=item))
    acked = time.perf_counter()
    if response.result.status != ingest_pb2.SubmitResult.STATUS_ACCEPTED:
        raise RuntimeError(f"not accepted: {response.result}")

    async def counted() -> bool:
        rows = (await session.execute(request))["serviceMetrics"]["rows"]
        return bool(rows) and rows[0]["figure"] == 1

    async def stored() -> bool:
        return bool((await timeline.LookupEvents(lookup)).found)

    async def since_ack(check: Callable[[], Awaitable[bool]]) -> float:
        await _until(check)
        return time.perf_counter() - acked

    shown, kept = await asyncio.wait_for(
        asyncio.gather(since_ack(counted), since_ack(stored)), timeout=_SAMPLE_LIMIT_S
    )
    return shown, kept


async def _count_cases(stack: LocalStack, since: datetime, until: datetime) -> int:
    """Cases insights counts in `[since, until)`, asked over gRPC (no gateway budget)."""
    request = insights_pb2.GetServiceMetricsRequest(tenant=TENANT)
    request.query.since.FromDatetime(since)
    request.query.until.FromDatetime(until)
    async with open_channel(stack.insights_address, token=stack.grpc_callers.gateway) as channel:
        answer = await insights_pb2_grpc.InsightsServiceStub(channel).GetServiceMetrics(
            request, timeout=300
        )
    return sum(int(f.value) for r in answer.rows for f in r.figures if f.name == "cases")


async def _all_counted(stack: LocalStack, since: datetime, size: int) -> float:
    """When insights counts `size` cases opened in the hour from `since` (perf_counter)."""
    until = since + timedelta(hours=1)

    async def all_there() -> bool:
        return await _count_cases(stack, since, until) >= size

    # Once a second: each question folds the hour's cases, work taken from the feed.
    await _until(all_there, poll_s=1.0)
    return time.perf_counter()


async def freshness(stack: LocalStack, mode: str) -> dict[str, Any]:
    """Under a backlog: ack → counted in `serviceMetrics`, and ack → stored, per message."""
    # The backlog: messages of new customers opening cases in an hour of their own.
    size = BACKLOG[mode]
    start = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(hours=uuid.uuid4().int % 1000)
    queued = [_message(start + timedelta(seconds=3600 * n / size)) for n in range(size)]
    async with chat_and_timeline(stack) as (ingest, timeline):
        await submit_batches(ingest, queued, _BACKLOG_BATCH)
        acked = time.perf_counter()
        counting = asyncio.create_task(_all_counted(stack, start, size))
        await wait_stored(timeline, TENANT, [i.event_id for i in queued], limit_s=_SAMPLE_LIMIT_S)
        stored_s = time.perf_counter() - acked
    # Each sample opens a case in a one-second window of its own in the past, so the figure
    # of that window counts it and nothing else.
    base = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(hours=uuid.uuid4().int % 1000)
    samples = []
    async with (
        chat_and_timeline(stack) as (ingest, timeline),
        http_session(stack.graphql_url, authorization=_bearer(stack, TENANT)) as session,
    ):
        for n in range(FRESHNESS_SAMPLES[mode]):
            try:
                sample = await _sample(ingest, timeline, session, base + timedelta(seconds=10 * n))
            except TimeoutError:
                # Benchmarks report, never fail: the row says it was never visible in time.
                break
            samples.append(sample)
    counted_s = None
    if counting.done() or samples:
        counted_s = await asyncio.wait_for(counting, _SAMPLE_LIMIT_S) - acked
    counting.cancel()
    return {
        "visible_ms": ms_summary([shown for shown, _ in samples]),
        "stored_ms": ms_summary([kept for _, kept in samples]),
        "backlog": {"events": size, "stored_s": stored_s, "counted_s": counted_s},
        "gave_up_after_s": None if samples else _SAMPLE_LIMIT_S,
    }


async def measure(stack: LocalStack, mode: str) -> dict[str, Any]:
    return {"latency": await metric_latency(stack, mode), "freshness": await freshness(stack, mode)}


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _s(value: float | None) -> str:
    return "never (the samples gave up)" if value is None else f"{value:.1f} s"


def rows(result: dict[str, Any]) -> list[Row]:
    """The insights rows of the table (issue 13 asks to report them, with no bound)."""
    if "insights" not in result:
        return []
    latency, fresh = result["insights"]["latency"], result["insights"]["freshness"]
    metric, page = latency["metrics_ms"].get("p50"), latency["first_page_ms"].get("p50")
    shown, kept = fresh["visible_ms"].get("p50"), fresh["stored_ms"].get("p50")
    # Met when even the slowest sample (the first, behind the backlog) was within 5 s.
    worst, queued = fresh["visible_ms"].get("max"), fresh["backlog"]
    return [
        Row(
            f"insights: metric query over {latency['interactions']:,} interactions (p50)",
            f"{_ms(metric)} (first question {latency['first_question_s']:.1f} s)",
            f"first timeline page {_ms(page)}",
            None if metric is None or not page else metric / page,
            "report",
            None,
        ),
        Row(
            f"insights: freshness, event ack → visible in the figure, after a backlog of "
            f"{queued['events']:,} (p50)",
            f"{_ms(shown)} (p99 {_ms(fresh['visible_ms'].get('p99'))}; backlog all counted "
            f"{_s(queued['counted_s'])} after its last ack)",
            f"ack → stored {_ms(kept)} (backlog all stored {queued['stored_s']:.1f} s)",
            None if shown is None or not kept else shown / kept,
            "a few seconds",
            False if fresh.get("gave_up_after_s") else None if worst is None else worst <= 5000,
        ),
    ]


async def _standalone(mode: str, *, only_freshness: bool) -> dict[str, Any]:
    async with bench_stack() as stack:
        if not only_freshness:
            return {"insights": await measure(stack, mode)}
        fresh = await freshness(stack, mode)
        skipped = {"interactions": 0, "first_question_s": 0.0, "metrics_ms": {}}
        return {"insights": {"latency": {**skipped, "first_page_ms": {}}, "freshness": fresh}}


if __name__ == "__main__":
    import sys

    from bench.targets import table

    chosen = "quick" if "--quick" in sys.argv else "full" if "--full" in sys.argv else "default"
    # `--freshness`: that row alone (the metric query's seeding takes minutes).
    result = asyncio.run(_standalone(chosen, only_freshness="--freshness" in sys.argv))
    print(table(rows(result)))
    print(result["insights"]["freshness"])
