"""Store operation latency for /metrics: a PyMongo command listener timing every command."""

from __future__ import annotations

from opentelemetry import metrics
from pymongo import monitoring

from tsunagu.metrics import seconds_histogram

_meter = metrics.get_meter(__name__)
_duration = seconds_histogram(
    _meter,
    "tsunagu.store.command.duration",
    "MongoDB command round trips, by command name (find, insert, ...) and outcome.",
)


class CommandTiming(monitoring.CommandListener):
    """Records each command's duration as the driver measured it; labels never carry data."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass  # the duration comes with the outcome

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        _duration.record(
            event.duration_micros / 1e6, {"command": event.command_name, "outcome": "ok"}
        )

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        _duration.record(
            event.duration_micros / 1e6, {"command": event.command_name, "outcome": "failed"}
        )
