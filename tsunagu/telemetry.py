"""OpenTelemetry set-up; called once by each entry point. Libraries only call get_tracer."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import (
    GrpcAioInstrumentorClient,
    GrpcAioInstrumentorServer,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from tsunagu.span_scrubbing import WithoutExceptionText

# Set by `make run` (tsunagu.local): each process keeps its last spans in
# `<dir>/<service name>.jsonl` for `python -m tsunagu.local trace <event_id>`.
TRACES_DIR_ENV = "TSUNAGU_TRACES_DIR"

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


class Instrumentor(Protocol):
    """What Tsunagu uses of an OpenTelemetry instrumentor (the package is untyped)."""

    @property
    def is_instrumented_by_opentelemetry(self) -> bool: ...

    def instrument(self, **kwargs: Any) -> object: ...

    def uninstrument(self, **kwargs: Any) -> object: ...


class TelemetrySettingsError(ValueError):
    """An OTEL_* variable asks for something this build cannot do."""


def _otlp(environ: Mapping[str, str]) -> SpanExporter:
    protocol = next((environ[v] for v in _PROTOCOL_VARIABLES if environ.get(v)), "grpc")
    if protocol != "grpc":
        raise TelemetrySettingsError(
            f"OTLP protocol {protocol!r} is not installed; Tsunagu exports OTLP over gRPC "
            "(set OTEL_EXPORTER_OTLP_PROTOCOL=grpc and a collector's gRPC port, 4317)"
        )
    # Imported only when asked for: the exporter pulls in its own gRPC stubs.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    # Endpoint, headers, TLS, timeout: the exporter reads the OTEL_EXPORTER_OTLP_* variables.
    return OTLPSpanExporter()


def _console(_environ: Mapping[str, str]) -> SpanExporter:
    return ConsoleSpanExporter()


_EXPORTERS: Mapping[str, Callable[[Mapping[str, str]], SpanExporter]] = {
    "otlp": _otlp,
    "console": _console,
}


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The span exporters `OTEL_TRACES_EXPORTER` names (comma-separated, as the SDK reads it).

    Unset, it is `otlp` when an OTLP endpoint is configured and `none` otherwise: the SDK's
    own default (`otlp` towards localhost:4317) would make every test and laptop run log
    export failures for a collector that is not there.
    """
    value = environ.get("OTEL_TRACES_EXPORTER")
    if value is None:
        return ["otlp"] if any(environ.get(v) for v in _ENDPOINT_VARIABLES) else []
    names = [name.strip() for name in value.split(",") if name.strip()]
    if names == ["none"]:
        return []
    unknown = sorted(set(names) - set(_EXPORTERS))
    if unknown:
        raise TelemetrySettingsError(
            f"OTEL_TRACES_EXPORTER={value!r}: unknown {', '.join(unknown)} "
            f"(use {', '.join(sorted(_EXPORTERS))} or none)"
        )
    return names


def instrument_libraries() -> list[Instrumentor]:
    """Trace every grpc.aio server and channel created from now on; W3C context in metadata.

    Returns the instrumentors, so a test can `uninstrument()` them again. MongoDB commands
    are traced by the timeline's own command listener (services.timeline.store.command_spans).
    """
    instrumentors: list[Instrumentor] = [
        GrpcAioInstrumentorServer(),  # type: ignore[no-untyped-call]
        GrpcAioInstrumentorClient(),  # type: ignore[no-untyped-call]
    ]
    for instrumentor in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
    return instrumentors


def build_provider(service_name: str, environ: Mapping[str, str]) -> TracerProvider:
    """A tracer provider named for the service, exporting as the OTEL_* variables say.

    `OTEL_TRACES_EXPORTER` picks the exporters (`otlp`, `console`, `none`; see
    `exporter_names`); the OTLP exporter reads `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`,
    `_HEADERS`, `_INSECURE`, `_CERTIFICATE` and `_TIMEOUT` itself. With `TSUNAGU_TRACES_DIR`
    set (by `make run`) spans are also kept in a bounded local file.
    """
    provider = TracerProvider(
        resource=Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", service_name)})
    )
    for name in exporter_names(environ):
        # Exceptions by type only, whichever exporter: their messages can quote documents.
        exporter = WithoutExceptionText(_EXPORTERS[name](environ))
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if traces_dir := environ.get(TRACES_DIR_ENV):
        from tsunagu.local.traces import JsonLinesSpanExporter

        service = str(provider.resource.attributes["service.name"])
        local = JsonLinesSpanExporter(Path(traces_dir) / f"{service}.jsonl")
        provider.add_span_processor(BatchSpanProcessor(WithoutExceptionText(local)))
    return provider


def configure_telemetry(service_name: str) -> TracerProvider:
    """Install the process's tracer provider (see `build_provider`) and instrument gRPC.

    Span attributes never carry personal data (identifier values, message text): only ids,
    channels, kinds and counts.
    """
    provider = build_provider(service_name, os.environ)
    trace.set_tracer_provider(provider)
    instrument_libraries()
    return provider
