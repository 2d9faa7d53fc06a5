"""The gateway's side of NATS: publishing agent actions, and hearing what the timeline stored.

One connection per gateway process, opened and closed by the app's lifespan. Three uses:

- ``publish``: an agent action onto JetStream (the one write path), bounded in time.
- ``expect``: read-your-writes. One core-NATS subscription per *tenant* with pending
  mutations (``timeline.updated.<tenant>.>``), shared by all of them and dropped when the
  last one finishes, wakes each mutation when its event id is announced.
- ``follow``: GraphQL subscriptions. One subscription per followed customer subject, so
  the NATS server filters and a gateway only receives what its clients watch. Core NATS
  delivers at most once: after a reconnect every follower catches up from the
  ``TIMELINE_UPDATED`` capture, starting a little before the disconnection.

Notices are ``tsunagu.v1.TimelineUpdated`` read by the one codec
(``tsunagu.bus.notices.decode_notice``); a payload it refuses is dropped with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, Self

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gateway.errors import ErrorCode, GatewayError
from tsunagu.bus.actor_signature import ActorSigner
from tsunagu.bus.connection import (
    NatsConnection,
    NatsLogin,
    NatsTls,
    NatsUnreachable,
    without_credentials,
)
from tsunagu.bus.notices import customer_subject, decode_notice, tenant_subject
from tsunagu.bus.publisher import InteractionPublisher, Published, PublishError
from tsunagu.bus.subjects import TIMELINE_UPDATED_STREAM
from tsunagu.lifecycle import Lifecycle
from tsunagu.v1 import interaction_pb2
from tsunagu.v1.notices_pb2 import TimelineUpdated

_log = logging.getLogger(__name__)

# The first connection must succeed within this budget, or start-up fails.
CONNECT_BUDGET_SECONDS = 10.0
# Remembered per follower to drop a notice heard twice (survivor and merged-away subjects).
_SEEN_EVENTS = 256
# Catch-up starts this long before the disconnection was noticed: a notice published just
# before the server went away may not have reached this gateway.
CATCH_UP_MARGIN_SECONDS = 2.0
# Notices read per request while catching up, and the bound on one request.
_CATCH_UP_BATCH = 256
_CATCH_UP_FETCH_SECONDS = 5.0
# The server removes a catch-up consumer this long after its last use, should its deletion fail.
_CATCH_UP_IDLE_SECONDS = 30.0


def bus_unavailable() -> GatewayError:
    """Build the error for an agent action the bus did not accept.

    Returns:
        A ``GatewayError`` with code ``BUS_UNAVAILABLE``.
    """
    return GatewayError(
        ErrorCode.BUS_UNAVAILABLE,
        "The event bus did not accept the action; retry with the same eventId.",
    )


class BusNotReachable(RuntimeError):
    """Start-up error: NATS could not be reached."""


class SlowConsumer(GatewayError):
    """A subscription's client fell more updates behind than its queue holds."""

    def __init__(self) -> None:
        super().__init__(
            ErrorCode.SLOW_CONSUMER,
            "The subscription was ended because its updates were not read fast enough.",
        )


@dataclass
class _TenantWatch:
    """Mutations of one tenant waiting for their events to be stored."""

    subscription: Subscription | None = None
    waiters: dict[str, list[asyncio.Future[TimelineUpdated]]] = field(default_factory=dict)
    users: int = 0

    async def on_message(self, msg: Msg) -> None:
        notice = decode_notice(msg.data)
        if notice is None:
            return
        for waiter in self.waiters.get(notice.event_id, ()):
            if not waiter.done():
                waiter.set_result(notice)


class Heard(NamedTuple):
    """One notice as the follower heard it, with its headers (the timeline's trace context)."""

    notice: TimelineUpdated
    headers: dict[str, str] | None


