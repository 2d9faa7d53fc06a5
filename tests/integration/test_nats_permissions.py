"""Hostile clients against the real nats-server with the generated users: each is refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig

from tests import builders
from tsunagu.bus.connection import NatsConnection, NatsUnreachable
from tsunagu.bus.headers import INTERACTION_SCHEMA, MSG_ID, SCHEMA, message_id
from tsunagu.bus.permissions import GATEWAY, TIMELINE, ingest_user, service_users
from tsunagu.bus.subjects import (
    DEAD_LETTER_STREAM,
    IDENTITY_STREAM,
    INTERACTIONS_STREAM,
    TIMELINE_UPDATED_STREAM,
    interaction_subject,
    timeline_updated_subject,
)
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import interaction_pb2

# Generous: the server answers within milliseconds, but the machine is shared.
DEADLINE = 10.0


@dataclass
class Session:
    """A client connected as one user, with the permission errors the server sent it."""

    nc: Client
    refusals: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    async def refused(self, action: str, subject: str, *, prefix: bool = False) -> None:
        """Wait until the server reported `action` ("Publish"/"Subscription") on `subject`."""
        expected = f'Permissions Violation for {action} to "{subject}' + ("" if prefix else '"')
        async with asyncio.timeout(DEADLINE):
            while expected.lower() not in (await self.refusals.get()).lower():
                pass


@asynccontextmanager
async def connected_as(server: NatsServer, user: str) -> AsyncIterator[Session]:
    assert server.users is not None
    session: Session

    async def on_error(error: Exception) -> None:
        session.refusals.put_nowait(str(error))

    nc = await nats.connect(
        server.address,
        allow_reconnect=False,
        error_cb=on_error,
        **server.users.login(user).options(),
    )
    session = Session(nc)
    try:
        yield session
    finally:
        await nc.close()


def _chat(tenant: str) -> interaction_pb2.Interaction:
    return builders.chat(tenant, phone="090-9999-0000")


async def test_a_client_without_credentials_is_refused(nats_server: NatsServer) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(nats_server.address, allow_reconnect=False, max_reconnect_attempts=0)


async def test_a_client_with_a_wrong_password_is_refused(nats_server: NatsServer) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(
            nats_server.address,
            user=GATEWAY,
            password="not-the-password",
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )


@pytest.mark.parametrize("channel", ["voice", "agent_desk"])
async def test_an_ingest_credential_cannot_publish_for_another_channel(
    nats_server: NatsServer, tenant: str, channel: str
) -> None:
    subject = f"interactions.{tenant}.{channel}"
    async with connected_as(nats_server, ingest_user("chat")) as chat:
        await chat.nc.publish(subject, _chat(tenant).SerializeToString())
        await chat.nc.flush()
        await chat.refused("Publish", subject)
    # Nothing reached the stream for that subject.
    async with nats_connected(nats_server) as operator:
        with pytest.raises(nats.js.errors.NotFoundError):
            await operator.jetstream().get_last_msg(INTERACTIONS_STREAM, subject)


@asynccontextmanager
async def nats_connected(server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(server.url, allow_reconnect=False)
    try:
        yield nc
    finally:
        await nc.close()


async def test_an_ingest_credential_publishes_its_own_channel_for_any_tenant(
    nats_server: NatsServer, tenant: str
) -> None:
    interaction = _chat(tenant)
    async with connected_as(nats_server, ingest_user("chat")) as chat:
        ack = await chat.nc.jetstream().publish(
            interaction_subject(tenant, interaction.channel),
            interaction.SerializeToString(),
            stream=INTERACTIONS_STREAM,
            headers={MSG_ID: message_id(tenant, interaction.event_id)},
        )
    assert ack.stream == INTERACTIONS_STREAM
    assert not ack.duplicate


@pytest.mark.parametrize(
    "subject", ["interactions.>", "timeline.updated.>", "dlq.interactions.>", "_INBOX.>"]
)
async def test_an_ingest_credential_cannot_read_anything(
    nats_server: NatsServer, subject: str
) -> None:
    async with connected_as(nats_server, ingest_user("chat")) as chat:
        await chat.nc.subscribe(subject)
        await chat.nc.flush()
        await chat.refused("Subscription", subject)


async def test_the_gateway_cannot_read_interactions(nats_server: NatsServer) -> None:
    async with connected_as(nats_server, GATEWAY) as gateway:
        await gateway.nc.subscribe("interactions.>")
        await gateway.nc.flush()
        await gateway.refused("Subscription", "interactions.>")


async def test_a_forged_notice_from_an_ingest_credential_never_reaches_the_gateway(
    nats_server: NatsServer, tenant: str
) -> None:
    subject = timeline_updated_subject(tenant, "c-alice")
    async with (
        connected_as(nats_server, GATEWAY) as gateway,
        connected_as(nats_server, ingest_user("web")) as web,
        connected_as(nats_server, TIMELINE) as timeline,
    ):
        heard = await gateway.nc.subscribe(subject)
        await gateway.nc.flush()
        await web.nc.publish(subject, b"forged")
        await web.nc.flush()
        await web.refused("Publish", subject)
        # The timeline's notice comes after the forged one; the gateway hears only it.
        await timeline.nc.publish(subject, b"genuine")
        await timeline.nc.flush()
        msg: Msg = await heard.next_msg(timeout=DEADLINE)
        assert msg.data == b"genuine"


@pytest.mark.parametrize("user", [u.name for u in service_users()])
@pytest.mark.parametrize("operation", ["STREAM.DELETE", "STREAM.PURGE", "STREAM.MSG.DELETE"])
async def test_no_service_can_delete_or_purge_a_stream(
    nats_server: NatsServer, user: str, operation: str
) -> None:
    async with connected_as(nats_server, user) as service:
        streams = (
            INTERACTIONS_STREAM,
            DEAD_LETTER_STREAM,
            IDENTITY_STREAM,
            TIMELINE_UPDATED_STREAM,
        )
        for stream in streams:
            subject = f"$JS.API.{operation}.{stream}"
            await service.nc.publish(subject, b"{}")
            await service.nc.flush()
            await service.refused("Publish", subject)
    async with nats_connected(nats_server) as operator:
        assert (await operator.jetstream().stream_info(INTERACTIONS_STREAM)).state.messages > 0


async def test_the_gateway_publishes_agent_actions_but_no_other_channel(
    nats_server: NatsServer, tenant: str
) -> None:
    action = builders.chat(tenant)
    action.channel = interaction_pb2.CHANNEL_AGENT_DESK
    async with connected_as(nats_server, GATEWAY) as gateway:
        ack = await gateway.nc.jetstream().publish(
            interaction_subject(tenant, action.channel),
            action.SerializeToString(),
            stream=INTERACTIONS_STREAM,
            headers={MSG_ID: message_id(tenant, action.event_id), SCHEMA: INTERACTION_SCHEMA},
        )
        assert not ack.duplicate
        await gateway.nc.publish(f"interactions.{tenant}.chat", b"{}")
        await gateway.nc.flush()
        await gateway.refused("Publish", f"interactions.{tenant}.chat")


async def test_the_timeline_consumes_interactions_and_acks_them(
    nats_server: NatsServer, tenant: str
) -> None:
    interaction = _chat(tenant)
    subject = interaction_subject(tenant, interaction.channel)
    async with nats_connected(nats_server) as operator:
        await operator.jetstream().publish(
            subject, interaction.SerializeToString(), stream=INTERACTIONS_STREAM
        )
    async with connected_as(nats_server, TIMELINE) as timeline:
        pull = await timeline.nc.jetstream().pull_subscribe(
            f"interactions.{tenant}.>",
            durable=f"timeline-{tenant}",
            stream=INTERACTIONS_STREAM,
            config=ConsumerConfig(),
        )
        [msg] = await pull.fetch(1, timeout=DEADLINE)
        assert msg.data == interaction.SerializeToString()
        await msg.ack_sync(timeout=DEADLINE)


@pytest.mark.parametrize(
    ("stream", "subject"),
    [
        (INTERACTIONS_STREAM, "interactions.{}.>"),
        (TIMELINE_UPDATED_STREAM, "timeline.updated.{}.c-1"),
    ],
)
async def test_an_ingest_credential_cannot_create_a_consumer(
    nats_server: NatsServer, tenant: str, stream: str, subject: str
) -> None:
    async with connected_as(nats_server, ingest_user("chat")) as chat:
        with contextlib.suppress(NatsError, TimeoutError):
            await chat.nc.jetstream().pull_subscribe(
                subject.format(tenant), durable=f"spy-{tenant}", stream=stream
            )
        await chat.refused("Publish", f"$JS.API.CONSUMER.INFO.{stream}.", prefix=True)


async def test_the_gateway_reads_the_notice_capture_and_deletes_only_its_own_consumers(
    nats_server: NatsServer, tenant: str
) -> None:
    subject = timeline_updated_subject(tenant, "c-alice")
    async with connected_as(nats_server, TIMELINE) as timeline:
        await timeline.nc.publish(subject, b"captured")
        await timeline.nc.flush()
    async with connected_as(nats_server, GATEWAY) as gateway:
        js = gateway.nc.jetstream()
        reader = await js.pull_subscribe(subject, stream=TIMELINE_UPDATED_STREAM)
        [msg] = await reader.fetch(1, timeout=DEADLINE)
        assert msg.data == b"captured"
        name = (await reader.consumer_info()).name
        assert await js.delete_consumer(TIMELINE_UPDATED_STREAM, name)
        for stream in (INTERACTIONS_STREAM, DEAD_LETTER_STREAM, IDENTITY_STREAM):
            denied = f"$JS.API.CONSUMER.DELETE.{stream}.timeline-{tenant}"
            await gateway.nc.publish(denied, b"")
            await gateway.nc.flush()
            await gateway.refused("Publish", denied)
            created = f"$JS.API.CONSUMER.CREATE.{stream}"
            await gateway.nc.publish(created, b"{}")
            await gateway.nc.flush()
            await gateway.refused("Publish", created)


async def test_refused_credentials_fail_start_up_without_showing_the_password(
    nats_server: NatsServer,
) -> None:
    url = f"nats://{TIMELINE}:wrong-secret@127.0.0.1:{nats_server.port}"
    connection = NatsConnection(url, name="tsunagu-test", connect_budget_seconds=5)
    with pytest.raises(NatsUnreachable, match="credentials refused") as raised:
        await connection.open()
    assert "wrong-secret" not in str(raised.value)
