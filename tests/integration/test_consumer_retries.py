"""A failure that is neither a dependency down nor the event itself is retried with backoff and
dead-lettered only when every delivery failed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import nats
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError
from opentelemetry.context import Context

from services.timeline.consumer import ConsumerOptions, InteractionConsumer
from services.timeline.errors import ConcurrentUpdateError
from services.timeline.recorder import Recorded, TimelineRecorder
from services.timeline.signed_actors import SignedActors
from tests import builders
from tsunagu.bus import headers
from tsunagu.bus.subjects import DEAD_LETTER_STREAM, interaction_subject
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import interaction_pb2 as pb


class _AlwaysLosing:
    """Stands in for a recorder that loses every optimistic-write race (a retryable failure)."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    async def record_batch(
        self,
        interactions: Sequence[pb.Interaction],
        *,
        marks_with_notices: bool = False,  # noqa: ARG002 - nothing is recorded to mark
    ) -> list[Recorded | Exception]:
        self.attempts.extend(i.event_id for i in interactions)
        return [ConcurrentUpdateError("customer kept changing") for _ in interactions]


async def _dependencies_up() -> None:
    return None


async def _announce(_batch: Sequence[Recorded], _contexts: Sequence[Context]) -> None:
    raise AssertionError("nothing was recorded, so nothing may be announced")


async def dead_lettered(
    nats_server: NatsServer, recorder: object, *, tenant: str, interaction: pb.Interaction
) -> tuple[int, RawStreamMsg]:
    """Publish `interaction` to a consumer recording with `recorder` (max 2 deliveries).

    Returns:
        The published sequence, and the message the dead-letter stream got for it.
    """
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    consumer = InteractionConsumer(
        js,
        cast("TimelineRecorder", recorder),
        options=ConsumerOptions(
            durable=f"retries-{tenant}", subject_filter=f"interactions.{tenant}.>", max_deliver=2
        ),
        announce=_announce,
        actors=SignedActors({}),
        probe=_dependencies_up,
    )
    await consumer.start()
    subject = interaction_subject(tenant, interaction.channel)
    try:
        published = await js.publish(subject, interaction.SerializeToString())
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                dead = await js.get_msg(
                    DEAD_LETTER_STREAM, seq=1, subject=f"dlq.{subject}", next=True
                )
                return published.seq, dead
            except NotFoundError:
                assert asyncio.get_running_loop().time() < deadline, "never dead-lettered"
                await asyncio.sleep(0.2)
    finally:
        await consumer.stop(grace_seconds=5)
        await nc.close()


async def test_an_event_that_fails_every_delivery_is_dead_lettered_as_deliveries_exhausted(
    nats_server: NatsServer, tenant: str
) -> None:
    recorder = _AlwaysLosing()
    chat = builders.chat(tenant)

    sequence, dead = await dead_lettered(nats_server, recorder, tenant=tenant, interaction=chat)

    assert recorder.attempts == [chat.event_id, chat.event_id]  # retried once, then given up
    hdrs = dead.headers or {}
    assert hdrs[headers.DEAD_LETTER_REASON] == "deliveries_exhausted"
    assert hdrs[headers.DEAD_LETTER_DELIVERIES] == "2"
    assert "kept changing" in hdrs[headers.DEAD_LETTER_ERROR]
    assert hdrs[headers.DEAD_LETTER_ORIGINAL_SEQUENCE] == str(sequence)
    assert dead.data == chat.SerializeToString()


class _Recording:
    """Stands in for a recorder whose store works: every item is recorded."""

    async def record_batch(
        self, interactions: Sequence[pb.Interaction], *, marks_with_notices: bool = False
    ) -> list[Recorded | Exception]:
        return [
            Recorded(i.event_id, i.tenant, "cus_1", duplicate=False, marked=not marks_with_notices)
            for i in interactions
        ]

    async def mark_announced(self, _recorded: Sequence[Recorded]) -> None:
        return None

    async def mark_projected(self, _recorded: Sequence[Recorded]) -> None:
        return None


async def test_a_plain_asyncio_timeout_from_an_idle_fetch_does_not_stop_the_consumer(
    nats_server: NatsServer, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # nats-py raises a plain asyncio.TimeoutError (not its own subclass) when the server's
    # request-timeout reply races the client's deadline: an idle consumer must ride it out.
    fetch = JetStreamContext.PullSubscription.fetch
    plain_timeouts = 3

    async def racing_fetch(
        sub: JetStreamContext.PullSubscription, *args: Any, **kwargs: Any
    ) -> list[Msg]:
        nonlocal plain_timeouts
        if plain_timeouts:
            plain_timeouts -= 1
            raise asyncio.TimeoutError  # noqa: UP041 - the plain asyncio one is the point
        return await fetch(sub, *args, **kwargs)

    monkeypatch.setattr(JetStreamContext.PullSubscription, "fetch", racing_fetch)
    announced: asyncio.Queue[Recorded] = asyncio.Queue()

    async def announce(batch: Sequence[Recorded], _contexts: Sequence[Context]) -> None:
        for outcome in batch:
            await announced.put(outcome)

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    consumer = InteractionConsumer(
        js,
        cast("TimelineRecorder", _Recording()),
        options=ConsumerOptions(
            durable=f"idle-{tenant}", subject_filter=f"interactions.{tenant}.>"
        ),
        announce=announce,
        actors=SignedActors({}),
        probe=_dependencies_up,
    )
    await consumer.start()
    try:
        chat = builders.chat(tenant)
        await js.publish(interaction_subject(tenant, chat.channel), chat.SerializeToString())
        outcome = await asyncio.wait_for(announced.get(), 60)
        assert outcome.event_id == chat.event_id
        assert plain_timeouts == 0
        assert not consumer.failed.done()
    finally:
        await consumer.stop(grace_seconds=5)
        await nc.close()