class CustomerFollower:
    """The notices of one customer, following merges, through a bounded queue.

    Iterate with ``async for``. When the queue overflows the follower stops listening and
    the iteration raises ``SlowConsumer``: a client that cannot keep up is cut off rather
    than buffered without bound.
    """

    def __init__(self, nc: Client, *, tenant: str, customer_id: str, queue_size: int) -> None:
        self._nc = nc
        self._tenant = tenant
        self._queue: asyncio.Queue[Heard] = asyncio.Queue(maxsize=queue_size)
        self._subscriptions: dict[str, Subscription] = {}
        self._seen: deque[str] = deque(maxlen=_SEEN_EVENTS)
        self._overflowed = False
        self._closed = False
        self.customer_id = customer_id

    @property
    def followed(self) -> frozenset[str]:
        """The customer ids listened to: the first one and every survivor since."""
        return frozenset(self._subscriptions)

    async def start(self) -> None:
        """Subscribe to the customer's notices; from its return the server delivers them."""
        await self._follow(self.customer_id)

    async def _follow(self, customer_id: str) -> None:
        if customer_id in self._subscriptions or self._closed:
            return
        subject = customer_subject(self._tenant, customer_id)
        self._subscriptions[customer_id] = await self._nc.subscribe(subject, cb=self._on_message)
        # Until the server has the subscription it drops what is published on the subject:
        # flushing makes "followed" mean "delivered from now on". After a merge this runs
        # before the merge's own push is queued, so a client that reacts to that push
        # cannot outrun the survivor's subscription.
        await self._nc.flush()

    async def _on_message(self, msg: Msg) -> None:
        await self._hear(msg)

    async def catch_up(self, js: JetStreamContext, since: datetime) -> None:
        """Feed the notices captured since `since` through the live path (it drops repeats).

        Reads the followed subjects through an ephemeral pull consumer on the capture stream,
        deleted when done. Call it after the subscriptions are back on the server, so that
        nothing published in between is missed.
        """
        if self._closed or not self._subscriptions:
            return
        subjects = [customer_subject(self._tenant, c) for c in sorted(self._subscriptions)]
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=since,
            ack_policy=AckPolicy.NONE,
            filter_subjects=subjects if len(subjects) > 1 else None,
            inactive_threshold=_CATCH_UP_IDLE_SECONDS,
            mem_storage=True,
        )
        reader = await js.pull_subscribe(subjects[0], stream=TIMELINE_UPDATED_STREAM, config=config)
        try:
            pending = (await reader.consumer_info()).num_pending
            while pending and not self._closed:
                batch = await reader.fetch(
                    min(pending, _CATCH_UP_BATCH), timeout=_CATCH_UP_FETCH_SECONDS
                )
                for msg in batch:
                    await self._hear(msg)
                pending = batch[-1].metadata.num_pending
        finally:
            with contextlib.suppress(Exception):
                await reader.unsubscribe()
            with contextlib.suppress(Exception):
                await js.delete_consumer(TIMELINE_UPDATED_STREAM, config.name or "")

    async def _hear(self, msg: Msg) -> None:
        notice = decode_notice(msg.data)
        if notice is None or self._overflowed or notice.tenant != self._tenant:
            return
        if notice.merged_into:
            # The watched customer was merged away: from now on its events are announced
            # on the survivor's subject.
            self.customer_id = notice.merged_into
            try:
                await self._follow(notice.merged_into)
            except Exception:  # noqa: BLE001 - NATS trouble; the client keeps what it has
                _log.warning("could not follow survivor %s", notice.merged_into, exc_info=True)
        if notice.event_id in self._seen:
            return
        self._seen.append(notice.event_id)
        try:
            self._queue.put_nowait(Heard(notice, msg.headers))
        except asyncio.QueueFull:
            self._overflowed = True
            _log.warning(
                "subscription of tenant %s cut off: %d updates unread",
                self._tenant,
                self._queue.qsize(),
            )

    @property
    def cut_off(self) -> bool:
        """Whether the reader fell too far behind: the next read raises `SlowConsumer`."""
        return self._overflowed

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Heard:
        if self.cut_off:
            raise SlowConsumer
        return await self._queue.get()

    async def close(self) -> None:
        """Unsubscribe everything; safe to call twice and on a closed connection."""
        self._closed = True
        subscriptions, self._subscriptions = self._subscriptions, {}
        for subscription in subscriptions.values():
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()


