"""`python -m tsunagu.local trace <event_id>`: recorded spans, read back, printed as a waterfall."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tsunagu.local.__main__ import main
from tsunagu.local.traces import JsonLinesSpanExporter, read_spans


def _recording(traces_dir: Path, service: str, **limits: int) -> TracerProvider:
    """A process of a local stack: its spans go to `<traces_dir>/<service>.jsonl`."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = JsonLinesSpanExporter(traces_dir / f"{service}.jsonl", **limits)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _record_interaction(traces_dir: Path, event_id: str) -> None:
    """Spans as ingest, timeline and gateway record one event (and one unrelated event)."""
    ingest = _recording(traces_dir, "tsunagu-ingest-chat").get_tracer("ingest")
    timeline = _recording(traces_dir, "tsunagu-timeline").get_tracer("timeline")
    gateway = _recording(traces_dir, "tsunagu-gateway").get_tracer("gateway")
    with (
        ingest.start_as_current_span(
            "/tsunagu.v1.IngestService/Submit", kind=trace.SpanKind.SERVER
        ),
        ingest.start_as_current_span(
            "interactions publish",
            kind=trace.SpanKind.PRODUCER,
            attributes={"tsunagu.event_id": event_id},
        ) as publish,
    ):
        producer = publish.get_span_context()
    with (
        timeline.start_as_current_span(
            "interactions process", kind=trace.SpanKind.CONSUMER, links=[trace.Link(producer)]
        ) as batch,
        timeline.start_as_current_span("insert interactions", kind=trace.SpanKind.CLIENT),
    ):
        pass
    with (
        timeline.start_as_current_span(
            "interaction settle",
            context=trace.set_span_in_context(trace.NonRecordingSpan(producer)),
            links=[trace.Link(batch.get_span_context())],
            attributes={"tsunagu.event_id": event_id},
        ),
        timeline.start_as_current_span("timeline.updated publish") as notice,
    ):
        announced = notice.get_span_context()
    with gateway.start_as_current_span(
        "subscription push",
        context=trace.set_span_in_context(trace.NonRecordingSpan(announced)),
        attributes={"tsunagu.event_id": event_id},
    ):
        pass
    with ingest.start_as_current_span(
        "interactions publish", attributes={"tsunagu.event_id": "other"}
    ):
        pass


def _trace_command(data_dir: Path, event_id: str, capsys: pytest.CaptureFixture[str]) -> str:
    """What `python -m tsunagu.local trace` prints after one event was recorded."""
    _record_interaction(data_dir / "traces", "01JTRACE")
    main(["trace", event_id, "--data-dir", str(data_dir)])
    return capsys.readouterr().out


def test_trace_prints_one_events_spans_as_a_waterfall_across_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _trace_command(tmp_path, "01JTRACE", capsys).splitlines()
    assert out[0].startswith("event 01JTRACE: 7 spans in 2 traces, ")
    # The event's own trace first, then the batch that recorded it (linked, its own trace).
    assert [line.split()[0] for line in out if not line.startswith(" ")][1:] == ["trace", "trace"]
    rows = [line.split("| ", 2)[-1].split("ms  ", 1)[1] for line in out if "ms |" in line]
    assert rows == [
        "tsunagu-ingest-chat    /tsunagu.v1.IngestService/Submit [server]",
        "tsunagu-ingest-chat      interactions publish [producer]",
        "tsunagu-timeline           interaction settle [internal]",
        "tsunagu-timeline             timeline.updated publish [internal]",
        "tsunagu-gateway                subscription push [internal]",
        "tsunagu-timeline       interactions process [consumer] (linked)",
        "tsunagu-timeline         insert interactions [client]",
    ]
    assert all(line.count("█") >= 1 for line in out if "ms |" in line)


def test_trace_of_an_event_never_recorded_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    said = _trace_command(tmp_path, "01JOTHER", capsys).strip()
    assert said == f"no spans recorded for event 01JOTHER in {tmp_path / 'traces'}"


def test_span_files_are_bounded_by_rotating_to_one_older_file(tmp_path: Path) -> None:
    tracer = _recording(tmp_path, "tsunagu-timeline", max_bytes=2_000).get_tracer(__name__)
    for number in range(40):
        with tracer.start_as_current_span(f"span {number}"):
            pass

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["tsunagu-timeline.jsonl", "tsunagu-timeline.jsonl.1"]
    assert all(p.stat().st_size < 2_000 + 1_000 for p in tmp_path.iterdir())
    kept = [span.name for span in read_spans(tmp_path)]
    assert "span 39" in kept
    assert "span 0" not in kept
    assert all(json.loads(line) for line in (tmp_path / "tsunagu-timeline.jsonl").open())
