"""The timeline's instruments: batches, freshness, merges, dead letters and consumer lag."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from services.timeline.recorder import Recorded
from tsunagu.bus.subjects import DEAD_LETTER_STREAM, INTERACTIONS_STREAM
from tsunagu.lifecycle import Periodic
from tsunagu.metrics import FRESHNESS_BUCKETS_SECONDS, seconds_histogram

log = logging.getLogger(__name__)

_meter = metrics.get_meter(__name__)
_batch_size = _meter.create_histogram(
    "tsunagu.timeline.batch.size",
    unit="{message}",
    description="Messages handled together in one batch (one set of store round trips).",
    explicit_bucket_boundaries_advisory=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
_batch_duration = seconds_histogram(
    _meter,
    "tsunagu.timeline.batch.duration",
    "Time to record, settle (ack, retry or dead-letter) and announce one batch.",
)
_to_stored = seconds_histogram(
    _meter,
    "tsunagu.timeline.freshness.stored",
    "From the stream's acknowledgement of an event to its first storing.",
    FRESHNESS_BUCKETS_SECONDS,
)
_to_announced = seconds_histogram(
    _meter,
    "tsunagu.timeline.freshness.announced",
    "From the stream's acknowledgement of an event to its notice being published.",
    FRESHNESS_BUCKETS_SECONDS,
)
_merges = _meter.create_counter(
    "tsunagu.timeline.merges",
    unit="{customer}",
    description="Customers merged into another by recorded events.",
)
_splits = _meter.create_counter(
    "tsunagu.timeline.splits", unit="{split}", description="Merges undone by recorded events."
)
_dead_letters = _meter.create_counter(
    "tsunagu.timeline.dead_letters",
    unit="{message}",
    description="Messages moved to the dead-letter stream, by reason code.",
)


@contextlib.contextmanager
def batch(size: int) -> Iterator[None]:
    """Measure one batch's size and how long handling it took."""
    started = time.perf_counter()
    try:
        yield
    finally:
        _batch_size.record(size)
        _batch_duration.record(time.perf_counter() - started)


def _age(msg: Msg) -> float:
    # The ack subject carries the time the stream stored the message, i.e. acknowledged it
    # to the ingestion service: the moment the adapter was told "accepted".
    return (datetime.now(UTC) - msg.metadata.timestamp).total_seconds()


def stored(msg: Msg, recorded: Recorded) -> None:
    """An event was stored (and acked): its freshness, and the merges and splits it made."""
    if recorded.duplicate:
        return  # stored by an earlier delivery, which measured it
    _to_stored.record(_age(msg))
    if recorded.merged_ids:
        _merges.add(len(recorded.merged_ids))
    if recorded.restored_ids:
        _splits.add(1)


def announced(msg: Msg, recorded: Recorded) -> None:
    """An event's notices were published."""
    if not recorded.duplicate:
        _to_announced.record(_age(msg))


def dead_lettered(reason: str) -> None:
    """A message went to the dead-letter stream (`reason`: a tsunagu.contracts.Reason code)."""
    _dead_letters.add(1, {"reason": reason})


class StreamGauges(Periodic):
    """Consumer lag and dead-letter depth, read from JetStream every `every_seconds`.

    Scrapes run on the metrics server's thread and cannot await NATS: the readings are taken
    here, on the event loop, and the observable gauges report the latest ones. While NATS
    cannot answer, the gauges report nothing rather than stale numbers.
    """

    def __init__(self, js: JetStreamContext, *, durable: str, every_seconds: float) -> None:
        super().__init__(every_seconds=every_seconds, name="timeline-stream-gauges")
        self._js = js
        self._durable = durable
        # The durable's name: one per timeline Deployment, so bounded by configuration.
        self._labels = {"consumer": durable}
        self._pending: int | None = None
        self._ack_pending: int | None = None
        self._dead_letters: int | None = None
        _meter.create_observable_gauge(
            "tsunagu.timeline.consumer.pending",
            callbacks=[self._observe_pending],
            unit="{message}",
            description="Messages in the stream the timeline's consumer has not been given yet.",
        )
        _meter.create_observable_gauge(
            "tsunagu.timeline.consumer.ack_pending",
            callbacks=[self._observe_ack_pending],
            unit="{message}",
            description="Messages given to the consumer and not acknowledged yet.",
        )
        _meter.create_observable_gauge(
            "tsunagu.timeline.dead_letter.depth",
            callbacks=[self._observe_dead_letters],
            unit="{message}",
            description="Messages in the dead-letter stream (waiting for a replay).",
        )

    def _observe_pending(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [] if self._pending is None else [Observation(self._pending, self._labels)]

    def _observe_ack_pending(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [] if self._ack_pending is None else [Observation(self._ack_pending, self._labels)]

    def _observe_dead_letters(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [] if self._dead_letters is None else [Observation(self._dead_letters)]

    async def sample(self) -> None:
        """Read the consumer's and the dead-letter stream's state once."""
        try:
            consumer = await self._js.consumer_info(INTERACTIONS_STREAM, self._durable)
            dead = await self._js.stream_info(DEAD_LETTER_STREAM)
        except Exception as exc:  # noqa: BLE001 - NATS trouble: report nothing, try again later
            log.debug("could not sample consumer lag: %r", exc)
            self._pending = self._ack_pending = self._dead_letters = None
            return
        self._pending = consumer.num_pending
        self._ack_pending = consumer.num_ack_pending
        self._dead_letters = dead.state.messages

    async def tick(self) -> None:
        await self.sample()
