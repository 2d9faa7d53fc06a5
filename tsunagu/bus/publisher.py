"""Publishes interactions to JetStream; an outcome exists only once the stream stored it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.errors import APIError
from opentelemetry import trace

from tsunagu.bus import headers
from tsunagu.bus.actor_signature import ActorSigner, needs_signed_actor
from tsunagu.bus.subjects import INTERACTIONS_STREAM, interaction_subject
from tsunagu.bus.tracing import interaction_attributes, with_trace_context
from tsunagu.crypto.bus_seal import BusSealer
from tsunagu.v1 import interaction_pb2

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# JetStream's "stream store failed" code; its description names the limit that was reached.
_STORE_FAILED = 10077
# The server's descriptions of a full stream, and the provisioning setting behind each.
_LIMITS = {
    "maximum messages per subject exceeded": (
        "the per tenant-and-channel message limit (TSUNAGU_STREAMS_MAX_MSGS_PER_SUBJECT)"
    ),
    "maximum bytes exceeded": "its size limit (TSUNAGU_STREAMS_MAX_BYTES)",
    "maximum messages exceeded": "its message-count limit",
}
# At most one alarm line per this many seconds; the counter counts every refusal.
ALARM_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Published:
    """The stream's acknowledgement of one interaction."""

    sequence: int
    duplicate: bool


class PublishError(RuntimeError):
    """The stream did not acknowledge an interaction; it may or may not be stored."""


class StreamFullError(PublishError):
    """The stream refused the interaction: a limit is reached. Nothing was stored."""


def stream_full(exc: BaseException, stream: str = INTERACTIONS_STREAM) -> StreamFullError | None:
    """The refusal `exc` stands for when a stream reached a limit, else None."""
    if not isinstance(exc, APIError) or exc.err_code != _STORE_FAILED:
        return None
    described = (exc.description or "").lower()
    limit = next((name for text, name in _LIMITS.items() if text in described), None)
    if limit is None:
        return None
    return StreamFullError(f"stream {stream} is full: {limit} is reached")


@dataclass(slots=True)
class StreamFullAlarm:
    """Counts refusals by a full stream, per tenant, and logs an alarm line.

    The counts are the hook for the metrics of issue 10 (an OpenTelemetry counter replaces
    them); the log line is the alarm until then.
    """

    refused: Counter[str] = field(default_factory=Counter)
    _last_alarm: float = float("-inf")
    _since_alarm: int = 0

    def __call__(self, tenant: str, error: StreamFullError) -> None:
        self.refused[tenant] += 1
        self._since_alarm += 1
        now = time.monotonic()
        if now - self._last_alarm >= ALARM_INTERVAL_SECONDS:
            log.error(
                "ALARM %s; %d publish(es) refused since the last alarm (tenant %s last)",
                error,
                self._since_alarm,
                tenant,
            )
            self._last_alarm = now
            self._since_alarm = 0


def _headers(interaction: interaction_pb2.Interaction) -> dict[str, str]:
    # W3C traceparent of the producer span: one trace from the adapter to the timeline.
    return with_trace_context(
        {
            headers.MSG_ID: headers.message_id(interaction.tenant, interaction.event_id),
            headers.SCHEMA: headers.INTERACTION_SCHEMA,
        }
    )


class InteractionPublisher:
    """Publishes interactions with `Nats-Msg-Id = <tenant>/<event_id>`: a retry is a duplicate.

    Given the gateway's ``signer``, it publishes agent actions with a signed actor (the
    timeline executes no agent action without one). Given a ``sealer`` (ingestion's), every
    body is sealed with a data key of its own, so the stream holds only ciphertext.
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        ack_timeout: float = 5.0,
        signer: ActorSigner | None = None,
        alarm: StreamFullAlarm | None = None,
        sealer: BusSealer | None = None,
    ) -> None:
        self._js = js
        self._sealer = sealer
        self._ack_timeout = ack_timeout
        self._signer = signer
        self.alarm = alarm or StreamFullAlarm()

    async def publish(
        self, interaction: interaction_pb2.Interaction, *, roles: Sequence[str] = ()
    ) -> Published:
        """Publish one interaction and wait for the stream's PubAck; raises PublishError."""
        outcome = (await self.publish_many([interaction], roles=roles))[0]
        if isinstance(outcome, PublishError):
            raise outcome
        return outcome

    async def publish_many(
        self, interactions: Sequence[interaction_pb2.Interaction], *, roles: Sequence[str] = ()
    ) -> list[Published | PublishError]:
        """Publish pipelined: all messages go out before the first PubAck is awaited.

        ``roles`` are the acting agent's, signed into each agent action's actor. Returns one
        outcome per interaction, in order; a failed item never fails the others. A full
        stream's refusal is a `StreamFullError`.
        """
        with tracer.start_as_current_span(
            "bus.publish_interactions",
            attributes={"messaging.batch.message_count": len(interactions)},
        ):
            # Tasks start in order and each sends before its first wait, so the stream
            # stores a batch in order. (`publish_async` would pipeline too, but nats-py 2.16
            # loses its error replies: a full stream would look like a missing ack.)
            tasks = [asyncio.ensure_future(self._publish(i, roles)) for i in interactions]
            return list(await asyncio.gather(*tasks))

    async def _publish(
        self, interaction: interaction_pb2.Interaction, roles: Sequence[str]
    ) -> Published | PublishError:
        subject = interaction_subject(interaction.tenant, interaction.channel)
        # One producer span per message: its context travels in the message's headers, so
        # the consumer's span for this event links back to it.
        with tracer.start_as_current_span(
            "interactions publish",
            kind=trace.SpanKind.PRODUCER,
            attributes=interaction_attributes(interaction, subject=subject),
        ):
            return await self._send(interaction, subject, roles)

    async def _send(
        self, interaction: interaction_pb2.Interaction, subject: str, roles: Sequence[str]
    ) -> Published | PublishError:
        data = interaction.SerializeToString()
        carrier = _headers(interaction)
        if self._signer is not None and needs_signed_actor(interaction):
            # Signed over the exact bytes sent: the timeline verifies what it stores.
            carrier |= self._signer.sign(
                interaction, data, roles=roles, issued_at=datetime.now(UTC)
            )
        if self._sealer is not None:
            data, sealed_key = self._sealer.seal(
                tenant=interaction.tenant, event_id=interaction.event_id, data=data
            )
            carrier |= sealed_key
        try:
            ack = await self._js.publish(
                subject,
                data,
                timeout=self._ack_timeout,
                stream=INTERACTIONS_STREAM,
                headers=carrier,
            )
        except TimeoutError:
            return PublishError("no acknowledgement from the stream in time")
        except APIError as exc:
            if (full := stream_full(exc)) is not None:
                self.alarm(interaction.tenant, full)
                return full
            return PublishError(f"stream refused the message: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported per item, never raised
            return PublishError(f"publish failed: {exc!r}")
        return Published(sequence=ack.seq, duplicate=bool(ack.duplicate))
