"""Spans leave a process with exceptions named by type only: messages can quote documents."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

_EXCEPTION_TYPE = "exception.type"


def _scrubbed(span: ReadableSpan) -> ReadableSpan:
    """The span with each exception event cut to its type, and its status text with it.

    The SDK records a raised exception's message and stack trace on the span it escapes,
    and puts the message into the span's status: a store error's message ends in the
    driver's "full error", which quotes the refused document (names, phone numbers, texts).
    """
    exceptions = [e for e in span.events if e.name == "exception"]
    if not exceptions:
        return span
    kept = tuple(
        Event(
            "exception",
            {_EXCEPTION_TYPE: str((e.attributes or {}).get(_EXCEPTION_TYPE, ""))},
            e.timestamp,
        )
        if e.name == "exception"
        else e
        for e in span.events
    )
    last_type = str((exceptions[-1].attributes or {}).get(_EXCEPTION_TYPE, ""))
    status = span.status
    if status.description and last_type and status.description.startswith(f"{last_type}:"):
        status = Status(status.status_code, last_type)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=kept,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class WithoutExceptionText(SpanExporter):
    """Wraps an exporter; what it exports names exceptions by type only."""

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._exporter.export([_scrubbed(span) for span in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)
