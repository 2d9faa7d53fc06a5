"""A CLIENT span per MongoDB command, with the operation and collection, never a document.

opentelemetry-instrumentation-pymongo would do this, but no release of it matches the pinned
opentelemetry-sdk 1.45.2 (it needs a different semantic-conventions release), so this
listens the same way: pymongo's command monitoring, spans parented to the current one.
"""

from __future__ import annotations

from opentelemetry import trace
from pymongo import monitoring

tracer = trace.get_tracer(__name__)

_Key = tuple[int, object]


def _key(
    event: monitoring.CommandStartedEvent
    | monitoring.CommandSucceededEvent
    | monitoring.CommandFailedEvent,
) -> _Key:
    return (event.request_id, event.connection_id)


class CommandSpans(monitoring.CommandListener):
    """Pass as `event_listeners=[CommandSpans()]` to a MongoDB client."""

    def __init__(self) -> None:
        self._spans: dict[_Key, trace.Span] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        collection = event.command.get(event.command_name)
        host, port = event.connection_id[:2] if event.connection_id else ("", 0)
        span = tracer.start_span(
            f"{event.command_name} {collection}"
            if isinstance(collection, str)
            else event.command_name,
            kind=trace.SpanKind.CLIENT,
            attributes={
                "db.system.name": "mongodb",
                "db.namespace": event.database_name,
                "db.operation.name": event.command_name,
                **({"db.collection.name": collection} if isinstance(collection, str) else {}),
                "server.address": str(host),
                "server.port": int(port or 0),
            },
        )
        if span.is_recording():
            self._spans[_key(event)] = span

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        span = self._spans.pop(_key(event), None)
        if span is not None:
            span.end()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        span = self._spans.pop(_key(event), None)
        if span is not None:
            # The failure's code name only: a server error message can quote a document.
            span.set_status(trace.StatusCode.ERROR, f"code {event.failure.get('code', '?')}")
            span.end()
