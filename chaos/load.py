"""Steady load through the real ingest gRPC API, retried and acknowledged as an adapter would."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

from tsunagu.grpc_channels import open_channel
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc
from tsunagu.v1 import interaction_pb2 as pb

# The channels the load goes through (and the only ingest processes the chaos stack runs).
LOAD_CHANNELS = ("chat", "sms", "email")
# What an adapter retries with the same event id: the service or its dependency is away.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# A killed ingest comes back within seconds: gRPC's default reconnect back-off (up to two
# minutes) would measure the client, not the system.
RECONNECT_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer the load writes for: one channel, one identity on it."""

    channel: str
    number: int

    def interaction(self, tenant: str, text: str) -> pb.Interaction:
        """A new inbound interaction of this customer, with a fresh event id."""
        item = pb.Interaction(
            event_id=str(uuid.uuid4()),
            tenant=tenant,
            direction=pb.DIRECTION_INBOUND,
            actor=pb.Actor(type=pb.ACTOR_TYPE_CUSTOMER),
        )
        item.occurred_at.FromDatetime(datetime.now(UTC))
        item.content.text = text
        if self.channel == "chat":
            visitor = f"chaos-visitor-{self.number}"
            item.channel, item.kind = pb.CHANNEL_CHAT, pb.KIND_MESSAGE
            item.identifiers.append(
                pb.Identifier(kind=pb.IDENTIFIER_KIND_CHAT_VISITOR, value=visitor)
            )
            item.chat.session_id = f"session-{visitor}"
        elif self.channel == "sms":
            item.channel, item.kind = pb.CHANNEL_SMS, pb.KIND_MESSAGE
            item.sms.from_number = f"+81 90-5555-{1000 + self.number}"
            item.sms.to_number = "+81 3-1234-5678"
        else:
            item.channel, item.kind = pb.CHANNEL_EMAIL, pb.KIND_EMAIL
            item.email.message_id = f"<{item.event_id}@chaos.example.com>"
            item.email.from_address = f"chaos-{self.number}@example.com"
            item.email.to_addresses.append("support@example.com")
            item.email.subject = "About my order"
            item.email.text_body = text
        return item


def customers(per_channel: int) -> list[Customer]:
    return [Customer(c, n) for c in LOAD_CHANNELS for n in range(per_channel)]


@dataclass(slots=True)
class Ledger:
    """What the adapters were told, by event id: the events a scenario must find stored."""

    acked: dict[str, str] = field(default_factory=dict)
    # Valid events never acknowledged: refused (a non-transient error) or given up on.
    unacked: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in TRANSIENT


@dataclass(frozen=True, slots=True)
class Adapters:
    """One adapter per channel: its token, its channel to the ingest service, its retries."""

    stubs: Mapping[str, ingest_pb2_grpc.IngestServiceAsyncStub]
    call_timeout_s: float
    # An adapter gives up eventually and says so to its source; the event is then unacked.
    give_up_s: float

    async def submit(self, channel: str, item: pb.Interaction, ledger: Ledger) -> None:
        """Submit until acknowledged, retrying transient failures with the same event id."""
        request = ingest_pb2.SubmitRequest(interaction=item)
        retrying = AsyncRetrying(
            retry=retry_if_exception(_transient),
            wait=wait_exponential(multiplier=0.1, max=2.0),
            stop=stop_after_delay(self.give_up_s),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        ledger.retries += 1
                    response = await self.stubs[channel].Submit(
                        request, timeout=self.call_timeout_s
                    )
        except grpc.aio.AioRpcError as exc:
            ledger.unacked[item.event_id] = f"{exc.code().name}: {exc.details()}"
            return
        status = ingest_pb2.SubmitResult.Status.Name(response.result.status)
        if response.result.status in (
            ingest_pb2.SubmitResult.STATUS_ACCEPTED,
            ingest_pb2.SubmitResult.STATUS_DUPLICATE,
        ):
            ledger.acked[item.event_id] = status
            ledger.progress.set()
        else:
            ledger.unacked[item.event_id] = status


@asynccontextmanager
async def adapters(
    addresses: Mapping[str, str],
    tokens: Mapping[str, str],
    *,
    call_timeout_s: float = 10.0,
    give_up_s: float = 180.0,
) -> AsyncIterator[Adapters]:
    """The load's adapters, connected to the ingest services at `addresses`."""
    async with AsyncExitStack() as stack:
        stubs = {}
        for channel in LOAD_CHANNELS:
            opened = open_channel(
                addresses[channel], token=tokens[channel], options=RECONNECT_OPTIONS
            )
            channel_ = await stack.enter_async_context(opened)
            stubs[channel] = ingest_pb2_grpc.IngestServiceStub(channel_)
        yield Adapters(stubs, call_timeout_s, give_up_s)


async def steady(
    adapters: Adapters,
    tenant: str,
    targets: Sequence[Customer],
    *,
    rate: float,
    stop: asyncio.Event,
    ledger: Ledger,
) -> None:
    """Submit at `rate` per second (open loop) until `stop`, then wait for every submission.

    Open loop: a submission stuck in retries during a fault does not hold the next ones back,
    as many independent adapter requests would not.
    """
    started = time.monotonic()
    sends: list[asyncio.Task[None]] = []
    try:
        for i, customer in enumerate(itertools.cycle(targets)):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, started + i / rate - time.monotonic()))
            if stop.is_set():
                break
            item = customer.interaction(tenant, f"chaos message {i}")
            sends.append(asyncio.create_task(adapters.submit(customer.channel, item, ledger)))
        await asyncio.gather(*sends)
    finally:
        # Cancelled (Ctrl-C): no submission may outlive the adapters' channels.
        for send in sends:
            send.cancel()
