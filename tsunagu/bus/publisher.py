"""Publishes interactions to JetStream; an outcome exists only once the stream stored it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry import trace

from tsunagu.bus import headers
from tsunagu.bus.subjects import INTERACTIONS_STREAM, interaction_subject
from tsunagu.bus.tracing import interaction_attributes, with_trace_context
from tsunagu.v1 import interaction_pb2

tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class Published:
    """The stream's acknowledgement of one interaction."""

    sequence: int
    duplicate: bool


class PublishError(RuntimeError):
    """The stream did not acknowledge an interaction; it may or may not be stored."""


def _headers(interaction: interaction_pb2.Interaction) -> dict[str, str]:
    # W3C traceparent of the producer span: one trace from the adapter to the timeline.
    return with_trace_context(
        {
            headers.MSG_ID: headers.message_id(interaction.tenant, interaction.event_id),
            headers.SCHEMA: headers.INTERACTION_SCHEMA,
        }
    )


class InteractionPublisher:
    """Publishes interactions with `Nats-Msg-Id = <tenant>/<event_id>`: a retry is a duplicate."""

    def __init__(self, js: JetStreamContext, *, ack_timeout: float = 5.0) -> None:
        self._js = js
        self._ack_timeout = ack_timeout

    async def publish(self, interaction: interaction_pb2.Interaction) -> Published:
        """Publish one interaction and wait for the stream's PubAck; raises PublishError."""
        outcome = (await self.publish_many([interaction]))[0]
        if isinstance(outcome, PublishError):
            raise outcome
        return outcome

    async def publish_many(
        self, interactions: Sequence[interaction_pb2.Interaction]
    ) -> list[Published | PublishError]:
        """Publish pipelined: all messages go out before the first PubAck is awaited.

        Returns one outcome per interaction, in order; a failed item never fails the others.
        """
        with tracer.start_as_current_span(
            "bus.publish_interactions",
            attributes={"messaging.batch.message_count": len(interactions)},
        ):
            futures: list[asyncio.Future[PubAck] | PublishError] = []
            for interaction in interactions:
                subject = interaction_subject(interaction.tenant, interaction.channel)
                # One producer span per message: its context travels in the message's
                # headers, so the consumer's span for this event links back to it.
                with tracer.start_as_current_span(
                    "interactions publish",
                    kind=trace.SpanKind.PRODUCER,
                    attributes=interaction_attributes(interaction, subject=subject),
                ):
                    try:
                        futures.append(
                            await self._js.publish_async(
                                subject,
                                interaction.SerializeToString(),
                                wait_stall=self._ack_timeout,
                                stream=INTERACTIONS_STREAM,
                                headers=_headers(interaction),
                            )
                        )
                    except Exception as exc:  # noqa: BLE001 - reported per item, never raised
                        futures.append(PublishError(f"publish failed: {exc!r}"))
            return [await self._outcome(future) for future in futures]

    async def _outcome(
        self, future: asyncio.Future[PubAck] | PublishError
    ) -> Published | PublishError:
        if isinstance(future, PublishError):
            return future
        try:
            ack = await asyncio.wait_for(future, self._ack_timeout)
        except TimeoutError:
            return PublishError("no acknowledgement from the stream in time")
        except Exception as exc:  # noqa: BLE001 - an API error from the stream, per item
            return PublishError(f"stream refused the message: {exc}")
        return Published(sequence=ack.seq, duplicate=bool(ack.duplicate))
