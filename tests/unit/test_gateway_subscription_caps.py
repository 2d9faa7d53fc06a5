"""Subscription caps and WebSocket authentication edge cases, over a real WebSocket and NATS."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.aio.client import Client
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from gateway.bus import GatewayBus
from tests.unit.test_gateway_http import IDP
from tests.unit.test_gateway_schema import TENANT
from tests.unit.test_gateway_subscriptions import (
    agent_socket,
    announce,
    announcer,
    live_gateway,
    receive,
    subscribe,
    until_following,
)
from tsunagu.local.processes import NatsServer

__all__ = ["announcer"]  # a fixture shared with the subscription tests

PER_CONNECTION = 2
PER_PRINCIPAL = 3
WATCH = 'subscription {{ timelineUpdated(customerId: "{customer}") {{ eventId }} }}'
CUSTOMERS = ("c-1", "c-2", "c-3")


@pytest.fixture(scope="module")
async def live(nats_server: NatsServer) -> AsyncIterator[tuple[GatewayBus, str]]:
    """The gateway with small caps, and its bus to count live followers."""
    async with live_gateway(
        nats_server,
        max_subscriptions_per_connection=PER_CONNECTION,
        max_subscriptions_per_principal=PER_PRINCIPAL,
        # Tokens end exactly at `exp` here, for the expiry test.
        jwt_leeway_seconds=0.0,
    ) as (_, bus, url):
        yield bus, url


def _token(*, roles: tuple[str, ...] = ("agent",), **claims: Any) -> str:
    """A token of a principal of its own: no other test holds its slots."""
    subject = claims.pop("subject", f"agent-{uuid.uuid4().hex[:8]}")
    return IDP.bearer(tenant=TENANT, subject=subject, roles=roles, **claims)


async def _watch(ws: ClientConnection, id_: str, customer: str) -> None:
    await subscribe(ws, id_, WATCH.format(customer=customer))


async def _refusal(ws: ClientConnection) -> dict[str, Any]:
    message = await receive(ws)
    assert message["type"] == "error", message
    [error] = message["payload"]
    return {"id": message["id"], **error}


async def _pushed(ws: ClientConnection, ids: set[str]) -> dict[str, str]:
    """The event id each of ``ids`` receives next."""
    got: dict[str, str] = {}
    while set(got) != ids:
        message = await receive(ws)
        assert message["type"] == "next", message
        got[message["id"]] = message["payload"]["data"]["timelineUpdated"]["eventId"]
    return got


async def test_a_connection_holds_at_most_its_cap_and_a_completed_slot_is_reused(
    live: tuple[GatewayBus, str], announcer: Client
) -> None:
    bus, url = live
    async with agent_socket(url, _token()) as ws:
        await _watch(ws, "a", "c-1")
        await _watch(ws, "b", "c-2")
        await until_following(bus, 2)
        await _watch(ws, "c", "c-3")
        refused = await _refusal(ws)

        # The connection and both subscriptions live on.
        await announce(announcer, "c-1", "ev-1")
        await announce(announcer, "c-2", "ev-2")
        still_pushed = await _pushed(ws, {"a", "b"})

        await ws.send(json.dumps({"id": "a", "type": "complete"}))
        await until_following(bus, 1)
        await _watch(ws, "c", "c-3")
        await until_following(bus, 2)
        await announce(announcer, "c-3", "ev-3")
        after_complete = await _pushed(ws, {"c"})
    await until_following(bus, 0)

    assert refused["id"] == "c"
    assert refused["extensions"] == {"code": "TOO_MANY_SUBSCRIPTIONS"}
    assert "2 active subscriptions per connection" in refused["message"]
    assert still_pushed == {"a": "ev-1", "b": "ev-2"}
    assert after_complete == {"c": "ev-3"}


async def test_a_principal_holds_at_most_its_cap_over_all_connections(
    live: tuple[GatewayBus, str], announcer: Client
) -> None:
    bus, url = live
    subject = f"agent-{uuid.uuid4().hex[:8]}"
    token = _token(subject=subject)
    async with agent_socket(url, token) as second:
        async with agent_socket(url, token) as first:
            await _watch(first, "a", "c-1")
            await _watch(first, "b", "c-2")
            await _watch(second, "c", "c-3")
            await until_following(bus, 3)
            await _watch(second, "d", "c-1")
            refused = await _refusal(second)
            # Another principal of the same tenant is not held back.
            async with agent_socket(url, _token()) as colleague:
                await _watch(colleague, "x", "c-1")
                await until_following(bus, 4)
                await announce(announcer, "c-1", "ev-1")
                colleague_pushed = await _pushed(colleague, {"x"})
        # Disconnecting `first` gave its two slots back.
        await until_following(bus, 1)
        await _watch(second, "d", "c-1")
        await _watch(second, "e", "c-2")  # over the connection cap, not the principal's
        refused_again = await _refusal(second)
        await until_following(bus, 2)
        await announce(announcer, "c-1", "ev-2")
        pushed = await _pushed(second, {"d"})

    assert refused["id"] == "d"
    assert refused["extensions"] == {"code": "TOO_MANY_SUBSCRIPTIONS"}
    assert "3 active subscriptions per user" in refused["message"]
    assert colleague_pushed == {"x": "ev-1"}
    assert "per connection" in refused_again["message"]
    assert pushed == {"d": "ev-2"}


async def test_a_subscription_the_role_forbids_is_an_error_and_the_connection_goes_on(
    live: tuple[GatewayBus, str],
) -> None:
    bus, url = live
    async with agent_socket(url, _token(roles=("analyst",))) as ws:
        await _watch(ws, "w", "c-1")
        refused = await _refusal(ws)
        await subscribe(ws, "q", '{ case(id: "case-1") { status } }')
        answered = await receive(ws)
        assert await receive(ws) == {"id": "q", "type": "complete"}
        # Refused before taking a slot: the cap is untouched by forbidden attempts.
        for number in range(PER_CONNECTION + 1):
            await _watch(ws, f"w{number}", "c-1")
            assert (await _refusal(ws))["extensions"]["code"] == "FORBIDDEN"

    assert refused["id"] == "w"
    assert refused["extensions"] == {"code": "FORBIDDEN"}
    assert answered == {
        "id": "q",
        "type": "next",
        "payload": {"data": {"case": {"status": "ESCALATED"}}},
    }
    assert bus.active_followers == 0


async def _read_until_closed(ws: ClientConnection) -> None:
    async with asyncio.timeout(30):  # generous: two cores shared by many test runs
        async for _ in ws:
            pass


async def test_a_connection_is_closed_4401_when_its_token_expires(
    live: tuple[GatewayBus, str], announcer: Client
) -> None:
    bus, url = live
    # Long enough to subscribe and hear one push first on two busy shared cores (3 s was not).
    expires_at = int(time.time()) + 10
    async with agent_socket(url, _token(ttl_seconds=expires_at - int(time.time()))) as ws:
        await _watch(ws, "w", "c-2")
        await until_following(bus, 1)
        await announce(announcer, "c-2", "ev-before")
        before = await _pushed(ws, {"w"})

        with pytest.raises(ConnectionClosed) as closed:
            await _read_until_closed(ws)
        closed_at = time.time()
    await until_following(bus, 0)

    assert before == {"w": "ev-before"}
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "Token expired")
    assert closed_at >= expires_at


async def test_subscriptions_that_end_in_an_error_give_their_slot_back(
    live: tuple[GatewayBus, str],
) -> None:
    bus, url = live
    async with agent_socket(url, _token()) as ws:
        for number in range(PER_CONNECTION + 1):
            await _watch(ws, f"gone{number}", "nobody")
            ended = await receive(ws)  # refused while starting: errors, then complete
            assert await receive(ws) == {"id": f"gone{number}", "type": "complete"}
            assert ended["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        await _watch(ws, "a", "c-1")
        await _watch(ws, "b", "c-2")
        await until_following(bus, PER_CONNECTION)