class GatewayBus(Lifecycle):
    """The gateway's NATS connection; an async context manager like the timeline client."""

    def __init__(
        self,
        *,
        url: str,
        publish_timeout_seconds: float,
        signer: ActorSigner,
        login: NatsLogin | None = None,
        tls: NatsTls | None = None,
        connect_budget_seconds: float = CONNECT_BUDGET_SECONDS,
        reconnect_wait_seconds: float | None = None,
    ) -> None:
        self._url = url
        self._tls = tls
        self._reconnect_wait = reconnect_wait_seconds
        self._signer = signer
        self._login = login
        self._connect_budget = connect_budget_seconds
        self._publish_timeout = publish_timeout_seconds
        self._nc: Client | None = None
        self._publisher: InteractionPublisher | None = None
        self._watches: dict[str, _TenantWatch] = {}
        self._watch_lock = asyncio.Lock()
        self._followers: set[CustomerFollower] = set()
        # When the connection was first seen lost, until the catch-up after it started.
        self._disconnected_at: float | None = None
        self._catch_ups: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The NATS URL."""
        return self._url

    async def open(self) -> None:
        """Connect; fails within a bounded time when NATS cannot be reached.

        Raises:
            BusNotReachable: No connection within the budget (start-up then fails).
        """
        if self._nc is not None:
            raise RuntimeError("the gateway bus is already open")
        connection = NatsConnection(
            self._url,
            name="tsunagu-gateway",
            login=self._login,
            tls=self._tls,
            connect_budget_seconds=self._connect_budget,
        )
        if self._reconnect_wait is not None:
            connection.reconnect_wait_seconds = self._reconnect_wait
        connection.on_connectivity_change(self._connectivity_changed)
        try:
            await connection.open()
        except NatsUnreachable as error:
            raise BusNotReachable(
                f"cannot connect to NATS at {without_credentials(self._url)}"
            ) from error
        self._nc = connection.client
        self._publisher = InteractionPublisher(
            self._nc.jetstream(), ack_timeout=self._publish_timeout, signer=self._signer
        )

    def _connectivity_changed(self) -> None:
        nc = self._nc
        if nc is None or nc.is_closed:
            return
        if not nc.is_connected:
            if self._disconnected_at is None:
                self._disconnected_at = time.time()
            return
        if self._disconnected_at is None:
            return
        # nats-py calls back once it has re-sent every subscription and flushed: live
        # notices flow again, and the catch-up covers what was published before that.
        since = datetime.fromtimestamp(self._disconnected_at - CATCH_UP_MARGIN_SECONDS, UTC)
        self._disconnected_at = None
        task = asyncio.get_running_loop().create_task(self._catch_up(nc.jetstream(), since))
        self._catch_ups.add(task)
        task.add_done_callback(self._catch_ups.discard)

    async def _catch_up(self, js: JetStreamContext, since: datetime) -> None:
        for follower in list(self._followers):
            try:
                await follower.catch_up(js, since)
            except Exception:  # noqa: BLE001 - NATS trouble; the follower keeps what it has
                _log.warning("a subscription could not catch up after a reconnect", exc_info=True)

    async def close(self) -> None:
        """End every follower, then drain and close the connection."""
        for task in list(self._catch_ups):
            task.cancel()
        for follower in list(self._followers):
            await follower.close()
        nc, self._nc, self._publisher = self._nc, None, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):
                await nc.drain()

    def connectivity(self) -> str:
        """``CONNECTED``, ``RECONNECTING`` or ``CLOSED``, for the health probe."""
        if self._nc is None or self._nc.is_closed:
            return "CLOSED"
        return "CONNECTED" if self._nc.is_connected else "RECONNECTING"

    @property
    def active_followers(self) -> int:
        """How many GraphQL subscriptions currently listen (for tests and metrics)."""
        return len(self._followers)

    def _require(self) -> Client:
        if self._nc is None or not self._nc.is_connected:
            raise bus_unavailable()
        return self._nc

    async def publish(
        self, interaction: interaction_pb2.Interaction, *, roles: Iterable[str]
    ) -> Published:
        """Publish an agent action and wait for JetStream's acknowledgement, bounded in time.

        Args:
            interaction: The complete event; ``<tenant>/<event_id>`` is its ``Nats-Msg-Id``.
            roles: The acting agent's roles, signed with the actor.

        Returns:
            The acknowledgement (``duplicate`` when the stream already had that event id).

        Raises:
            GatewayError: ``BUS_UNAVAILABLE`` when NATS is down or did not acknowledge in time.
        """
        self._require()
        assert self._publisher is not None
        try:
            # The publisher bounds its own wait; this also bounds a stalled send buffer.
            async with asyncio.timeout(self._publish_timeout + 1):
                return await self._publisher.publish(interaction, roles=sorted(roles))
        except (PublishError, TimeoutError) as error:
            _log.warning("agent action %s not published: %s", interaction.event_id, error)
            raise bus_unavailable() from error

    @asynccontextmanager
    async def expect(
        self, tenant: str, event_id: str
    ) -> AsyncIterator[asyncio.Future[TimelineUpdated]]:
        """Listen for the notice of one event; enter *before* publishing it.

        Args:
            tenant: The tenant the event is published for.
            event_id: The event.

        Yields:
            A future resolved with the event's notice once the timeline stored it.

        Raises:
            GatewayError: ``BUS_UNAVAILABLE`` when NATS is down.
        """
        nc = self._require()
        waiter: asyncio.Future[TimelineUpdated] = asyncio.get_running_loop().create_future()
        async with self._watch_lock:
            watch = self._watches.setdefault(tenant, _TenantWatch())
            watch.users += 1
            if watch.subscription is None:
                try:
                    watch.subscription = await nc.subscribe(
                        tenant_subject(tenant), cb=watch.on_message
                    )
                except Exception as error:
                    watch.users -= 1
                    raise bus_unavailable() from error
        watch.waiters.setdefault(event_id, []).append(waiter)
        try:
            yield waiter
        finally:
            waiter.cancel()
            waiting = watch.waiters.get(event_id, [])
            if waiter in waiting:
                waiting.remove(waiter)
            if not waiting:
                watch.waiters.pop(event_id, None)
            async with self._watch_lock:
                watch.users -= 1
                if watch.users == 0 and self._watches.get(tenant) is watch:
                    del self._watches[tenant]
                    if watch.subscription is not None:
                        with contextlib.suppress(Exception):
                            await watch.subscription.unsubscribe()

    @asynccontextmanager
    async def follow(
        self, tenant: str, customer_id: str, *, queue_size: int
    ) -> AsyncIterator[CustomerFollower]:
        """Listen to one customer's notices (and its survivor's after a merge).

        Args:
            tenant: The caller's tenant.
            customer_id: The (live) customer.
            queue_size: Notices buffered before the follower gives up on its reader.

        Yields:
            The follower, to iterate.

        Raises:
            GatewayError: ``BUS_UNAVAILABLE`` when NATS is down.
        """
        nc = self._require()
        follower = CustomerFollower(
            nc, tenant=tenant, customer_id=customer_id, queue_size=queue_size
        )
        try:
            try:
                await follower.start()
            except (OSError, NatsError, TimeoutError) as error:
                raise bus_unavailable() from error
            # Counted once live, so ``active_followers`` never counts a subscription the
            # server does not have yet.
            self._followers.add(follower)
            yield follower
        finally:
            self._followers.discard(follower)
            await follower.close()

    @asynccontextmanager
    async def listen(
        self, subject: str, *, queue_size: int
    ) -> AsyncIterator[asyncio.Queue[bytes | None]]:
        """The payloads published on one core-NATS subject from now on, in a bounded queue.

        When the reader falls `queue_size` behind, the queue holds `None` as its last item:
        the reader ends with ``SlowConsumer`` rather than being buffered without bound.

        Raises:
            GatewayError: ``BUS_UNAVAILABLE`` when NATS is down.
        """
        nc = self._require()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=queue_size)
        overflowed = False

        async def on_message(msg: Msg) -> None:
            nonlocal overflowed
            if overflowed:
                return
            if queue.full():
                overflowed = True
                queue.get_nowait()
                queue.put_nowait(None)
                return
            queue.put_nowait(msg.data)

        try:
            subscription = await nc.subscribe(subject, cb=on_message)
            await nc.flush()
        except (OSError, NatsError, TimeoutError) as error:
            raise bus_unavailable() from error
        try:
            yield queue
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
