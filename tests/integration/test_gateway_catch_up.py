"""A follower gets every notice across a NATS restart: what it missed comes from the capture.

The nats-server is this test's own, stopped and started again on the same port and store dir.
The gateway waits long between reconnect attempts, so a notice published right after the
restart lands while its core subscription is not back: only the catch-up can deliver it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
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


@asynccontextmanager
async def restarted_while_away(
    server: NatsServer, bus: GatewayBus, store_dir: Path
) -> AsyncIterator[NatsServer]:
    """Stop NATS, start it again on the same port and data; yields while the gateway is away."""
    await server.stop()

    async def away() -> bool:
        return bus.connectivity() == "RECONNECTING"

    await eventually(away, "the gateway notices that NATS is gone")
    restarted = NatsServer(store_dir, port=server.port, sink=nats_sink, users=server.users)
    await restarted.start()
    try:
        yield restarted
        # The precondition of the tests: the gateway was not subscribed when they published.
        assert bus.connectivity() == "RECONNECTING"
    except BaseException:
        await restarted.stop()
        raise


async def test_a_notice_published_while_the_gateway_reconnects_is_pushed_once(
    own_nats: NatsServer, tmp_path: Path, tenant: str
) -> None:
    bus = gateway_bus(own_nats)
    restarted: NatsServer | None = None
    try:
        async with bus, bus.follow(tenant, CUSTOMER, queue_size=16) as follower:
            async with as_timeline(own_nats) as timeline:
                await announce(timeline, tenant, "ev-live")
            assert await next_event(follower) == "ev-live"

            async with (
                restarted_while_away(own_nats, bus, tmp_path / "nats") as restarted,
                as_timeline(restarted) as timeline,
            ):
                await announce(timeline, tenant, "ev-missed")

            # Caught up once reconnected; "ev-live", also in the capture, is not pushed again.
            assert await next_event(follower) == "ev-missed"

            async def back() -> bool:
                return bus.connectivity() == "CONNECTED"

            await eventually(back, "the gateway reconnected")
            async with as_timeline(restarted) as timeline:
                await announce(timeline, tenant, "ev-after")
            assert await next_event(follower) == "ev-after"
            assert follower.cut_off is False

            # The catch-up consumer is gone once done.
            async def no_consumers() -> bool:
                async with as_operator(restarted) as operator:
                    info = await operator.jetstream().stream_info(TIMELINE_UPDATED_STREAM)
                    return info.state.consumer_count == 0

            await eventually(no_consumers, "the catch-up consumer deleted")
    finally:
        if restarted is not None:
            await restarted.stop()


async def test_after_a_merge_the_catch_up_reads_the_survivor_too(
    own_nats: NatsServer, tmp_path: Path, tenant: str
) -> None:
    bus = gateway_bus(own_nats)
    restarted: NatsServer | None = None
    try:
        async with bus, bus.follow(tenant, CUSTOMER, queue_size=16) as follower:
            async with as_timeline(own_nats) as timeline:
                await announce(timeline, tenant, "ev-merge", merged_into="c-survivor")
            assert await next_event(follower) == "ev-merge"
            assert follower.followed == {CUSTOMER, "c-survivor"}

            async with (
                restarted_while_away(own_nats, bus, tmp_path / "nats") as restarted,
                as_timeline(restarted) as timeline,
            ):
                await announce(timeline, tenant, "ev-survivor", customer="c-survivor")
                await announce(timeline, tenant, "ev-merged-away")

            assert [await next_event(follower), await next_event(follower)] == [
                "ev-survivor",
                "ev-merged-away",
            ]
    finally:
        if restarted is not None:
            await restarted.stop()


@asynccontextmanager
async def as_operator(server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(server.url)
    try:
        yield nc
    finally:
        await nc.close()
