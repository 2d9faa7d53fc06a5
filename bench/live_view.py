"""The agent's live view, measured: subscription push freshness and timeline page latency.

Two measures, each with a baseline taken in the same run on the same processes:

- **Push freshness at a steady load.** `timelineUpdated(customerId)` subscriptions are open
  over WebSocket (graphql-transport-ws, through the `gql` client) for a handful of
  customers while chat messages go through the chat ingestion `Submit` at a fixed rate
  (open loop: one request is sent on schedule whatever the previous one is doing). Each
  message's freshness is the time from its `Submit` response (the durable JetStream ack)
  to the push carrying its event id. Baseline: a core-NATS publish → receive ping on the
  same nats-server, i.e. the bus's own latency. Each run also splits the time at the
  timeline's `recorded_at` (one wall clock on one machine) and counts the store's rows. By
  default the load runs again once the big customer below is stored, to show how freshness
  depends on the store's size.
- **Timeline page latency for a customer with many interactions.** One customer is seeded
  through the real pipeline (chat `SubmitBatch`, plus a share of email interactions
  published to JetStream with the ingestion services' own publisher, since the bench stack
  runs chat ingestion only) and waited for until stored. Then GraphQL
  `customer(id) { timeline(first: 50) }` is timed for the first page, a page deep in
  (reached by following `after` cursors) and a filtered page. Baselines: the same first
  page for a customer with a few interactions, and the raw store query the timeline runs
  (`find().sort().limit()`, same filter; after a cursor the same two range queries) for the
  large customer.

Benchmarks report; nothing here asserts a time. Missed pushes are counted, not raised.
`python -m bench.live_view` runs only these measures on a stack of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import nats
from gql import GraphQLRequest
from pymongo import DESCENDING, AsyncMongoClient

from bench.interactions import inbound
from bench.stack import TENANT, bench_stack, chat_and_timeline, submit_batches, wait_stored
from bench.stats import ms_summary
from tsunagu.bus.publisher import InteractionPublisher
from tsunagu.local.graphql import http_session, ws_session
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import (
    ingest_pb2,
    ingest_pb2_grpc,
    interaction_pb2,
)

LIVE = """
subscription Live($customerId: ID!) {
  timelineUpdated(customerId: $customerId) {
    customerId eventId channel kind entry { eventId channel text }
  }
}
"""

PAGE = """
query Page($id: ID!, $first: Int!, $after: String, $channels: [Channel!], $kinds: [Kind!]) {
  customer(id: $id) {
    timeline(first: $first, after: $after, channels: $channels, kinds: $kinds) {
      edges { cursor node { eventId occurredAt channel kind direction text caseId
                            actor { type displayName } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

PAGE_SIZE = 50
# What the timeline asks the store for: one more than the page, to know whether more follow.
_STORE_LIMIT = PAGE_SIZE + 1
# Every n-th seeded interaction is an email: the filtered page looks for those.
_EMAIL_EVERY = 20


@dataclass(frozen=True, slots=True)
class LiveViewSizes:
    """How much of each measure to run (the defaults keep it under ~2 minutes)."""

    rate: float = 30.0
    duration_s: float = 15.0
    customers: int = 5
    grace_s: float = 10.0
    nats_pings: int = 2000
    seed_count: int = 10_000
    small_count: int = 10
    seed_batch: int = 200
    requests: int = 30
    deep_pages: int = 20
    push_after_seed: bool = True
    background_rate: float = 500.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LiveViewSizes:
        sized = {name: getattr(args, flag[2:].replace("-", "_")) for name, flag, _ in _FLAGS}
        return cls(**sized, push_after_seed=not args.no_push_after_seed)


# Command-line flags sizing the measures: (LiveViewSizes field, flag, help).
_FLAGS = (
    ("rate", "--live-rate", "Submits per second"),
    ("duration_s", "--live-seconds", "steady-load duration"),
    ("customers", "--live-customers", "subscribed customers"),
    ("seed_count", "--page-seed", "interactions of the big customer"),
    ("small_count", "--page-small", "the baseline customer's"),
    ("requests", "--page-requests", "timed requests per page"),
    ("deep_pages", "--page-deep", "pages followed to the deep one"),
    ("background_rate", "--live-background", "other customers' events/s under load (0: skip)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags sizing these measures, on the bench's command line."""
    group = parser.add_argument_group("live view (push freshness, timeline pages)")
    default = LiveViewSizes()
    for name, flag, help_text in _FLAGS:
        value = getattr(default, name)
        group.add_argument(flag, type=type(value), default=value, help=help_text)
    group.add_argument(
        "--no-push-after-seed",
        action="store_true",
        help="skip measuring push freshness again once the big customer is stored",
    )


# -- helpers ------------------------------------------------------------------------------------


def _interaction(
    tenant: str,
    visitor: str,
    at: datetime,
    text: str,
    *,
    email: bool = False,
) -> interaction_pb2.Interaction:
    """A customer's chat message (or, with `email`, an email from the same customer)."""
    pb = interaction_pb2
    address = f"{visitor}@example.com"
    identifiers = [
        pb.Identifier(kind=pb.IDENTIFIER_KIND_CHAT_VISITOR, value=visitor),
        pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=address),
    ]
    content = pb.Content(text=text)
    if not email:
        chat = pb.ChatDetail(session_id=f"session-{visitor}")
        return inbound(
            tenant, pb.CHANNEL_CHAT, pb.KIND_MESSAGE, at, identifiers, content=content, chat=chat
        )
    interaction = inbound(tenant, pb.CHANNEL_EMAIL, pb.KIND_EMAIL, at, identifiers, content=content)
    interaction.conversation_ref = f"email:{visitor}"
    interaction.email.message_id = f"<{interaction.event_id}@example.com>"
    interaction.email.from_address = address
    interaction.email.to_addresses.append("support@example.com")
    interaction.email.subject = "About my order"
    interaction.email.text_body = text
    return interaction


# -- baseline: the bus's own latency ------------------------------------------------------------


async def nats_ping_latency(
    nats_url: str, count: int, payload_bytes: int = 512
) -> tuple[list[float], int]:
    """Seconds from a core-NATS publish to its delivery to another connection, one at a time,
    and how many pings never arrived within 5 s (core NATS delivers at most once: reported,
    not fatal; a late one is told apart by its number)."""
    publisher = await nats.connect(nats_url)
    receiver = await nats.connect(nats_url)
    subject = f"bench.ping.{uuid.uuid4().hex}"
    loop = asyncio.get_running_loop()
    expected = -1
    arrived: asyncio.Future[float] = loop.create_future()

    async def on_message(msg: Any) -> None:
        if int(msg.data[:12]) == expected and not arrived.done():
            arrived.set_result(time.perf_counter())

    try:
        await receiver.subscribe(subject, cb=on_message)
        await receiver.flush()
        latencies = []
        lost = 0
        for i in range(count + 50):
            expected, arrived = i, loop.create_future()
            sent = time.perf_counter()
            await publisher.publish(subject, f"{i:012d}".encode().ljust(payload_bytes, b"x"))
            try:
                received = await asyncio.wait_for(arrived, 5)
            except TimeoutError:
                lost += i >= 50
                continue
            if i >= 50:  # the first ones warm up both connections
                latencies.append(received - sent)
    finally:
        await publisher.close()
        await receiver.close()
    return latencies, lost


# -- push freshness -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Pushes:
    """Pushes as they arrive: event id → perf_counter and wall-clock times of arrival."""

    at: dict[str, float] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)
    without_entry: int = 0
    errors: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def listen(self, session: Any, customer_id: str) -> None:
        request = GraphQLRequest(LIVE, variable_values={"customerId": customer_id})
        try:
            async for update in session.subscribe(request):
                received, wall = time.perf_counter(), time.time()
                body = update["timelineUpdated"]
                self.at.setdefault(body["eventId"], received)
                self.wall.setdefault(body["eventId"], wall)
                if body.get("entry") is None:
                    self.without_entry += 1
                self.arrived.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported: a benchmark never fails
            self.errors.append(f"{customer_id}: {exc!r}")

    async def wait_for(self, event_ids: Iterable[str], seconds: float) -> bool:
        """Wait until every event was pushed, or `seconds` pass; whether all were."""
        wanted = set(event_ids)
        deadline = time.perf_counter() + seconds
        while not wanted <= self.at.keys():
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            self.arrived.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)
        return True


@dataclass(slots=True)
class _Submitter:
    """Chat `Submit`s, each acknowledgement's time kept by event id (perf_counter, wall)."""

    ingest: ingest_pb2_grpc.IngestServiceAsyncStub
    acked: dict[str, float] = field(default_factory=dict)
    acked_wall: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    async def submit(self, item: interaction_pb2.Interaction) -> None:
        try:
            response = await self.ingest.Submit(ingest_pb2.SubmitRequest(interaction=item))
        except grpc.aio.AioRpcError as exc:
            self.failures.append(f"{exc.code()}: {exc.details()}")
            return
        acked, wall = time.perf_counter(), time.time()
        if response.result.status != ingest_pb2.SubmitResult.STATUS_ACCEPTED:
            self.failures.append(str(response.result))
            return
        self.acked[item.event_id] = acked
        self.acked_wall[item.event_id] = wall

    async def steady(self, tenant: str, visitors: Sequence[str], rate: float, total: int) -> float:
        """Send `total` messages at `rate` per second, open loop; the seconds it took."""
        started = time.perf_counter()
        sends = []
        for i in range(total):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            item = _interaction(
                tenant, visitors[i % len(visitors)], datetime.now(UTC), f"message {i}"
            )
            sends.append(asyncio.create_task(self.submit(item)))
        await asyncio.gather(*sends)
        return time.perf_counter() - started


async def _warm_up(
    submitter: _Submitter, pushes: _Pushes, tenant: str, visitors: Sequence[str]
) -> int:
    """No protocol message says "subscribed": send until each customer's first push."""
    sent = 0
    for visitor in visitors:
        for _ in range(50):
            item = _interaction(tenant, visitor, datetime.now(UTC), "warm-up")
            await submitter.submit(item)
            sent += 1
            if await pushes.wait_for([item.event_id], 1.0):
                break
    return sent


def _agent(stack: LocalStack, tenant: str) -> str:
    return f"Bearer {stack.issuer.mint(tenant=tenant, roles=['agent'])}"


async def _background(
    ingest: ingest_pb2_grpc.IngestServiceAsyncStub, tenant: str, rate: float, stop: asyncio.Event
) -> int:
    """Other customers' chat traffic at `rate` events/s (`SubmitBatch` every 0.1 s, catching
    up on schedule when a call was slow) until `stop`; how many were accepted.
    """
    run = uuid.uuid4().hex[:6]
    started, sent = time.perf_counter(), 0
    while not stop.is_set():
        due = round(rate * (time.perf_counter() - started)) - sent
        if due > 0:
            items = [
                _interaction(tenant, f"bg-{run}-{(sent + k) % 500}", datetime.now(UTC), "bg")
                for k in range(due)
            ]
            await submit_batches(ingest, items, 1000)
            sent += due
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    return sent


async def push_freshness(
    stack: LocalStack, tenant: str, sizes: LiveViewSizes, *, background: float = 0.0
) -> dict[str, Any]:
    """Submit ack → `timelineUpdated` push, at `sizes.rate` Submits per second, while other
    customers' traffic arrives at `background` events per second.
    """
    run = uuid.uuid4().hex[:6]
    visitors = [f"live-{run}-{n}" for n in range(sizes.customers)]
    pushes = _Pushes()
    total = max(1, round(sizes.rate * sizes.duration_s))
    async with AsyncExitStack() as resources:
        ingest, timeline = await resources.enter_async_context(chat_and_timeline(stack))
        setup = _Submitter(ingest)
        # One first message makes each visitor a customer; subscriptions need the id.
        firsts = [_interaction(tenant, v, datetime.now(UTC), "hello") for v in visitors]
        for item in firsts:
            await setup.submit(item)
        owners = await wait_stored(timeline, tenant, [i.event_id for i in firsts], limit_s=60)
        customers = [owners[i.event_id] for i in firsts]
        listeners = []
        for customer_id in customers:
            session = await resources.enter_async_context(
                ws_session(stack.graphql_url, authorization=_agent(stack, tenant))
            )
            listeners.append(asyncio.create_task(pushes.listen(session, customer_id)))
        try:
            warmups = await _warm_up(setup, pushes, tenant, visitors)
            pushes.without_entry = 0
            load = _Submitter(setup.ingest)
            stop = asyncio.Event()
            others = asyncio.create_task(_background(ingest, tenant, background, stop))
            try:
                sent_for_s = await load.steady(tenant, visitors, sizes.rate, total)
            finally:
                stop.set()
                background_sent = await others
            await pushes.wait_for(load.acked, sizes.grace_s)
        finally:
            for task in listeners:
                task.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)
    rows = await _store_rows(stack)
    acked = load.acked
    latencies = [pushes.at[e] - t for e, t in acked.items() if e in pushes.at]
    # Where the time goes, on the wall clock all processes share: the timeline stamps
    # `recorded_at` when it takes the event from the stream (before its store writes).
    recorded = await _recorded_at(stack, tenant, list(acked))
    to_recorded = [recorded[e] - load.acked_wall[e] for e in acked if e in recorded]
    to_push = [pushes.wall[e] - recorded[e] for e in acked if e in recorded and e in pushes.wall]
    return {
        "customers": len(customers),
        "background_per_s": background_sent / sent_for_s,
        "store_interactions": rows,
        "grace_s": sizes.grace_s,
        "target_rate_per_s": sizes.rate,
        "achieved_rate_per_s": total / sent_for_s,
        "submitted": total,
        "acked": len(acked),
        "submit_failures": len(load.failures),
        "pushed": len(latencies),
        "missed_pushes": len(acked) - len(latencies),
        "pushes_without_entry": pushes.without_entry,
        "warmup_submits": warmups,
        "subscription_errors": pushes.errors,
        "freshness_ms": ms_summary(latencies),
        "ack_to_recorded_at_ms": ms_summary(to_recorded),
        "recorded_at_to_push_ms": ms_summary(to_push),
    }


async def _store_rows(stack: LocalStack) -> int:
    """Interactions in the store (all tenants): what a scan of the collection reads."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_uri)
    try:
        return await client[stack.database]["interactions"].count_documents({})
    finally:
        await client.close()


async def _recorded_at(stack: LocalStack, tenant: str, event_ids: list[str]) -> dict[str, float]:
    """Event id → the timeline's `recorded_at` (epoch seconds, millisecond precision)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_uri, tz_aware=True)
    try:
        cursor = client[stack.database]["interactions"].find(
            {"tenant": tenant, "event_id": {"$in": event_ids}}, {"event_id": 1, "recorded_at": 1}
        )
        return {doc["event_id"]: doc["recorded_at"].timestamp() async for doc in cursor}
    finally:
        await client.close()


# -- timeline pages ---------------------------------------------------------------------------


async def _seed_customer(
    stack: LocalStack,
    tenant: str,
    count: int,
    batch: int,
) -> tuple[str, dict[str, float]]:
    """A customer with `count` interactions through the pipeline; (customer id, rates)."""
    visitor = f"pages-{uuid.uuid4().hex[:8]}"
    # A month of history, oldest first, so that every page is a range of the log.
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=29) / max(1, count)
    items = [
        _interaction(
            tenant,
            visitor,
            start + i * step,
            f"message {i}: my delivery is late",
            email=i % _EMAIL_EVERY == _EMAIL_EVERY - 1,
        )
        for i in range(count)
    ]
    chats = [i for i in items if i.channel == interaction_pb2.CHANNEL_CHAT]
    emails = [i for i in items if i.channel == interaction_pb2.CHANNEL_EMAIL]
    # The customer exists before the rest arrives, so nothing is resolved concurrently.
    head, chats = chats[:1], chats[1:]
    nc = await nats.connect(stack.nats_url)
    try:
        async with chat_and_timeline(stack) as (ingest, timeline):
            started = time.perf_counter()
            await ingest.SubmitBatch(ingest_pb2.SubmitBatchRequest(interactions=head))
            owners = await wait_stored(timeline, tenant, [head[0].event_id], limit_s=60)
            publisher = InteractionPublisher(nc.jetstream())

            async def publish_emails() -> None:
                for offset in range(0, len(emails), batch):
                    for outcome in await publisher.publish_many(emails[offset : offset + batch]):
                        if isinstance(outcome, Exception):
                            raise outcome

            await asyncio.gather(submit_batches(ingest, chats, batch), publish_emails())
            acked = time.perf_counter() - started
            owners.update(
                await wait_stored(timeline, tenant, [i.event_id for i in items], limit_s=900)
            )
            stored = time.perf_counter() - started
    finally:
        await nc.close()
    customers = set(owners.values())
    if len(customers) != 1:
        raise RuntimeError(f"seeded interactions landed on {len(customers)} customers")
    return customers.pop(), {
        "interactions": count,
        "emails": len(emails),
        "acked_s": acked,
        "stored_s": stored,
        "stored_per_s": count / stored,
    }


async def _time_page(session: Any, requests: int, **variables: Any) -> list[float]:
    request = GraphQLRequest(PAGE, variable_values={"first": PAGE_SIZE, **variables})
    await session.execute(request)  # warm
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        result = await session.execute(request)
        latencies.append(time.perf_counter() - started)
        if result["customer"] is None:
            raise RuntimeError(f"customer {variables['id']} not found")
    return latencies


async def _deep_cursor(session: Any, customer_id: str, pages: int) -> tuple[str, list[float]]:
    """Follow `after` cursors `pages - 1` times; the cursor of page `pages`, per-page times."""
    after = None
    walk = []
    for _ in range(pages - 1):
        started = time.perf_counter()
        result = await session.execute(
            GraphQLRequest(
                PAGE, variable_values={"id": customer_id, "first": PAGE_SIZE, "after": after}
            )
        )
        walk.append(time.perf_counter() - started)
        info = result["customer"]["timeline"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    if after is None:
        raise RuntimeError("the customer's timeline has a single page")
    return after, walk


async def _time_store(
    stack: LocalStack,
    tenant: str,
    customer_id: str,
    requests: int,
    deep_pages: int,
) -> dict[str, list[float]]:
    """The timeline's own store query (same filter, sort, limit and cursor), timed raw."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_uri)
    interactions = client[stack.database]["interactions"]
    # The timeline key orders (occurred_at, event_id); pages are ranges of it.
    sort = [("timeline_key", DESCENDING)]
    base: dict[str, Any] = {"tenant": tenant, "customer_id": customer_id}

    async def page(query: dict[str, Any]) -> list[dict[str, Any]]:
        cursor = interactions.find(query, {"projected": 0}).sort(sort).limit(_STORE_LIMIT)
        return [doc async for doc in cursor]

    async def timed(query: dict[str, Any]) -> list[float]:
        await page(query)
        latencies = []
        for _ in range(requests):
            started = time.perf_counter()
            await page(query)
            latencies.append(time.perf_counter() - started)
        return latencies

    async def after(key: str) -> list[float]:
        # What the store runs after a cursor: one range of the key within the customer.
        return await timed({**base, "timeline_key": {"$lt": key}})

    try:
        last: dict[str, Any] = {}
        query = dict(base)
        for _ in range(deep_pages - 1):
            docs = await page(query)
            if len(docs) < _STORE_LIMIT:
                break  # the last page, as GraphQL's walk found too
            last = docs[PAGE_SIZE - 1]
            query = {**base, "timeline_key": {"$lt": last["timeline_key"]}}
        if not last:
            raise RuntimeError("the customer's timeline has a single page")
        return {
            "first": await timed(base),
            "deep": await after(last["timeline_key"]),
            "filtered": await timed(
                {**base, "channel": {"$in": ["email"]}, "kind": {"$in": ["email"]}}
            ),
        }
    finally:
        await client.close()


async def page_latency(stack: LocalStack, tenant: str, sizes: LiveViewSizes) -> dict[str, Any]:
    """GraphQL timeline pages of a big customer against a small one and the raw store query."""
    big, seeded = await _seed_customer(stack, tenant, sizes.seed_count, sizes.seed_batch)
    small, _ = await _seed_customer(stack, tenant, sizes.small_count, sizes.seed_batch)
    n = sizes.requests
    async with http_session(stack.graphql_url, authorization=_agent(stack, tenant)) as session:
        after, walk = await _deep_cursor(session, big, sizes.deep_pages)
        graphql = {
            "first": await _time_page(session, n, id=big),
            "deep": await _time_page(session, n, id=big, after=after),
            "filtered": await _time_page(session, n, id=big, channels=["EMAIL"], kinds=["EMAIL"]),
            "small_first": await _time_page(session, n, id=small),
        }
    store = await _time_store(stack, tenant, big, n, sizes.deep_pages)
    summary = {name: ms_summary(v) for name, v in graphql.items()}
    raw = {name: ms_summary(v) for name, v in store.items()}

    def ratio(a: dict[str, float], b: dict[str, float]) -> float:
        return a["p50"] / b["p50"] if b.get("p50") else float("nan")

    return {
        "seed": {"how": "chat SubmitBatch + email via JetStream publisher", **seeded},
        "page_size": PAGE_SIZE,
        "requests": n,
        "deep_page": sizes.deep_pages,
        "walk_to_deep_ms": ms_summary(walk),
        "graphql_ms": summary,
        "store_ms": raw,
        "ratios_p50": {
            "big_first_vs_small_first": ratio(summary["first"], summary["small_first"]),
            "graphql_first_vs_store_first": ratio(summary["first"], raw["first"]),
            "graphql_deep_vs_store_deep": ratio(summary["deep"], raw["deep"]),
            "graphql_filtered_vs_store_filtered": ratio(summary["filtered"], raw["filtered"]),
        },
    }


# -- together -----------------------------------------------------------------------------------


async def measure(stack: LocalStack, tenant: str, sizes: LiveViewSizes) -> dict[str, Any]:
    """Both measures and their baselines, on a running stack whose gateway serves `tenant`."""
    started = time.perf_counter()
    pings, lost_pings = await nats_ping_latency(stack.nats_url, sizes.nats_pings)
    bus = {**ms_summary(pings), "lost": lost_pings}
    push = await push_freshness(stack, tenant, sizes)
    pages = await page_latency(stack, tenant, sizes)
    result: dict[str, Any] = {"push": push, "pages": pages}
    if sizes.push_after_seed:
        # The same load again, now that the big customer's rows are in the store too.
        result["push_after_seed"] = await push_freshness(stack, tenant, sizes)
    if sizes.background_rate > 0:
        # Last: the timeline may be left with a backlog of the background traffic.
        result["push_under_load"] = await push_freshness(
            stack, tenant, sizes, background=sizes.background_rate
        )
    for measured in (result["push"], result.get("push_after_seed"), result.get("push_under_load")):
        if measured is None:
            continue
        fresh = measured["freshness_ms"]
        measured["baseline_nats_core_ms"] = bus
        measured["ratio_to_nats"] = {
            q: fresh[q] / bus[q] for q in ("p50", "p99") if q in fresh and bus.get(q)
        }
    result["seconds"] = time.perf_counter() - started
    return result


def _row(name: str, ms: dict[str, float], extra: str = "") -> str:
    if not ms.get("count"):
        return f"  {name:48} (no samples)"
    return (
        f"  {name:48} {ms['p50']:8.2f} {ms['p95']:8.2f} {ms['p99']:8.2f} {ms['max']:8.2f}"
        f" {int(ms['count']):6d}{extra}"
    )


def _push_lines(push: dict[str, Any], label: str) -> list[str]:
    ratio = push["ratio_to_nats"]
    return [
        _row(f"Submit ack → push ({label})", push["freshness_ms"]),
        _row("  of which: ack → timeline recorded_at", push["ack_to_recorded_at_ms"]),
        _row("  of which: recorded_at → push", push["recorded_at_to_push_ms"]),
        f"  push vs bus: p50 ×{ratio.get('p50', float('nan')):.0f}, "
        f"p99 ×{ratio.get('p99', float('nan')):.0f}; missed pushes {push['missed_pushes']} "
        f"of {push['acked']} acked (not pushed within {push['grace_s']:g} s of the last ack)",
    ]


def _after_seed_lines(push: dict[str, Any] | None) -> list[str]:
    if push is None:
        return []
    return _push_lines(push, f"{push['store_interactions']:,} rows, after seeding")


def _under_load_lines(push: dict[str, Any] | None) -> list[str]:
    if push is None:
        return []
    label = f"{push['background_per_s']:.0f}/s of other customers' traffic"
    return _push_lines(push, label)


def report(result: dict[str, Any]) -> str:
    push, pages = result["push"], result["pages"]
    bus = push["baseline_nats_core_ms"]
    header = f"  {'ms':48} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'n':>6}"
    graphql, store, ratios = pages["graphql_ms"], pages["store_ms"], pages["ratios_p50"]
    seed = pages["seed"]
    lines = [
        f"live view: push freshness at {push['achieved_rate_per_s']:.1f} Submits/s "
        f"(target {push['target_rate_per_s']:g}) over {push['customers']} subscribed customers",
        header,
        _row(f"baseline: NATS core publish → receive ({bus.get('lost', 0)} lost)", bus),
        *_push_lines(push, f"{push['store_interactions']:,} rows in store"),
        f"  ({push['submit_failures']} Submit failures, "
        f"{push['pushes_without_entry']} pushes without entry, "
        f"subscription errors: {len(push['subscription_errors'])})",
        *_after_seed_lines(result.get("push_after_seed")),
        *_under_load_lines(result.get("push_under_load")),
        f"live view: timeline pages of {PAGE_SIZE}, customer with {seed['interactions']:,} "
        f"interactions (seeded through the pipeline: {seed['how']}; stored in "
        f"{seed['stored_s']:.1f} s, {seed['stored_per_s']:.0f}/s)",
        header,
        _row("GraphQL first page", graphql["first"]),
        _row(f"GraphQL page {pages['deep_page']} (after cursors)", graphql["deep"]),
        _row("GraphQL filtered (EMAIL, 5% of the log)", graphql["filtered"]),
        _row("baseline: GraphQL first page, small cust.", graphql["small_first"]),
        _row("baseline: store find first page", store["first"]),
        _row(f"baseline: store find page {pages['deep_page']}", store["deep"]),
        _row("baseline: store find filtered", store["filtered"]),
        f"  p50 ratios: big/small first page ×{ratios['big_first_vs_small_first']:.2f}; "
        f"GraphQL/store first ×{ratios['graphql_first_vs_store_first']:.2f}, "
        f"deep ×{ratios['graphql_deep_vs_store_deep']:.2f}, "
        f"filtered ×{ratios['graphql_filtered_vs_store_filtered']:.2f}",
        f"live view took {result['seconds']:.0f} s",
    ]
    return "\n".join(lines)


async def _standalone(args: argparse.Namespace) -> dict[str, Any]:
    async with bench_stack() as stack:
        return await measure(stack, TENANT, LiveViewSizes.from_args(args))


if __name__ == "__main__":
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m bench.live_view")
    add_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("bench-results/live_view.json"))
    parsed = parser.parse_args()
    outcome = asyncio.run(_standalone(parsed))
    print(report(outcome))
    parsed.out.parent.mkdir(parents=True, exist_ok=True)
    parsed.out.write_text(json.dumps(outcome, indent=2))
    print(f"written to {parsed.out}")
