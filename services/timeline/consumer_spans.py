"""The consumer's spans: one per fetched batch, linked to its producers, and one per event.

A batch holds events of many traces, and its store round trips are shared, so its span
cannot be a child of them all: it starts its own trace, linked to every event's producer
span (the MongoDB commands of the batch are its children). When the batch holds a single
event, the usual case when agents wait for a live update, the batch span is that event's
child as well, so the whole interaction, MongoDB writes included, reads as one trace. Each
event then gets a span in its own trace, child of its producer span and linked to the
batch span, around acknowledging it and announcing it: the notice carries that context on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from services.timeline.recorder import Recorded
from tsunagu.bus.tracing import context_of, interaction_attributes, link_to
from tsunagu.v1 import interaction_pb2

tracer = trace.get_tracer(__name__)


@contextmanager
def batch_span(msgs: Sequence[Msg]) -> Iterator[trace.Span]:
    """The CONSUMER span of one fetched batch, current inside the block."""
    links = [link for msg in msgs if (link := link_to(msg.headers)) is not None]
    parent = context_of(msgs[0].headers) if len(msgs) == 1 else None
    with tracer.start_as_current_span(
        "interactions process",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        links=links,
        attributes={"messaging.system": "nats", "messaging.batch.message_count": len(msgs)},
    ) as span:
        yield span


@contextmanager
def event_span(
    msg: Msg, interaction: interaction_pb2.Interaction, outcome: Recorded | Exception
) -> Iterator[trace.Span]:
    """The span of settling one event (ack, retry or dead letter), current inside the block."""
    with trace.use_span(start_event_span(msg, interaction, outcome), end_on_exit=True) as span:
        yield span


def start_event_span(
    msg: Msg, interaction: interaction_pb2.Interaction, outcome: Recorded | Exception
) -> trace.Span:
    """Start the span of settling one event (its notice, then its ack); the caller ends it.

    Recorded events of a batch are announced together (one flush), each notice under its own
    event's span: so their spans are started here and ended once the batch is settled.
    """
    batch = trace.get_current_span().get_span_context()
    attributes: dict[str, AttributeValue] = {
        **interaction_attributes(interaction, subject=msg.subject),
        "tsunagu.outcome": _outcome(outcome),
    }
    if isinstance(outcome, Recorded):
        attributes["tsunagu.customer_id"] = outcome.customer_id
    return tracer.start_span(
        "interaction settle",
        context=context_of(msg.headers),
        kind=trace.SpanKind.CONSUMER,
        links=[trace.Link(batch)] if batch.is_valid else [],
        attributes=attributes,
    )


def _outcome(outcome: Recorded | Exception) -> str:
    if isinstance(outcome, Exception):
        return type(outcome).__name__
    return "duplicate" if outcome.duplicate else "recorded"
