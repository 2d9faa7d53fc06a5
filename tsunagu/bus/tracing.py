"""Trace context and span attributes of bus messages: W3C headers, ids and kinds only."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from tsunagu.v1 import interaction_pb2

EVENT_ID = "tsunagu.event_id"
TENANT = "tsunagu.tenant"
CHANNEL = "tsunagu.channel"
KIND = "tsunagu.kind"


def interaction_attributes(
    interaction: interaction_pb2.Interaction, *, subject: str | None = None
) -> dict[str, AttributeValue]:
    """What a span may say about an interaction: ids, channel and kind, never its content.

    Identifier values, names and text stay out: traces leave the cluster for a collector
    that is not cleared for personal data.
    """
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "nats",
        EVENT_ID: interaction.event_id,
        TENANT: interaction.tenant,
        CHANNEL: interaction_pb2.Channel.Name(interaction.channel),
        KIND: interaction_pb2.Kind.Name(interaction.kind),
    }
    if subject is not None:
        attributes["messaging.destination.name"] = subject
    return attributes


def with_trace_context(carrier: dict[str, str]) -> dict[str, str]:
    """`carrier` plus the current span's `traceparent` (and `tracestate`) headers."""
    propagate.inject(carrier)
    return carrier


def context_of(headers: Mapping[str, str] | None) -> Context:
    """The trace context a message's headers carry (empty when they carry none)."""
    return propagate.extract(dict(headers or {}))


def link_to(headers: Mapping[str, str] | None) -> trace.Link | None:
    """A link to the span that sent a message, or None when it carried no trace context."""
    span_context = trace.get_current_span(context_of(headers)).get_span_context()
    return trace.Link(span_context) if span_context.is_valid else None
