"""Ingestion's instruments: events accepted, duplicate or rejected, and publish latency."""

from __future__ import annotations

import time
from collections.abc import Sequence

from nats.js import JetStreamContext
from opentelemetry import metrics

from tsunagu.bus.publisher import InteractionPublisher, Published, PublishError
from tsunagu.contracts import Reason
from tsunagu.crypto.bus_seal import BusSealer
from tsunagu.metrics import seconds_histogram
from tsunagu.v1 import interaction_pb2

_meter = metrics.get_meter(__name__)
_events = _meter.create_counter(
    "tsunagu.ingest.events",
    unit="{event}",
    description=(
        "Events submitted, by channel and outcome (accepted, duplicate, rejected); "
        "rejections carry a reason code."
    ),
)
_publish_duration = seconds_histogram(
    _meter,
    "tsunagu.ingest.publish.duration",
    "Time from publishing to the stream's acknowledgement, per Submit or SubmitBatch.",
)

# Not a contract reason: the stream did not acknowledge (NATS down, stream full, timeout).
UNAVAILABLE = "unavailable"


class IngestCounts:
    """Counts one channel's outcomes; labels are the channel and a bounded reason code only."""

    def __init__(self, channel: str) -> None:
        self._channel = channel

    def rejected(self, reason: Reason | str) -> None:
        _events.add(1, {"channel": self._channel, "outcome": "rejected", "reason": str(reason)})

    def published(self, outcomes: Sequence[Published | PublishError], seconds: float) -> None:
        _publish_duration.record(seconds, {"channel": self._channel})
        for outcome in outcomes:
            if isinstance(outcome, PublishError):
                self.rejected(UNAVAILABLE)
            else:
                outcome_name = "duplicate" if outcome.duplicate else "accepted"
                _events.add(1, {"channel": self._channel, "outcome": outcome_name})


class CountingPublisher(InteractionPublisher):
    """The publisher, counting every outcome and timing every publish (`publish` included)."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        ack_timeout: float,
        counts: IngestCounts,
        sealer: BusSealer | None = None,
    ) -> None:
        super().__init__(js, ack_timeout=ack_timeout, sealer=sealer)
        self._counts = counts

    async def publish_many(
        self, interactions: Sequence[interaction_pb2.Interaction], *, roles: Sequence[str] = ()
    ) -> list[Published | PublishError]:
        started = time.perf_counter()
        outcomes = await super().publish_many(interactions, roles=roles)
        self._counts.published(outcomes, time.perf_counter() - started)
        return outcomes
