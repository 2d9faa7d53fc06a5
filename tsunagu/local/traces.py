"""Traces without Jaeger: each process keeps its last spans as JSON lines; one prints as a tree."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

# The span attribute that names the interaction a span worked on.
EVENT_ID_ATTRIBUTE = "tsunagu.event_id"
# Per process: the current file is rotated to `.1` past this size, so at most twice it is kept.
MAX_FILE_BYTES = 4 * 1024 * 1024
_BAR_WIDTH = 32


def _span_line(span: ReadableSpan) -> dict[str, Any]:
    context = span.context
    assert context is not None, "an SDK span always has a context"
    return {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": str(span.resource.attributes.get("service.name", "")),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": {k: _plain(v) for k, v in (span.attributes or {}).items()},
        "links": [
            {"trace_id": f"{link.context.trace_id:032x}", "span_id": f"{link.context.span_id:016x}"}
            for link in span.links
        ],
    }


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a JSON-lines file, rotating it to `<file>.1` past a size."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> None:
        self._path = path
        self._max_bytes = max_bytes
        self._lock = threading.Lock()  # the batch processor's thread and a final flush
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        text = "".join(json.dumps(_span_line(span)) + "\n" for span in spans)
        with self._lock:
            try:
                if self._path.exists() and self._path.stat().st_size > self._max_bytes:
                    self._path.replace(self._path.with_name(self._path.name + ".1"))
                with self._path.open("a", encoding="utf-8") as out:
                    out.write(text)
            except OSError:
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


@dataclass
class Span:
    """One recorded span, as read back from the files."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    status: str
    attributes: dict[str, Any]
    links: list[dict[str, str]]
    children: list[Span] = field(default_factory=list)

    @classmethod
    def parse(cls, line: str) -> Span | None:
        try:
            return cls(**json.loads(line))
        except (ValueError, TypeError):
            return None  # a line cut short by a crash, or another format


def read_spans(traces_dir: Path) -> list[Span]:
    """Every span the processes of a local stack kept, older rotated files included."""
    spans: list[Span] = []
    for path in sorted(traces_dir.glob("*.jsonl*")):
        with path.open(encoding="utf-8") as lines:
            spans.extend(s for s in map(Span.parse, lines) if s is not None)
    return spans


def spans_of_event(spans: Iterable[Span], event_id: str) -> list[Span]:
    """The spans of the traces an event went through, and of the batches linked to them.

    A consumer batch span is the root of its own trace, linked to each event's producer
    span; the MongoDB writes of the batch are its children.
    """
    spans = list(spans)
    traces = {s.trace_id for s in spans if s.attributes.get(EVENT_ID_ATTRIBUTE) == event_id}
    linked = {s.trace_id for s in spans if any(link["trace_id"] in traces for link in s.links)}
    wanted = traces | linked
    return sorted((s for s in spans if s.trace_id in wanted), key=lambda s: s.start_ns)


def _trees(spans: list[Span]) -> list[Span]:
    by_id = {s.span_id: s for s in spans}
    roots = []
    for span in spans:
        parent = by_id.get(span.parent_id or "")
        if parent is None:
            roots.append(span)
        else:
            parent.children.append(span)
    return roots


def waterfall(spans: list[Span], *, event_id: str) -> str:
    """A terminal waterfall of the spans: one line each, indented under its parent."""
    start = min(s.start_ns for s in spans)
    total = max(max(s.end_ns for s in spans) - start, 1)
    lines = [
        f"event {event_id}: {len(spans)} spans in {len({s.trace_id for s in spans})} traces, "
        f"{total / 1e6:.1f} ms"
    ]

    def render(span: Span, depth: int) -> None:
        offset, duration = span.start_ns - start, span.end_ns - span.start_ns
        width = max(1, round(duration / total * _BAR_WIDTH))
        begin = min(round(offset / total * _BAR_WIDTH), _BAR_WIDTH - width)
        bar = (" " * begin + "█" * width).ljust(_BAR_WIDTH)[:_BAR_WIDTH]
        notes = " (linked)" if span.links and depth == 0 else ""
        notes += " ERROR" if span.status == "ERROR" else ""
        lines.append(
            f"{offset / 1e6:8.1f} ms |{bar}| {duration / 1e6:7.1f} ms  {span.service:<22} "
            f"{'  ' * depth}{span.name} [{span.kind.lower()}]{notes}"
        )
        for child in sorted(span.children, key=lambda c: c.start_ns):
            render(child, depth + 1)

    shown = ""
    for root in _trees(spans):
        if root.trace_id != shown:
            shown = root.trace_id
            lines.append(f"trace {shown}")
        render(root, 0)
    return "\n".join(lines)


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `trace <event_id>` to the `python -m tsunagu.local` commands."""
    command = commands.add_parser(
        "trace",
        help="print one event's trace as a waterfall",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    command.add_argument("event_id", help="the interaction's event_id, as submitted")
    command.add_argument(
        "--data-dir", type=Path, default=Path(".tsunagu"), help="make run's data directory"
    )


def print_trace(args: argparse.Namespace) -> None:
    """`python -m tsunagu.local trace <event_id>`: the event's trace from `make run`'s files."""
    traces_dir = args.data_dir / "traces"
    spans = spans_of_event(read_spans(traces_dir), args.event_id)
    if not spans:
        print(f"no spans recorded for event {args.event_id} in {traces_dir}")
        return
    print(waterfall(spans, event_id=args.event_id))


def traces_env(data_dir: Path) -> dict[str, str]:
    """The environment that makes each process of a local stack keep its spans."""
    from tsunagu.telemetry import TRACES_DIR_ENV

    return {TRACES_DIR_ENV: str((data_dir / "traces").resolve())}
