"""Rate limits per principal and per client address, over real HTTP and WebSockets.

The gateway runs under uvicorn with a clock the tests move, so "after Retry-After seconds"
is a step of that clock, not a sleep.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.rate_limits import Rate, RateLimits, TokenBuckets
from tests.unit.test_gateway_http import IDP, serving_gateway
from tests.unit.test_gateway_schema import TENANT, FakeTimeline
from tests.unit.test_gateway_subscriptions import agent_socket, receive, subscribe
from tsunagu.bus.streams import ensure_streams
from tsunagu.bus.subjects import INTERACTIONS_STREAM
from tsunagu.local.processes import NatsServer

QUERY = {"query": '{ customer(id: "c-1") { id } }'}
CUSTOMER = {"data": {"customer": {"id": "c-1"}}}
NOTE = {"query": 'mutation { addNote(customerId: "c-1", text: "called back") { status } }'}
# Small budgets: 2 queries at once, then one every 10 s; 1 mutation, then one a minute;
# 2 failed logins per address, then one every 20 s.
QUERIES = Rate(per_minute=6, burst=2)
MUTATIONS = Rate(per_minute=1, burst=1)
FAILED_LOGINS = Rate(per_minute=3, burst=2)


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _limits(clock: Clock, *, max_keys: int = 100_000) -> RateLimits:
    return RateLimits(
        queries=QUERIES,
        mutations=MUTATIONS,
        failed_authentications=FAILED_LOGINS,
        clock=clock,
        max_keys=max_keys,
    )


def _bearer(*, subject: str = "agent-7", tenant: str = TENANT) -> dict[str, str]:
    return {"authorization": IDP.bearer(tenant=tenant, subject=subject)}


def _fresh_principal() -> dict[str, str]:
    """A principal no other test has spent the budget of (the server lives for the module)."""
    return _bearer(subject=f"agent-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
async def served(nats_server: NatsServer, clock: Clock) -> AsyncIterator[tuple[FakeTimeline, str]]:
    nc = await nats.connect(nats_server.url)
    await ensure_streams(nc.jetstream())  # mutations that get through are really published
    await nc.drain()
    async with serving_gateway(
        nats_server, limits=_limits(clock), write_wait_seconds=0.0
    ) as served:
        yield served


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


def _assert_rate_limited(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429
    assert response.headers["retry-after"] == str(retry_after)
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": retry_after}
    assert response.json().get("data") is None


async def test_a_burst_over_the_limit_is_429_with_retry_after_and_runs_nothing(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient, clock: Clock
) -> None:
    fake, url = served
    fake.requests.clear()
    agent = _fresh_principal()

    answers = [await client.post(url, json=QUERY, headers=agent) for _ in range(3)]

    assert [answer.json() for answer in answers[:2]] == [CUSTOMER, CUSTOMER]
    # The bucket is empty: the next token comes in 10 s (6 a minute).
    _assert_rate_limited(answers[2], retry_after=10)
    assert len(fake.calls("GetCustomers")) == 2  # the refused query reached nothing

    clock.advance(9)
    too_early = await client.post(url, json=QUERY, headers=agent)
    clock.advance(1)
    after_waiting = await client.post(url, json=QUERY, headers=agent)

    _assert_rate_limited(too_early, retry_after=1)
    assert after_waiting.json() == CUSTOMER


async def test_one_principal_over_its_limit_leaves_others_and_other_tenants_alone(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient
) -> None:
    fake, url = served
    subject = f"agent-{uuid.uuid4().hex[:8]}"
    greedy = _bearer(subject=subject)
    for _ in range(QUERIES.burst):
        await client.post(url, json=QUERY, headers=greedy)
    fake.requests.clear()

    refused = await client.post(url, json=QUERY, headers=greedy)
    colleague = await client.post(url, json=QUERY, headers=_fresh_principal())
    # The same subject in another tenant is another principal.
    namesake = await client.post(url, json=QUERY, headers=_bearer(subject=subject, tenant="globex"))

    assert refused.status_code == 429
    assert colleague.json() == CUSTOMER
    assert namesake.status_code == 200
    assert [request.tenant for request in fake.calls("GetCustomers")] == [TENANT, "globex"]


async def test_a_mutation_over_its_own_budget_publishes_nothing_and_queries_go_on(
    served: tuple[FakeTimeline, str],
    client: httpx.AsyncClient,
    nats_server: NatsServer,
) -> None:
    fake, url = served
    agent = _fresh_principal()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        first = await client.post(url, json=NOTE, headers=agent)
        published = (await js.stream_info(INTERACTIONS_STREAM)).state.last_seq
        fake.requests.clear()

        refused = await client.post(url, json=NOTE, headers=agent)
        query = await client.post(url, json=QUERY, headers=agent)

        after = (await js.stream_info(INTERACTIONS_STREAM)).state.last_seq
    finally:
        await nc.drain()

    assert first.json() == {"data": {"addNote": {"status": "ACCEPTED"}}}
    _assert_rate_limited(refused, retry_after=60)
    assert after == published  # the refused note never reached the bus
    assert query.json() == CUSTOMER  # the query budget is separate
    assert [request.tenant for request in fake.calls("GetCustomers")] == [TENANT]


async def test_failed_logins_from_an_address_are_limited_even_for_a_right_guess(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient, clock: Clock
) -> None:
    fake, url = served
    guesses = [f"Bearer guess-{number}" for number in range(FAILED_LOGINS.burst)]
    for guess in guesses:
        refused = await client.post(url, json=QUERY, headers={"authorization": guess})
        assert refused.status_code == 401
    fake.requests.clear()

    # Spent: even a valid token from this address waits, so guessing gains nothing.
    right_guess = await client.post(url, json=QUERY, headers=_fresh_principal())
    clock.advance(20)
    later = await client.post(url, json=QUERY, headers=_fresh_principal())

    _assert_rate_limited(right_guess, retry_after=20)
    assert later.json() == CUSTOMER
    assert len(fake.calls("GetCustomers")) == 1  # the later one's only


async def test_over_websocket_a_refused_operation_is_an_error_and_the_connection_goes_on(
    served: tuple[FakeTimeline, str], clock: Clock
) -> None:
    fake, url = served
    subject = f"agent-{uuid.uuid4().hex[:8]}"
    token = IDP.bearer(tenant=TENANT, subject=subject)
    query = '{ customer(id: "c-1") { id } }'
    async with agent_socket(url.replace("http://", "ws://"), token) as ws:
        answers: list[dict[str, Any]] = []
        for number in range(QUERIES.burst + 1):
            await subscribe(ws, f"q{number}", query)
            answers.append(await receive(ws))
            if answers[-1]["type"] == "next":
                assert await receive(ws) == {"id": f"q{number}", "type": "complete"}
        fake.requests.clear()
        clock.advance(10)
        await subscribe(ws, "later", query)
        later = await receive(ws)

    assert [answer["type"] for answer in answers] == ["next", "next", "error"]
    [error] = answers[2]["payload"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 10}
    assert later == {"id": "later", "type": "next", "payload": CUSTOMER}
    assert len(fake.calls("GetCustomers")) == 1


def test_retry_after_is_the_exact_wait_rounded_up_to_whole_seconds() -> None:
    clock = Clock()
    buckets = TokenBuckets(Rate(per_minute=40, burst=1), clock=clock)  # a token per 1.5 s

    assert buckets.take("k") == 0
    assert buckets.take("k") == pytest.approx(1.5)
    clock.advance(1.0)
    assert buckets.take("k") == pytest.approx(0.5)
    clock.advance(0.5)
    assert buckets.take("k") == 0


def test_idle_buckets_are_forgotten_so_random_keys_cannot_grow_memory() -> None:
    clock = Clock()
    limits = _limits(clock)

    for number in range(1_000):
        limits.admit(tenant=TENANT, subject=f"random-{number}", mutation=number % 2 == 0)
        limits.failed_authentication(f"10.0.{number // 256}.{number % 256}")
    remembered = limits.remembered
    # Long enough for every bucket to be full again: a full bucket is a forgotten one.
    clock.advance(60 / MUTATIONS.per_minute * MUTATIONS.burst)
    limits.admit(tenant=TENANT, subject="someone", mutation=False)

    assert remembered == 2_000
    assert limits.remembered == 1


def test_the_number_of_buckets_is_bounded_even_within_the_idle_time() -> None:
    clock = Clock()
    buckets = TokenBuckets(Rate(per_minute=1, burst=5), clock=clock, max_keys=100)

    for number in range(10_000):
        buckets.take(f"random-{number}")
        clock.advance(0.001)

    assert len(buckets) == 100


async def test_behind_a_trusted_proxy_each_client_address_has_its_own_login_budget(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient
) -> None:
    _, url = served
    guesser = {"x-forwarded-for": "203.0.113.7"}  # the loopback proxy is trusted by default
    for _ in range(FAILED_LOGINS.burst):
        await client.post(url, json=QUERY, headers={**guesser, "authorization": "Bearer guess"})

    spent = await client.post(url, json=QUERY, headers={**guesser, **_fresh_principal()})
    other_client = await client.post(
        url, json=QUERY, headers={"x-forwarded-for": "198.51.100.9", **_fresh_principal()}
    )

    assert spent.status_code == 429
    assert other_client.json() == CUSTOMER


async def _close_code(url: str, token: str, address: str) -> tuple[int, str]:
    """How the gateway closes a WebSocket from ``address`` that logs in with ``token``."""
    async with connect(
        url.replace("http://", "ws://"),
        subprotocols=[Subprotocol("graphql-transport-ws")],
        additional_headers={"x-forwarded-for": address},
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": token}}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_websocket_logins_share_the_address_budget_and_close_4429_when_spent(
    served: tuple[FakeTimeline, str],
) -> None:
    _, url = served
    address = "192.0.2.44"
    guesses = [await _close_code(url, "Bearer guess", address) for _ in range(FAILED_LOGINS.burst)]

    spent = await _close_code(url, IDP.bearer(tenant=TENANT), address)

    assert guesses == [(4401, "Unauthorized")] * FAILED_LOGINS.burst
    assert spent[0] == 4429
    assert "retry after 20 seconds" in spent[1]
