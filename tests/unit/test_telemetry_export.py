"""Which exporters the OTEL_* variables select, and spans reaching a real OTLP/gRPC receiver."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tsunagu.telemetry import TRACES_DIR_ENV, TelemetrySettingsError, build_provider, exporter_names


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ["otlp", "console"]),
    ],
)
def test_traces_are_exported_only_where_the_otel_variables_ask(
    environ: dict[str, str], expected: list[str]
) -> None:
    assert exporter_names(environ) == expected


def test_an_unknown_exporter_is_refused_by_name() -> None:
    with pytest.raises(TelemetrySettingsError, match="unknown jaeger"):
        exporter_names({"OTEL_TRACES_EXPORTER": "jaeger"})


def test_otlp_over_http_is_refused_with_what_to_set() -> None:
    environ = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    with pytest.raises(TelemetrySettingsError, match="OTEL_EXPORTER_OTLP_PROTOCOL=grpc"):
        build_provider("tsunagu-test", environ)


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: object,  # noqa: ARG002 - the generated service's signature
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def receiver() -> Iterator[tuple[_Receiver, int]]:
    """A real OTLP/gRPC trace receiver, as a collector runs one, on a free port."""
    servicer = _Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(grace=None)


def _export_to(
    port: int, monkeypatch: pytest.MonkeyPatch, *, failing_with: ValueError | None = None
) -> None:
    """Record one span in a provider configured like a process, towards `port`."""
    # The exporter itself reads the endpoint variables, as the SDK defines them.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    provider = build_provider("tsunagu-test", os.environ)
    with (
        contextlib.suppress(ValueError),
        provider.get_tracer(__name__).start_as_current_span("interactions publish"),
    ):
        if failing_with is not None:
            raise failing_with
    assert provider.force_flush(timeout_millis=30_000)
    provider.shutdown()


def _received(servicer: _Receiver) -> list[tuple[Any, Any]]:
    return [
        (resource.resource, span)
        for request in servicer.requests
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]


def test_spans_reach_the_collector_named_by_the_otlp_endpoint_variable(
    receiver: tuple[_Receiver, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    servicer, port = receiver
    _export_to(port, monkeypatch)

    spans = _received(servicer)
    assert [span.name for _, span in spans] == ["interactions publish"]
    service = {a.key: a.value.string_value for a in spans[0][0].attributes}["service.name"]
    assert service == "tsunagu-test"


def test_exported_exceptions_are_named_by_type_without_their_message(
    receiver: tuple[_Receiver, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    servicer, port = receiver
    # As a store error's "full error" quotes the document it refused.
    error = ValueError("duplicate key: {'value': '+819012345678', 'text': 'late parcel'}")
    _export_to(port, monkeypatch, failing_with=error)

    ((_, span),) = _received(servicer)
    exported = str(span)
    assert "ValueError" in exported
    assert "819012345678" not in exported
    assert "parcel" not in exported
    assert [event.name for event in span.events] == ["exception"]


def test_a_local_stack_keeps_each_process_spans_in_its_own_file(tmp_path: Path) -> None:
    provider = build_provider(
        "tsunagu-timeline", {TRACES_DIR_ENV: str(tmp_path), "OTEL_TRACES_EXPORTER": "none"}
    )
    with provider.get_tracer(__name__).start_as_current_span("interaction settle"):
        pass
    provider.shutdown()

    (line,) = (tmp_path / "tsunagu-timeline.jsonl").read_text().splitlines()
    assert json.loads(line)["name"] == "interaction settle"
    assert json.loads(line)["service"] == "tsunagu-timeline"
