"""OpenTelemetry set-up; called once by each entry point. Libraries only call get_tracer."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter


def configure_telemetry(service_name: str) -> TracerProvider:
    """Install a tracer provider named for the service.

    Spans are exported to the console when `OTEL_TRACES_EXPORTER=console`; deployments add an
    OTLP exporter package and set `OTEL_EXPORTER_OTLP_ENDPOINT`. Span attributes never carry
    personal data (identifier values, message text): only ids, channels, kinds and counts.
    """
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)}
        )
    )
    if os.environ.get("OTEL_TRACES_EXPORTER") == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
