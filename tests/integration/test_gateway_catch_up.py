"""A follower gets every notice across a NATS restart: what it missed comes from the capture.

The nats-server is this test's own, stopped and started again on the same port and store dir.
The gateway waits long between reconnect attempts, so a notice published right after the
restart lands while its core subscription is not back: only the catch-up can deliver it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from gateway.bus import CustomerFollower, GatewayBus
from tests.action_keys import session_action_keys
from tests.integration.conftest import nats_sink
from tests.integration.test_store_outage import eventually
from tsunagu.bus.notices import customer_subject, encode_notice
from tsunagu.bus.permissions import GATEWAY, TIMELINE
from tsunagu.bus.subjects import TIMELINE_UPDATED_STREAM
from tsunagu.local.processes import NatsServer
from tsunagu.v1.notices_pb2 import TimelineUpdated

# Generous: the machine is shared; a notice normally arrives within milliseconds.
DEADLINE = 30.0
# Long enough that the gateway is still away when the test publishes after the restart.
RECONNECT_WAIT = 8.0
CUSTOMER = "c-alice"


@asynccontextmanager
async def as_timeline(server: NatsServer) -> AsyncIterator[Client]:
    """A connection with the timeline's user, publishing notices as the timeline does."""
    assert server.users is not None
    nc = await nats.connect(server.address, **server.users.login(TIMELINE).options())
    try:
        yield nc
    finally:
        await nc.close()


async def announce(
    nc: Client, tenant: str, event_id: str, customer: str = CUSTOMER, merged_into: str = ""
) -> None:
    notice = TimelineUpdated(
        tenant=tenant, customer_id=customer, event_id=event_id, merged_into=merged_into
    )
    await nc.publish(customer_subject(tenant, customer), encode_notice(notice))
    await nc.flush()


async def next_event(follower: CustomerFollower) -> str:
    async with asyncio.timeout(DEADLINE):
        heard = await anext(follower)
    return heard.notice.event_id


def gateway_bus(server: NatsServer) -> GatewayBus:
    assert server.users is not None
    return GatewayBus(
        url=server.address,
        login=server.users.login(GATEWAY),
        publish_timeout_seconds=2,
        signer=session_action_keys().signer,
        reconnect_wait_seconds=RECONNECT_WAIT,
    )


@pytest.fixture
async def restarted() -> AsyncIterator[list[NatsServer]]:
    """The servers a test started again; stopped at its end."""
    servers: list[NatsServer] = []
    yield servers
    for server in servers:
        await server.stop()


@asynccontextmanager
async def following(server: NatsServer, tenant: str, store_dir: Path) -> AsyncIterator[Following]:
    """A gateway following `CUSTOMER` on `server`, whose data is in `store_dir`."""
    bus = gateway_bus(server)
    async with bus, bus.follow(tenant, CUSTOMER, queue_size=16) as follower:
        yield Following(bus, follower, tenant, store_dir)


@dataclass
class Following:
    bus: GatewayBus
    follower: CustomerFollower
    tenant: str
    store_dir: Path

    async def hears_live(self, server: NatsServer, event_id: str, **notice: str) -> None:
        async with as_timeline(server) as timeline:
            await announce(timeline, self.tenant, event_id, **notice)
        assert await next_event(self.follower) == event_id

    @asynccontextmanager
    async def restart_while_away(
        self, server: NatsServer, restarted: list[NatsServer]
    ) -> AsyncIterator[Client]:
        """Stop NATS, start it on the same port and data; yields the timeline's connection to
        it while the gateway is still away."""
        await server.stop()

        async def away() -> bool:
            return self.bus.connectivity() == "RECONNECTING"

        await eventually(away, "the gateway notices that NATS is gone")
        again = NatsServer(self.store_dir, port=server.port, sink=nats_sink, users=server.users)
        await again.start()
        restarted.append(again)
        async with as_timeline(again) as timeline:
            yield timeline
        # The precondition of the tests: the gateway was not subscribed when they published.
        assert self.bus.connectivity() == "RECONNECTING"


async def test_a_notice_published_while_the_gateway_reconnects_is_pushed_once(
    own_nats: NatsServer, restarted: list[NatsServer], tenant: str, tmp_path: Path
) -> None:
    async with following(own_nats, tenant, tmp_path / "nats") as live:
        await live.hears_live(own_nats, "ev-live")
        async with live.restart_while_away(own_nats, restarted) as timeline:
            await announce(timeline, tenant, "ev-missed")

        # Caught up once reconnected; "ev-live", also in the capture, is not pushed again.
        assert await next_event(live.follower) == "ev-missed"

        async def back() -> bool:
            return live.bus.connectivity() == "CONNECTED"

        await eventually(back, "the gateway reconnected")
        await live.hears_live(restarted[0], "ev-after")
        assert live.follower.cut_off is False

        # The catch-up consumer is gone once done.
        async def no_consumers() -> bool:
            async with as_operator(restarted[0]) as operator:
                info = await operator.jetstream().stream_info(TIMELINE_UPDATED_STREAM)
                return info.state.consumer_count == 0

        await eventually(no_consumers, "the catch-up consumer deleted")


async def test_after_a_merge_the_catch_up_reads_the_survivor_too(
    own_nats: NatsServer, restarted: list[NatsServer], tenant: str, tmp_path: Path
) -> None:
    async with following(own_nats, tenant, tmp_path / "nats") as live:
        await live.hears_live(own_nats, "ev-merge", merged_into="c-survivor")
        assert live.follower.followed == {CUSTOMER, "c-survivor"}
        async with live.restart_while_away(own_nats, restarted) as timeline:
            await announce(timeline, tenant, "ev-survivor", customer="c-survivor")
            await announce(timeline, tenant, "ev-merged-away")

        heard = [await next_event(live.follower), await next_event(live.follower)]
        assert heard == ["ev-survivor", "ev-merged-away"]


@asynccontextmanager
async def as_operator(server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(server.url)
    try:
        yield nc
    finally:
        await nc.close()
