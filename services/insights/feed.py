"""The durable feed: a pull consumer on the outcomes mirror, each notice applied once, acked.

Pump → gather a batch → apply it → ack each: the projector applies a batch in a few calls
(`Projector.apply`: entries read back from the timeline in one bulk call per tenant — with
sealed events no notice carries its entry —, events, messages and case facts written in
bulk); one call per event would leave insights minutes behind a backlog. A fetch returns
whatever has arrived — a dozen notices under a steady flow —, so the feed tops the batch up
for a short linger (`linger_seconds`) before applying it: fewer, larger read-backs, each of
which costs the timeline several store round trips whatever its size. The read model is
idempotent by event id, so a redelivery after a crash changes nothing. A notice that cannot
be decoded is terminated (it never will decode) and logged; one whose entry cannot be read or
that fails on the store is redelivered until `max_deliver`, then terminated, so a bad item
never holds the good ones behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import metrics

from services.insights.projector import Outcome, Projector
from tsunagu.bus.notices import decode_notice
from tsunagu.bus.streams import TIMELINE_OUTCOMES_STREAM
from tsunagu.bus.subjects import TIMELINE_UPDATED_SUBJECTS
from tsunagu.metrics import seconds_histogram
from tsunagu.v1 import notices_pb2

log = logging.getLogger(__name__)

_meter = metrics.get_meter(__name__)
_notices = _meter.create_counter(
    "tsunagu.insights.notices",
    unit="{notice}",
    description="Timeline notices applied, by outcome (recorded, duplicate, no_case, ...).",
)
_freshness = seconds_histogram(
    _meter,
    "tsunagu.insights.freshness",
    "Time from the timeline recording an event to its figures being updated.",
)
_FETCH_WAIT_SECONDS = 1.0
# nats-py asks the server to expire a pull 0.1 ms before its timeout: none shorter than this.
_SHORTEST_FETCH_SECONDS = 0.005


def notice_of(msg: Msg) -> notices_pb2.TimelineUpdated | None:
    """The notice a message carries; None when it does not decode or names another tenant
    than its subject (`timeline.updated.<tenant>.<customer>`): never applied to either."""
    notice = decode_notice(msg.data)
    if notice is None or msg.subject.split(".")[2:3] != [notice.tenant]:
        return None
    return notice


@dataclass(frozen=True, slots=True)
class FeedOptions:
    durable: str = "insights"
    subject_filter: str = TIMELINE_UPDATED_SUBJECTS
    # As many as one bulk read of the timeline answers (`timeline_reads.BULK_IDS`).
    fetch_batch: int = 200
    # How long after its first fetch a batch smaller than `fetch_batch` keeps gathering
    # (0: applied as fetched). Kept well inside `ack_wait_seconds` (`InsightsSettings`).
    linger_seconds: float = 0.25
    ack_wait_seconds: float = 30.0
    max_deliver: int = 5


class OutcomeFeed:
    """Follows the outcomes mirror durably; `failed` resolves if the pump crashes."""

    def __init__(
        self,
        js: JetStreamContext,
        projector: Projector,
        *,
        options: FeedOptions,
        readiness: Callable[[bool], Awaitable[None]] | None = None,
    ) -> None:
        self._js = js
        self._projector = projector
        self._options = options
        self._readiness = readiness
        self._task: asyncio.Task[None] | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._stopping = asyncio.Event()
        self.failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        o = self._options
        sub = await self._js.pull_subscribe(
            o.subject_filter,
            durable=o.durable,
            stream=TIMELINE_OUTCOMES_STREAM,
            config=ConsumerConfig(
                durable_name=o.durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=o.ack_wait_seconds,
                max_deliver=o.max_deliver,
                filter_subject=o.subject_filter,
            ),
        )
        self._sub = sub
        self._task = asyncio.create_task(self._pump(sub), name="insights-feed")
        self._task.add_done_callback(self._done)
        if self._readiness is not None:
            await self._readiness(True)

    def _done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.failed.done():
            return
        if (error := task.exception()) is not None:
            log.error("the insights feed stopped: %s", type(error).__name__)
            self.failed.set_result(error)

    async def _pump(self, sub: JetStreamContext.PullSubscription) -> None:
        ready = True
        while not self._stopping.is_set():
            try:
                batch = await sub.fetch(self._options.fetch_batch, timeout=_FETCH_WAIT_SECONDS)
            except NatsTimeout:
                continue
            except (NatsError, OSError) as error:
                # NATS away (reconnecting, a slow server): not ready, and try again shortly;
                # the durable consumer keeps the position, nothing is lost.
                log.warning("the insights feed cannot fetch: %s", type(error).__name__)
                if ready and self._readiness is not None:
                    await self._readiness(False)
                ready = False
                await asyncio.sleep(_FETCH_WAIT_SECONDS)
                continue
            if not ready and self._readiness is not None:
                await self._readiness(True)
            ready = True
            await self._apply(await self._gathered(sub, batch))

    async def _gathered(
        self, sub: JetStreamContext.PullSubscription, batch: list[Msg]
    ) -> list[Msg]:
        """`batch`, topped up until it holds `fetch_batch` messages or the linger has passed
        since it was fetched.

        A top-up returns as soon as something arrived (or at its timeout), and none waits
        longer than the pump's own fetch, so a stop is noticed as promptly as before.
        """
        o = self._options
        loop = asyncio.get_running_loop()
        until = loop.time() + o.linger_seconds
        while len(batch) < o.fetch_batch and not self._stopping.is_set():
            left = until - loop.time()
            if left < _SHORTEST_FETCH_SECONDS:
                break
            try:
                batch += await sub.fetch(
                    o.fetch_batch - len(batch), timeout=min(left, _FETCH_WAIT_SECONDS)
                )
            except TimeoutError:  # nats-py's, or asyncio's when its deadline ran out
                continue
            except (NatsError, OSError):
                # NATS away mid-linger: apply what is in hand (its acks may not get through:
                # redelivered then); the pump's next fetch meets the outage as any fetch does.
                break
        return batch

    async def _apply(self, batch: list[Msg]) -> None:
        notices = [(msg, notice_of(msg)) for msg in batch]
        good = [notice for _msg, notice in notices if notice is not None]
        try:
            applied = iter(await self._projector.apply(good))
        except Exception as error:  # noqa: BLE001 - the whole batch is retried
            applied = iter([error] * len(good))
        for msg, notice in notices:
            try:
                await self._settle(msg, notice, None if notice is None else next(applied))
            except NatsError as error:
                # An ack that did not get through: the notice comes again (idempotent).
                log.warning("could not settle a notice: %s", type(error).__name__)

    async def _settle(
        self, msg: Msg, notice: notices_pb2.TimelineUpdated | None, outcome: Outcome | None
    ) -> None:
        if notice is None or outcome is None:
            _notices.add(1, {"outcome": "malformed"})
            log.warning("terminated a malformed notice on %s", msg.subject[:128])
            await msg.term()
            return
        if isinstance(outcome, Exception):
            # Any failure of one notice is retried, until `max_deliver`.
            if msg.metadata.num_delivered >= self._options.max_deliver:
                _notices.add(1, {"outcome": "failed"})
                log.error(
                    "gave up on a notice after %d tries: %s",
                    msg.metadata.num_delivered,
                    type(outcome).__name__,
                )
                await msg.term()
            else:
                await msg.nak(delay=1.0)
            return
        await msg.ack()
        _notices.add(1, {"outcome": outcome.value})
        if notice.HasField("recorded_at"):
            recorded = notice.recorded_at.seconds + notice.recorded_at.nanos / 1e9
            _freshness.record(max(0.0, time.time() - recorded))

    async def stop(self, grace_seconds: float) -> None:
        """Stop fetching and let the notice in hand finish within `grace_seconds`."""
        self._stopping.set()
        if self._readiness is not None:
            await self._readiness(False)
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), grace_seconds)
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._sub is not None:
            # A fetch cut short leaves its inbox subscribed: draining NATS would wait for it.
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
